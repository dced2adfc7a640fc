"""The single source of truth: one SQLite file (WAL, one writer) mirrored in memory.

Writes go through to SQLite at once so a kill -9 loses nothing acknowledged; reads (snapshots)
come from the in-memory mirror so dispatch and MQTT never wait on disk. Every change is announced
on `changes`; notifications on `notifications`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from v2g_gateway.bus import Bus, Changed
from v2g_gateway.config import Config
from v2g_gateway.errors import StoreError
from v2g_gateway.model import (
    ChargerBooted,
    ChargerCapability,
    ChargerConnected,
    ChargerDisconnected,
    ChargerEvent,
    ChargerState,
    ConnectorStatus,
    ConnectorStatusChanged,
    EvChargingNeeds,
    EvseState,
    HeartbeatSeen,
    MeterSample,
    Notification,
    Override,
    OverrideKind,
    PriceSlot,
    Snapshot,
    TransactionChanged,
    TransactionEventType,
    VehicleState,
)
from v2g_gateway.store.schema import migrate

# The gateway is the only writer; a lock held by someone else (a careless sqlite3 shell) should
# cost a write, not stall the event loop for long.
BUSY_TIMEOUT_MS = 1000

log = structlog.get_logger(__name__)


def _ts(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat()


def _dt(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


def _need_dt(s: str) -> datetime:
    return datetime.fromisoformat(s)


class Store:
    """Chargers, EVSEs, transactions, vehicles, prices, plans, overrides, preferences, logs."""

    def __init__(self, conn: sqlite3.Connection, cfg: Config, path: Path) -> None:
        self._db = conn
        self._cfg = cfg
        self.path = path
        self.changes: Bus[Changed] = Bus()
        self.notifications: Bus[Notification] = Bus()
        self.healthy = True
        self._chargers: dict[str, ChargerState] = {}
        self._vehicles: dict[str, VehicleState] = {}
        self._overrides: dict[str, Override] = {}
        self._grid_outage = False
        self._load()

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    def open(cls, path: str | Path, cfg: Config) -> Store:
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                p, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            migrate(conn)
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            raise StoreError(f"{p}: cannot open the state database: {exc}") from exc
        return cls(conn, cfg, p)

    def close(self) -> None:
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("store.checkpoint_failed", error=str(exc))
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a failure (locked, disk full) leaves the file as it was."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._set_healthy(False)
            raise StoreError(f"{self.path}: cannot write: {exc}") from exc
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
        for r in db.execute("SELECT * FROM chargers").fetchall():
            self._chargers[r[0]] = ChargerState(
                charger_id=r[0],
                vendor=r[1],
                model=r[2],
                serial=r[3],
                firmware=r[4],
                online=False,  # no session survives a restart
                last_seen=_dt(r[6]),
                booted_at=_dt(r[7]),
                supports_discharge=None if r[8] is None else bool(r[8]),
                capabilities=json.loads(r[9]),
            )
        for r in db.execute("SELECT * FROM evses").fetchall():
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
            )
            ch.evses[r[1]] = ev
        for r in db.execute("SELECT * FROM vehicles").fetchall():
            self._vehicles[r[0]] = VehicleState(
                vehicle_id=r[0],
                charger_id=r[1],
                evse_id=r[2],
                soc_percent=r[3],
                soc_at=_dt(r[4]),
                capacity_wh=r[5],
                departure_time=_dt(r[6]),
                energy_request_wh=r[7],
            )
        for v in self._cfg.vehicles:
            self._vehicles.setdefault(v.id, VehicleState(vehicle_id=v.id))
        rows = db.execute("SELECT * FROM overrides WHERE cancelled_at IS NULL").fetchall()
        for r in rows:
            self._overrides[r[0]] = Override(
                override_id=r[0],
                vehicle_id=r[1],
                kind=OverrideKind.parse(r[2]),
                created_at=_need_dt(r[3]),
                expires_at=_need_dt(r[4]),
                target_soc_percent=r[5],
                power_w=r[6],
            )

    # ---------------------------------------------------------------- charger events

    def apply(self, event: ChargerEvent) -> None:
        """Record what a charger said. Never raises: a storage failure is logged and flagged,
        a value the store cannot hold (SoC outside 0..100, an id beyond SQLite's integers) is
        logged and dropped, and what was stored before stays as it was."""
        try:
            changed = self._apply(event)
        except StoreError as exc:
            log.error("store.write_failed", error=str(exc), event_type=type(event).__name__)
            return
        except (ValueError, OverflowError) as exc:
            log.warning("store.value_rejected", error=str(exc), event_type=type(event).__name__)
            return
        for c in changed:
            self.changes.publish(c)

    def _apply(self, e: ChargerEvent) -> list[Changed]:
        if isinstance(e, ChargerConnected | HeartbeatSeen):
            self._put_charger(replace(self._charger(e.charger_id), online=True, last_seen=e.at))
            return [Changed("charger", e.charger_id)]
        if isinstance(e, ChargerDisconnected):
            self._put_charger(replace(self._charger(e.charger_id), online=False, last_seen=e.at))
            return [Changed("charger", e.charger_id)]
        if isinstance(e, ChargerBooted):
            ch = replace(
                self._charger(e.charger_id),
                online=True,
                last_seen=e.at,
                booted_at=e.at,
                vendor=e.vendor,
                model=e.model,
                serial=e.serial,
                firmware=e.firmware,
            )
            self._put_charger(ch)
            return [Changed("charger", e.charger_id), Changed("boot", e.charger_id)]
        if isinstance(e, ChargerCapability):
            ch = self._charger(e.charger_id)
            caps = {**ch.capabilities, e.name: e.value}
            sd = bool(e.value) if e.name == "discharge" else ch.supports_discharge
            self._put_charger(replace(ch, capabilities=caps, supports_discharge=sd, last_seen=e.at))
            return [Changed("charger", e.charger_id)]
        if isinstance(e, ConnectorStatusChanged):
            return self._status(e)
        if isinstance(e, MeterSample):
            return self._meter(e)
        if isinstance(e, TransactionChanged):
            return self._transaction(e)
        if isinstance(e, EvChargingNeeds):
            return self._needs(e)
        raise TypeError(f"unknown event {e!r}")

    def _charger(self, charger_id: str) -> ChargerState:
        return self._chargers.get(charger_id) or ChargerState(charger_id=charger_id)

    def _evse(self, charger_id: str, evse_id: int) -> EvseState:
        ch = self._charger(charger_id)
        return ch.evses.get(evse_id) or EvseState(charger_id=charger_id, evse_id=evse_id)

    def _put_charger(self, ch: ChargerState) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO chargers VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(charger_id) DO UPDATE SET "
                "vendor=excluded.vendor, model=excluded.model, serial=excluded.serial, "
                "firmware=excluded.firmware, online=excluded.online, last_seen=excluded.last_seen, "
                "booted_at=excluded.booted_at, supports_discharge=excluded.supports_discharge, "
                "capabilities=excluded.capabilities",
                (
                    ch.charger_id,
                    ch.vendor,
                    ch.model,
                    ch.serial,
                    ch.firmware,
                    int(ch.online),
                    _ts(ch.last_seen),
                    _ts(ch.booted_at),
                    None if ch.supports_discharge is None else int(ch.supports_discharge),
                    json.dumps(ch.capabilities, default=str),
                ),
            )
        self._chargers[ch.charger_id] = ch

    def _put_evse(self, ev: EvseState, last_seen: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO evses VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    ev.charger_id,
                    ev.evse_id,
                    None if ev.status is None else ev.status.value,
                    int(ev.plugged),
                    ev.transaction_id,
                    ev.charging_state,
                    ev.power_w,
                    ev.energy_import_wh,
                    ev.energy_export_wh,
                    ev.voltage_v,
                    _ts(ev.updated_at),
                ),
            )
            db.execute(
                "INSERT INTO chargers (charger_id, online, last_seen) VALUES (?,1,?) "
                "ON CONFLICT(charger_id) DO UPDATE SET last_seen=excluded.last_seen, online=1",
                (ev.charger_id, _ts(last_seen)),
            )
        ch = self._charger(ev.charger_id)
        self._chargers[ev.charger_id] = replace(
            ch, evses={**ch.evses, ev.evse_id: ev}, online=True, last_seen=last_seen
        )

    def _put_vehicle(self, v: VehicleState) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO vehicles VALUES (?,?,?,?,?,?,?,?)",
                (
                    v.vehicle_id,
                    v.charger_id,
                    v.evse_id,
                    v.soc_percent,
                    _ts(v.soc_at),
                    v.capacity_wh,
                    _ts(v.departure_time),
                    v.energy_request_wh,
                ),
            )
        self._vehicles[v.vehicle_id] = v

    def _bind_vehicle(self, charger_id: str, evse_id: int, id_token: str | None) -> str | None:
        vcfg = self._cfg.vehicle_for(charger_id, id_token)
        if vcfg is None:
            return None
        v = self._vehicles.get(vcfg.id) or VehicleState(vehicle_id=vcfg.id)
        if (v.charger_id, v.evse_id) != (charger_id, evse_id):
            self._put_vehicle(replace(v, charger_id=charger_id, evse_id=evse_id))
        return vcfg.id

    def vehicle_at(self, charger_id: str, evse_id: int) -> str | None:
        for v in self._vehicles.values():
            if v.charger_id == charger_id and v.evse_id == evse_id:
                return v.vehicle_id
        return None

    def _status(self, e: ConnectorStatusChanged) -> list[Changed]:
        ev = self._evse(e.charger_id, e.evse_id)
        plugged = e.status == ConnectorStatus.OCCUPIED
        self._put_evse(replace(ev, status=e.status, plugged=plugged, updated_at=e.at), e.at)
        out = [Changed("charger", e.charger_id)]
        if plugged:
            vid = self._bind_vehicle(e.charger_id, e.evse_id, None)
            if vid:
                out.append(Changed("vehicle", vid))
        else:
            vid = self.vehicle_at(e.charger_id, e.evse_id)
            if vid:
                out.append(Changed("vehicle", vid))
        return out

    def _meter(self, e: MeterSample) -> list[Changed]:
        ev = self._evse(e.charger_id, e.evse_id)
        ev = replace(
            ev,
            power_w=e.power_w if e.power_w is not None else ev.power_w,
            energy_import_wh=e.energy_import_wh
            if e.energy_import_wh is not None
            else ev.energy_import_wh,
            energy_export_wh=e.energy_export_wh
            if e.energy_export_wh is not None
            else ev.energy_export_wh,
            voltage_v=e.voltage_v if e.voltage_v is not None else ev.voltage_v,
            updated_at=e.at,
        )
        self._put_evse(ev, e.at)
        out = [Changed("charger", e.charger_id), Changed("meter", e.charger_id)]
        vid = self.vehicle_at(e.charger_id, e.evse_id)
        if vid is None and ev.plugged:
            vid = self._bind_vehicle(e.charger_id, e.evse_id, None)
        if vid is not None:
            if e.soc_percent is not None:
                self.record_soc(vid, e.soc_percent, e.at, "charger", publish=False)
            out.append(Changed("vehicle", vid))
        return out

    def _transaction(self, e: TransactionChanged) -> list[Changed]:
        row = self._db.execute(
            "SELECT seen_seq_nos FROM transactions WHERE transaction_id=?", (e.transaction_id,)
        ).fetchone()
        seen: list[int] = json.loads(row[0]) if row else []
        if e.seq_no in seen:
            return []  # a re-sent event: already applied
        seen = sorted([*seen, e.seq_no])[-64:]
        vid = self._bind_vehicle(e.charger_id, e.evse_id, e.id_token)
        with self._tx() as db:
            db.execute(
                "INSERT INTO transactions (transaction_id, charger_id, evse_id, started_at, id_token, "
                "vehicle_id, last_seq_no, seen_seq_nos) VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT(transaction_id) DO UPDATE SET last_seq_no=max(last_seq_no, excluded.last_seq_no), "
                "seen_seq_nos=excluded.seen_seq_nos, id_token=coalesce(excluded.id_token, id_token), "
                "vehicle_id=coalesce(excluded.vehicle_id, vehicle_id)",
                (
                    e.transaction_id,
                    e.charger_id,
                    e.evse_id,
                    _ts(e.at),
                    e.id_token,
                    vid,
                    e.seq_no,
                    json.dumps(seen),
                ),
            )
            if e.event_type == TransactionEventType.ENDED:
                db.execute(
                    "UPDATE transactions SET ended_at=?, stopped_reason=? WHERE transaction_id=?",
                    (_ts(e.at), e.stopped_reason, e.transaction_id),
                )
        ev = self._evse(e.charger_id, e.evse_id)
        if e.event_type == TransactionEventType.ENDED:
            plugged = e.plugged if e.plugged is not None else ev.plugged
            if e.stopped_reason == "EVDisconnected":
                plugged = False
            ev = replace(ev, transaction_id=None, plugged=plugged, charging_state=e.charging_state)
        else:
            ev = replace(
                ev,
                transaction_id=e.transaction_id,
                plugged=e.plugged if e.plugged is not None else True,
                charging_state=e.charging_state or ev.charging_state,
            )
        self._put_evse(replace(ev, updated_at=e.at), e.at)
        out = [Changed("charger", e.charger_id), Changed("transaction", e.transaction_id)]
        if vid:
            out.append(Changed("vehicle", vid))
        return out

    def _needs(self, e: EvChargingNeeds) -> list[Changed]:
        vid = self.vehicle_at(e.charger_id, e.evse_id) or self._bind_vehicle(
            e.charger_id, e.evse_id, None
        )
        if vid is None:
            return []
        v = self._vehicles[vid]
        v = replace(
            v,
            capacity_wh=e.capacity_wh if e.capacity_wh is not None else v.capacity_wh,
            departure_time=e.departure_time or v.departure_time,
            energy_request_wh=e.energy_request_wh
            if e.energy_request_wh is not None
            else v.energy_request_wh,
        )
        self._put_vehicle(v)
        if e.soc_percent is not None:
            self.record_soc(vid, e.soc_percent, e.at, "iso15118", publish=False)
        return [Changed("vehicle", vid)]

    # ---------------------------------------------------------------- vehicles

    def record_soc(
        self, vehicle_id: str, soc_percent: float, at: datetime, source: str, publish: bool = True
    ) -> None:
        """A SoC reading from the charger, ISO 15118 or the vehicle's own MQTT topic."""
        if not 0.0 <= soc_percent <= 100.0:
            raise ValueError(f"SoC {soc_percent} outside 0..100")
        v = self._vehicles.get(vehicle_id) or VehicleState(vehicle_id=vehicle_id)
        if v.soc_at is not None and at < v.soc_at - timedelta(seconds=1):
            return  # older than what we know (e.g. a late offline meter value)
        with self._tx() as db:
            db.execute(
                "INSERT INTO soc_samples VALUES (?,?,?,?)",
                (vehicle_id, _ts(at), soc_percent, source),
            )
        self._put_vehicle(replace(v, soc_percent=soc_percent, soc_at=at))
        if publish:
            self.changes.publish(Changed("vehicle", vehicle_id))

    # ---------------------------------------------------------------- snapshot

    def snapshot(self, now: datetime) -> Snapshot:
        return Snapshot(
            taken_at=now,
            chargers=dict(self._chargers),
            vehicles={vid: self._view(v) for vid, v in self._vehicles.items()},
            overrides=self.active_overrides(now),
            grid_outage=self._grid_outage,
        )

    def active_overrides(self, now: datetime) -> tuple[Override, ...]:
        return tuple(o for o in self._overrides.values() if o.active(now))

    def vehicle_view(self, vehicle_id: str) -> VehicleState | None:
        """One vehicle as a snapshot would show it, without copying the whole fleet: the
        dispatcher asks this once per vehicle and tick."""
        v = self._vehicles.get(vehicle_id)
        return None if v is None else self._view(v)

    def _view(self, v: VehicleState) -> VehicleState:
        plugged = False
        power: float | None = None
        if v.charger_id is not None and v.evse_id is not None:
            ev = self._charger(v.charger_id).evses.get(v.evse_id)
            if ev is not None:
                plugged, power = ev.plugged, ev.power_w
        return replace(v, plugged=plugged, power_w=power if plugged else None)

    def charger_state(self, charger_id: str) -> ChargerState | None:
        """One charger without building a whole snapshot (hot paths follow every message)."""
        return self._chargers.get(charger_id)

    def set_grid_outage(self, outage: bool) -> None:
        if outage != self._grid_outage:
            self._grid_outage = outage
            self.changes.publish(Changed("grid"))

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
