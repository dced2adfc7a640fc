"""The single source of truth: one SQLite file (WAL, one writer) mirrored in memory.

Writes go through to SQLite at once so a kill -9 loses nothing acknowledged; reads (snapshots)
come from the in-memory mirror so dispatch and MQTT never wait on disk. Every change is announced
on `changes`; notifications on `notifications`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from v2g_gateway.bus import Bus, Changed
from v2g_gateway.capability import DischargeCapability
from v2g_gateway.clock import Clock, SystemClock
from v2g_gateway.config import Config
from v2g_gateway.errors import StoreError
from v2g_gateway.model import (
    ChargerState,
    ConnectorStatus,
    EvseState,
    Notification,
    Override,
    OverrideKind,
    Snapshot,
    VehicleState,
)
from v2g_gateway.soc import PlugSession
from v2g_gateway.store.applying import ApplyMixin
from v2g_gateway.store.backup import backup, check_file, list_backups, made_at
from v2g_gateway.store.events import ChargerEventsMixin
from v2g_gateway.store.history import HistoryMixin
from v2g_gateway.store.rows import SESSION_COLUMNS, reading_from_json, session_from_row
from v2g_gateway.store.schema import MIGRATIONS, migrate, schema_version
from v2g_gateway.store.settings import SettingsMixin
from v2g_gateway.store.spill import Spill

# The gateway is the only writer; a lock held by someone else (a careless sqlite3 shell) should
# cost a write, not stall the event loop for long.
BUSY_TIMEOUT_MS = 1000

log = structlog.get_logger(__name__)


def _dt(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


def _need_dt(s: str) -> datetime:
    return datetime.fromisoformat(s)


class Store(ApplyMixin, ChargerEventsMixin, SettingsMixin, HistoryMixin):
    """Chargers, EVSEs, plug sessions, transactions, vehicles, prices, plans, overrides,
    preferences, logs."""

    def __init__(
        self, conn: sqlite3.Connection, cfg: Config, path: Path, clock: Clock | None = None
    ) -> None:
        self._db = conn
        self._cfg = cfg
        self._clock: Clock = clock or SystemClock()
        self.path = path
        self.changes: Bus[Changed] = Bus()
        self.notifications: Bus[Notification] = Bus()
        self.healthy = True
        self._chargers: dict[str, ChargerState] = {}
        self._vehicles: dict[str, VehicleState] = {}
        self._overrides: dict[str, Override] = {}
        self._sessions: dict[str, PlugSession] = {}
        self._vehicle_sessions: dict[str, str] = {}
        self._dispatch: dict[tuple[str, int], dict[str, Any]] = {}
        self._lost_transactions: dict[tuple[str, str], None] = {}
        self._spill = Spill()
        self._tx_depth = 0
        self._grid_outage = False
        self._load()

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    def open(cls, path: str | Path, cfg: Config, clock: Clock | None = None) -> Store:
        """The state file, checked first: an empty or damaged one is refused (StoreError, one
        line naming it and how to recover), never opened as new over the user's data."""
        p = Path(path)
        clock = clock or SystemClock()
        if p.exists():
            check_file(p)
        elif list_backups(p):  # not silent: the file may have been lost rather than moved away
            log.warning(
                "store.new_state_file",
                path=str(p),
                detail="no state file but backups exist: starting with a new one; "
                "`v2g-gateway state restore` brings the newest backup back",
            )
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                p, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            version = schema_version(conn)
            if 0 < version < len(MIGRATIONS):
                backup(conn, p, clock.now(), f"schema{version}")  # the way back from a migration
            migrate(conn)
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            raise StoreError(f"{p}: cannot open the state database: {exc}") from exc
        try:
            store = cls(conn, cfg, p, clock)
        except sqlite3.DatabaseError as exc:  # damage quick_check did not see (index contents)
            conn.close()
            raise StoreError(
                f"{p}: the state file is damaged ({exc}); see `v2g-gateway state check`"
            ) from None
        store.daily_backup()
        return store

    def daily_backup(self) -> Path | None:
        """A backup unless one was made in the last day (at start and from housekeeping)."""
        now = self._clock.now()
        for b in list_backups(self.path):
            made = made_at(b)
            if b.stem.endswith("-daily") and made is not None:
                if abs((now - made).total_seconds()) < 86400 - 60:
                    return None
                break
        try:
            return backup(self._db, self.path, now, "daily")
        except StoreError as exc:
            log.error("store.backup_failed", error=str(exc))
            return None

    def close(self) -> None:
        if self._spill.events and not self.flush():
            log.error("store.closed_with_unwritten", events=len(self._spill.events))
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("store.checkpoint_failed", error=str(exc))
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a failure (locked, disk full) leaves the file as it was.
        Inside another (one charger event is one transaction) it joins the outer one."""
        if self._tx_depth:
            if not self._db.in_transaction:  # SQLite rolled the outer one back (SQLITE_FULL)
                raise StoreError(f"{self.path}: write failed: the transaction was rolled back")
            self._tx_depth += 1
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: write failed: {exc}") from exc
            finally:
                self._tx_depth -= 1
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._set_healthy(False)
            raise StoreError(f"{self.path}: cannot write: {exc}") from exc
        self._tx_depth = 1
        try:
            yield self._db
            self._db.execute("COMMIT")
            self._set_healthy(True)
        except sqlite3.Error as exc:
            self._rollback()
            self._set_healthy(False)
            raise StoreError(f"{self.path}: write failed: {exc}") from exc
        except BaseException:
            self._rollback()
            raise
        finally:
            self._tx_depth = 0

    def _set_healthy(self, ok: bool) -> None:
        """Writes run on the event loop: once one has waited out the busy timeout, the next ones
        fail at once instead of stalling every charger for a second each, until one succeeds."""
        if ok != self.healthy:
            with suppress(sqlite3.Error):
                self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS if ok else 0}")
        self.healthy = ok

    def _rollback(self) -> None:
        # SQLite may already have rolled back by itself (SQLITE_FULL on COMMIT); a second
        # ROLLBACK would raise a raw sqlite3 error out of apply(), which must never raise.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _load(self) -> None:
        db = self._db
        now, mono = self._clock.now(), self._clock.monotonic()
        for r in db.execute(
            "SELECT charger_id, vendor, model, serial, firmware, last_seen, booted_at, "
            "capabilities, discharge FROM chargers"
        ).fetchall():
            self._chargers[r[0]] = ChargerState(
                charger_id=r[0],
                vendor=r[1],
                model=r[2],
                serial=r[3],
                firmware=r[4],
                online=False,  # no session survives a restart
                last_seen=_dt(r[5]),
                booted_at=_dt(r[6]),
                discharge=DischargeCapability.from_json(json.loads(r[8]) if r[8] else None),
                capabilities=json.loads(r[7]),
            )
        for r in db.execute(f"SELECT {SESSION_COLUMNS} FROM plug_sessions WHERE ended_at IS NULL"):
            s = session_from_row(r, now, mono)
            self._sessions[s.session_id] = s
            if s.vehicle_id:
                self._vehicle_sessions[s.vehicle_id] = s.session_id
        for r in db.execute(
            "SELECT charger_id, evse_id, status, plugged, transaction_id, charging_state, "
            "power_w, energy_import_wh, energy_export_wh, voltage_v, updated_at, session_id "
            "FROM evses"
        ).fetchall():
            ch = self._chargers.setdefault(r[0], ChargerState(charger_id=r[0]))
            ev = EvseState(
                charger_id=r[0],
                evse_id=r[1],
                status=None if r[2] is None else ConnectorStatus(r[2]),
                plugged=bool(r[3]),
                transaction_id=r[4],
                charging_state=r[5],
                power_w=r[6],
                energy_import_wh=r[7],
                energy_export_wh=r[8],
                voltage_v=r[9],
                updated_at=_dt(r[10]),
                session=None if r[11] is None else self._sessions.get(r[11]),
            )
            ch.evses[r[1]] = ev
        for r in db.execute("SELECT vehicle_id, capacity_wh, last_soc FROM vehicles").fetchall():
            self._vehicles[r[0]] = VehicleState(
                vehicle_id=r[0], capacity_wh=r[1], last_soc=reading_from_json(r[2], now, mono)
            )
        for v in self._cfg.vehicles:
            if v.id not in self._vehicles:
                with self._tx() as tx:
                    tx.execute("INSERT OR IGNORE INTO vehicles (vehicle_id) VALUES (?)", (v.id,))
                self._vehicles[v.id] = VehicleState(vehicle_id=v.id)
        rows = db.execute("SELECT * FROM overrides WHERE cancelled_at IS NULL").fetchall()
        for r in rows:
            try:
                o = Override(
                    override_id=r[0],
                    vehicle_id=r[1],
                    kind=OverrideKind.parse(r[2]),
                    created_at=_need_dt(r[3]),
                    expires_at=_need_dt(r[4]),
                    target_soc_percent=r[5],
                    power_w=r[6],
                )
            except ValueError as exc:  # an old row of a kind or power no longer valid
                log.warning("store.override_dropped", override_id=r[0], error=str(exc))
                continue
            self._overrides[o.override_id] = o

    # ---------------------------------------------------------------- charger events

    # ---------------------------------------------------------------- snapshot

    def snapshot(self, now: datetime) -> Snapshot:
        return Snapshot(
            taken_at=now,
            chargers=dict(self._chargers),
            vehicles={vid: self._view(v) for vid, v in self._vehicles.items()},
            overrides=self.active_overrides(now),
            grid_outage=self._grid_outage,
            taken_mono=self._clock.monotonic(),
            dispatch=dict(self._dispatch),
        )

    def active_overrides(self, now: datetime) -> tuple[Override, ...]:
        return tuple(o for o in self._overrides.values() if o.active(now))

    def charger_state(self, charger_id: str) -> ChargerState | None:
        """One charger without building a whole snapshot (hot paths follow every message)."""
        return self._chargers.get(charger_id)

    def set_dispatch_state(self, key: tuple[str, int], state: dict[str, Any]) -> None:
        """What dispatch is doing at an EVSE and why (memory only: it is re-made every round)."""
        if self._dispatch.get(key) != state:
            self._dispatch[key] = state
            ev = self._charger(key[0]).evses.get(key[1])
            vid = None if ev is None or ev.session is None else ev.session.vehicle_id
            self.changes.publish(Changed("dispatch_charger", key[0]))
            if vid:
                self.changes.publish(Changed("dispatch_vehicle", vid))

    def dispatch_state(self, charger_id: str, evse_id: int) -> dict[str, Any] | None:
        return self._dispatch.get((charger_id, evse_id))

    def set_grid_outage(self, outage: bool) -> None:
        if outage != self._grid_outage:
            self._grid_outage = outage
            self.changes.publish(Changed("grid"))

    # ---------------------------------------------------------------- discharge capability

    def set_discharge_capability(self, charger_id: str, cap: DischargeCapability) -> None:
        """What dispatch learnt about the charger's discharging (or the user's reset)."""
        ch = self._charger(charger_id)
        if ch.discharge != cap:
            self._put_charger(replace(ch, discharge=cap))
            self.changes.publish(Changed("charger", charger_id))
