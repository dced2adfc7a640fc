"""Prices, plans, overrides, preferences and small keyed values: what the user and the price
service write, and dispatch reads."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from v2g_gateway.bus import Bus, Changed
from v2g_gateway.model import Override, PriceSlot
from v2g_gateway.store.rows import ts as _ts


def _need_dt(s: str) -> datetime:
    return datetime.fromisoformat(s)


class SettingsMixin:
    _db: sqlite3.Connection
    _overrides: dict[str, Override]
    changes: Bus[Changed]

    if TYPE_CHECKING:  # provided by the Store and its other mixins

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...  # the Store's

    # ---------------------------------------------------------------- prices

    def save_price_slots(self, source: str, slots: Sequence[PriceSlot]) -> None:
        now = _ts(datetime.now(UTC))
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO price_slots VALUES (?,?,?,?,?,?)",
                [(source, _ts(s.start), _ts(s.end), s.price, s.currency, now) for s in slots],
            )
        self.changes.publish(Changed("prices", source))

    def load_price_slots(self, source: str, start: datetime, end: datetime) -> list[PriceSlot]:
        rows = self._db.execute(
            "SELECT start, end, price, currency FROM price_slots "
            "WHERE source=? AND end>? AND start<? ORDER BY start",
            (source, _ts(start), _ts(end)),
        ).fetchall()
        return [PriceSlot(_need_dt(r[0]), _need_dt(r[1]), r[2], r[3]) for r in rows]

    # ---------------------------------------------------------------- plans, overrides, prefs

    def save_plan(self, vehicle_id: str, created_at: datetime, plan: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO plans VALUES (?,?,?)",
                (vehicle_id, _ts(created_at), json.dumps(plan)),
            )
        self.changes.publish(Changed("plan", vehicle_id))

    def load_plan(self, vehicle_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT plan FROM plans WHERE vehicle_id=?", (vehicle_id,)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put_override(self, o: Override) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO overrides VALUES (?,?,?,?,?,?,?,NULL)",
                (
                    o.override_id,
                    o.vehicle_id,
                    o.kind.value,
                    _ts(o.created_at),
                    _ts(o.expires_at),
                    o.target_soc_percent,
                    o.power_w,
                ),
            )
        self._overrides[o.override_id] = o
        self.changes.publish(Changed("override", o.vehicle_id))

    def cancel_overrides(self, vehicle_id: str, now: datetime) -> list[Override]:
        gone = [o for o in self._overrides.values() if o.vehicle_id == vehicle_id]
        with self._tx() as db:
            db.executemany(
                "UPDATE overrides SET cancelled_at=? WHERE override_id=?",
                [(_ts(now), o.override_id) for o in gone],
            )
        for o in gone:
            del self._overrides[o.override_id]
        if gone:
            self.changes.publish(Changed("override", vehicle_id))
        return gone

    def expire_overrides(self, now: datetime) -> list[Override]:
        """Drop overrides whose time is up; returns them so their expiry can be announced."""
        gone = [o for o in self._overrides.values() if now >= o.expires_at]
        if gone:
            with self._tx() as db:
                db.executemany(
                    "UPDATE overrides SET cancelled_at=? WHERE override_id=?",
                    [(_ts(now), o.override_id) for o in gone],
                )
            for o in gone:
                del self._overrides[o.override_id]
        return gone

    def set_preference(self, key: str, value: Any, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO preferences VALUES (?,?,?)",
                (key, json.dumps(value), _ts(now)),
            )
        self.changes.publish(Changed("preferences", key))

    def preferences(self) -> dict[str, Any]:
        rows = self._db.execute("SELECT key, value FROM preferences").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def kv_get(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def kv_set(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO kv VALUES (?,?)", (key, json.dumps(value, default=str))
            )
