"""What happened: the dispatch log, notifications, the energy ledger, and their pruning."""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from v2g_gateway.bus import Bus
from v2g_gateway.errors import StoreError
from v2g_gateway.model import Notification
from v2g_gateway.store.rows import ts as _ts

log = structlog.get_logger(__name__)


class HistoryMixin:
    _db: sqlite3.Connection
    notifications: Bus[Notification]

    if TYPE_CHECKING:  # provided by the Store and its other mixins

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...  # the Store's

    # ---------------------------------------------------------------- logs

    def log_dispatch(
        self,
        at: datetime,
        action: str,
        reason: str,
        *,
        charger_id: str | None = None,
        evse_id: int | None = None,
        vehicle_id: str | None = None,
        limit_w: float | None = None,
        result: str | None = None,
    ) -> None:
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO dispatch_log (at, charger_id, evse_id, vehicle_id, action, limit_w, "
                    "reason, result) VALUES (?,?,?,?,?,?,?,?)",
                    (_ts(at), charger_id, evse_id, vehicle_id, action, limit_w, reason, result),
                )
        except StoreError as exc:
            log.error("store.dispatch_log_failed", error=str(exc))

    def dispatch_log(self, limit: int = 100) -> list[dict[str, Any]]:
        cur = self._db.execute(
            "SELECT at, charger_id, evse_id, vehicle_id, action, limit_w, reason, result "
            "FROM dispatch_log ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def notify(self, n: Notification) -> None:
        """Keep a notification and hand it to every listener (MQTT events topic, logs)."""
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO notifications (at, kind, level, message, data) VALUES (?,?,?,?,?)",
                    (_ts(n.at), n.kind, n.level, n.message, json.dumps(n.data, default=str)),
                )
        except StoreError as exc:
            log.error("store.notification_failed", error=str(exc))
        log.info("notification", kind=n.kind, message=n.message)
        self.notifications.publish(n)

    def recent_notifications(self, limit: int = 50) -> list[dict[str, Any]]:
        cur = self._db.execute(
            "SELECT at, kind, level, message, data FROM notifications ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            {"at": r[0], "kind": r[1], "level": r[2], "message": r[3], "data": json.loads(r[4])}
            for r in cur.fetchall()
        ]

    # ---------------------------------------------------------------- retention

    # History that grows with time, and the column that dates each row. The ledger stays: one
    # row per vehicle and day is the user's accounting, and small.
    _HISTORY = (
        ("soc_samples", "at"),
        ("dispatch_log", "at"),
        ("notifications", "at"),
        ("price_slots", "end"),
        ("transactions", "ended_at"),
        ("plug_sessions", "ended_at"),
    )

    def prune(self, before: datetime) -> dict[str, int]:
        """Delete history older than `before` (rows deleted per table). A gateway runs for
        years on an SD card: a minute-by-minute SoC log alone is ~500,000 rows a year per car.
        Never raises; a failure is logged and the rows are tried again next time."""
        cutoff = _ts(before.replace(microsecond=0))
        deleted: dict[str, int] = {}
        try:
            with self._tx() as db:
                for table, column in self._HISTORY:
                    cur = db.execute(f"DELETE FROM {table} WHERE {column} < ?", (cutoff,))
                    deleted[table] = cur.rowcount
        except StoreError as exc:
            log.error("store.prune_failed", error=str(exc))
            return {}
        return deleted

    def add_ledger(
        self,
        vehicle_id: str,
        day: str,
        import_wh: float,
        export_wh: float,
        cost: float,
        revenue: float,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO ledger VALUES (?,?,?,?,?,?) ON CONFLICT(vehicle_id, day) DO UPDATE SET "
                "import_wh=import_wh+excluded.import_wh, export_wh=export_wh+excluded.export_wh, "
                "cost=cost+excluded.cost, revenue=revenue+excluded.revenue",
                (vehicle_id, day, import_wh, export_wh, cost, revenue),
            )

    def ledger(self) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM ledger ORDER BY day, vehicle_id")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
