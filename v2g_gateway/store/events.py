"""Charger events into state: EVSEs, transactions and plug sessions (their SoC readings are
judged in store/readings.py).

Every event is stamped with the gateway's receipt time here (wall and monotonic clock): that,
not the charger's timestamp, orders readings and measures their age, so a charger whose clock is
hours ahead can neither make its readings young nor block correct later ones. The rules about
who is plugged in and which readings count are pure (store/sessions.py); this module persists
what they decide.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from v2g_gateway.bus import Changed
from v2g_gateway.car_limits import key as car_limits_key
from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
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
    TransactionChanged,
    TransactionEventType,
)
from v2g_gateway.soc import PlugSession, SocSource
from v2g_gateway.store.plugs import REBOOTED
from v2g_gateway.store.readings import ReadingsMixin
from v2g_gateway.store.rows import ts as _ts

log = structlog.get_logger(__name__)

SEEN_SEQ_NOS = 64  # per transaction: re-sends come only from the charger's recent queue


class ChargerEventsMixin(ReadingsMixin):
    _db: sqlite3.Connection
    _cfg: Config
    _clock: Clock
    _lost_transactions: dict[tuple[str, str], None]  # ended by a reboot (insertion-ordered)

    if TYPE_CHECKING:  # provided by the Store and its other mixins

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...  # the Store's

        def notify(self, n: Notification) -> None: ...  # HistoryMixin's

    def _apply(self, e: ChargerEvent) -> list[Changed]:
        if isinstance(e, ChargerConnected):
            ch = replace(self._charger(e.charger_id), online=True, last_seen=e.at)
            self._put_charger(replace(ch, connected_at=self._clock.now(), spoken=False))
            return [Changed("charger", e.charger_id)]
        if not isinstance(e, ChargerDisconnected) and not self._charger(e.charger_id).spoken:
            self._put_charger(replace(self._charger(e.charger_id), spoken=True))
        if isinstance(e, HeartbeatSeen):
            self._put_charger(replace(self._charger(e.charger_id), online=True, last_seen=e.at))
            return [Changed("charger", e.charger_id)]
        if isinstance(e, ChargerDisconnected):
            self._put_charger(replace(self._charger(e.charger_id), online=False, last_seen=e.at))
            return [Changed("charger", e.charger_id)]
        if isinstance(e, ChargerBooted):
            return self._booted(e)
        if isinstance(e, ChargerCapability):
            ch = self._charger(e.charger_id)
            caps = {**ch.capabilities, e.name: e.value}
            self._put_charger(replace(ch, capabilities=caps, last_seen=e.at))
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

    # ---------------------------------------------------------------- charger level

    def _booted(self, e: ChargerBooted) -> list[Changed]:
        """A reboot: the charger forgot its transactions and profiles, and whatever is plugged
        in now is a new session (the SoC we had may be of a car that left meanwhile)."""
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
        out = [Changed("charger", e.charger_id), Changed("boot", e.charger_id)]
        while len(self._lost_transactions) > 256:
            del self._lost_transactions[next(iter(self._lost_transactions))]
        for ev in list(ch.evses.values()):
            if ev.transaction_id is not None:
                self._lost_transactions[(e.charger_id, ev.transaction_id)] = None
            vid = self._end_session(ev, REBOOTED)
            if vid:
                out.append(Changed("vehicle", vid))
            self._put_evse(replace(ev, session=None, transaction_id=None, plugged=False), e.at)
        self._put_charger(replace(ch, evses=self._charger(e.charger_id).evses))
        return out

    # ---------------------------------------------------------------- EVSE level

    def _status(self, e: ConnectorStatusChanged) -> list[Changed]:
        ev = self._evse(e.charger_id, e.evse_id)
        plugged = e.status == ConnectorStatus.OCCUPIED
        out = [Changed("charger", e.charger_id)]
        if not plugged:
            vid = self._end_session(ev, f"connector {e.status.value}")
            if vid:
                out.append(Changed("vehicle", vid))
            ev = replace(ev, session=None)
        ev = replace(ev, status=e.status, plugged=plugged)
        self._put_evse(replace(ev, updated_at=e.at), e.at)
        if plugged:
            out += self._ensure_session(e.charger_id, e.evse_id, None)
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
        if ev.plugged:
            out += self._ensure_session(e.charger_id, e.evse_id, None)
        session = self._evse(e.charger_id, e.evse_id).session
        if e.soc_percent is not None and session is not None:
            if e.offline or (
                e.transaction_id is not None
                and ev.transaction_id is not None
                and e.transaction_id != ev.transaction_id
            ):
                # Queued while offline, or of another transaction: a reading of the past. It
                # goes into the history at the charger's time, never into the present.
                self._soc_history(session, e.soc_percent, SocSource.CHARGER, e.at, e.at)
            else:
                reading = self._reading(e.soc_percent, SocSource.CHARGER, session, e.at)
                if reading is None:  # measured long before it arrived: history only
                    self._soc_history(session, e.soc_percent, SocSource.CHARGER, e.at, e.at)
                else:
                    out += self._add_reading(session, reading)
        if session is not None and session.vehicle_id:
            out.append(Changed("vehicle", session.vehicle_id))
        return out

    def _transaction(self, e: TransactionChanged) -> list[Changed]:
        row = self._db.execute(
            "SELECT seen_seq_nos FROM transactions WHERE charger_id=? AND transaction_id=?",
            (e.charger_id, e.transaction_id),
        ).fetchone()
        seen: list[int] = json.loads(row[0]) if row else []
        if e.seq_no in seen:
            return []  # a re-sent event: already applied
        seen = sorted([*seen, e.seq_no])[-SEEN_SEQ_NOS:]
        out = [
            Changed("charger", e.charger_id),
            Changed("transaction", f"{e.charger_id}/{e.transaction_id}"),
        ]
        ev = self._evse(e.charger_id, e.evse_id)
        if e.event_type == TransactionEventType.ENDED:
            plugged = e.plugged if e.plugged is not None else ev.plugged
            if e.stopped_reason == "EVDisconnected":
                plugged = False
            tx_now = None if ev.transaction_id == e.transaction_id else ev.transaction_id
            ev = replace(
                ev, transaction_id=tx_now, plugged=plugged, charging_state=e.charging_state
            )
        elif e.offline or (e.charger_id, e.transaction_id) in self._lost_transactions:
            # Replayed from the charger's queue, or of a transaction its reboot ended: history,
            # not the present. It must not bring back a transaction the charger no longer runs.
            pass
        else:
            ev = replace(
                ev,
                transaction_id=e.transaction_id,
                plugged=e.plugged if e.plugged is not None else True,
                charging_state=e.charging_state or ev.charging_state,
            )
        if not ev.plugged:
            vid = self._end_session(ev, "car unplugged")
            if vid:
                out.append(Changed("vehicle", vid))
            ev = replace(ev, session=None)
        self._put_evse(replace(ev, updated_at=e.at), e.at)
        if ev.plugged:
            out += self._ensure_session(e.charger_id, e.evse_id, e.id_token)
        session = self._evse(e.charger_id, e.evse_id).session
        with self._tx() as db:
            db.execute(
                "INSERT INTO transactions (charger_id, transaction_id, evse_id, started_at, "
                "id_token, vehicle_id, last_seq_no, seen_seq_nos, session_id) "
                "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(charger_id, transaction_id) DO UPDATE SET "
                "last_seq_no=max(last_seq_no, excluded.last_seq_no), "
                "seen_seq_nos=excluded.seen_seq_nos, id_token=coalesce(excluded.id_token, id_token), "
                "vehicle_id=coalesce(excluded.vehicle_id, vehicle_id), "
                "session_id=coalesce(session_id, excluded.session_id)",
                (
                    e.charger_id,
                    e.transaction_id,
                    e.evse_id,
                    _ts(e.at),
                    e.id_token,
                    None if session is None else session.vehicle_id,
                    e.seq_no,
                    json.dumps(seen),
                    None if session is None else session.session_id,
                ),
            )
            if e.event_type == TransactionEventType.ENDED:
                db.execute(
                    "UPDATE transactions SET ended_at=?, stopped_reason=? "
                    "WHERE charger_id=? AND transaction_id=?",
                    (_ts(e.at), e.stopped_reason, e.charger_id, e.transaction_id),
                )
        if session is not None and session.vehicle_id:
            out.append(Changed("vehicle", session.vehicle_id))
        return out

    def _needs(self, e: EvChargingNeeds) -> list[Changed]:
        ev = self._evse(e.charger_id, e.evse_id)
        if ev.session is None and not ev.plugged:
            return []  # nobody is plugged in as far as we know: nothing to attach it to
        out = self._ensure_session(e.charger_id, e.evse_id, None)
        session = self._evse(e.charger_id, e.evse_id).session
        assert session is not None
        session = replace(
            session,
            capacity_wh=e.capacity_wh if e.capacity_wh is not None else session.capacity_wh,
            departure_time=e.departure_time or session.departure_time,
            energy_request_wh=e.energy_request_wh
            if e.energy_request_wh is not None
            else session.energy_request_wh,
        )
        self._put_session(session)
        if e.bidirectional is not None or e.max_discharge_w is not None:
            out += self._car_limits(e, session)  # the car stated V2X parameters
        if e.soc_percent is not None:
            reading = self._reading(e.soc_percent, SocSource.EV, session, e.at)
            if reading is not None:
                out += self._add_reading(session, reading)
        if session.vehicle_id:
            out.append(Changed("vehicle", session.vehicle_id))
        return out

    def _car_limits(self, e: EvChargingNeeds, session: PlugSession) -> list[Changed]:
        """OCPP 2.1: the car's own V2X limits, kept for this plug session (car_limits.py)."""
        floor = None
        capacity = session.capacity_wh
        if e.v2x_min_energy_wh is not None and e.soc_percent is not None and capacity:
            floor = min(100.0, e.soc_percent + 100.0 * e.v2x_min_energy_wh / capacity)
        value = {
            "session_id": session.session_id,
            "max_charge_w": e.max_charge_w,
            "max_discharge_w": e.max_discharge_w,
            "min_charge_w": e.min_charge_w,
            "min_discharge_w": e.min_discharge_w,
            "bidirectional": e.bidirectional,
            "floor_percent": floor,
        }
        ch = self._charger(e.charger_id)
        caps = {**ch.capabilities, car_limits_key(e.evse_id): value}
        self._put_charger(replace(ch, capabilities=caps))
        return [Changed("charger", e.charger_id)]

    # ---------------------------------------------------------------- rows

    def _charger(self, charger_id: str) -> ChargerState:
        return self._chargers.get(charger_id) or ChargerState(charger_id=charger_id)

    def _evse(self, charger_id: str, evse_id: int) -> EvseState:
        ch = self._charger(charger_id)
        return ch.evses.get(evse_id) or EvseState(charger_id=charger_id, evse_id=evse_id)

    def _put_charger(self, ch: ChargerState) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO chargers (charger_id, vendor, model, serial, firmware, online, "
                "last_seen, booted_at, capabilities, discharge) VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(charger_id) DO UPDATE SET "
                "vendor=excluded.vendor, model=excluded.model, serial=excluded.serial, "
                "firmware=excluded.firmware, online=excluded.online, last_seen=excluded.last_seen, "
                "booted_at=excluded.booted_at, capabilities=excluded.capabilities, "
                "discharge=excluded.discharge",
                (
                    ch.charger_id,
                    ch.vendor,
                    ch.model,
                    ch.serial,
                    ch.firmware,
                    int(ch.online),
                    _ts(ch.last_seen),
                    _ts(ch.booted_at),
                    json.dumps(ch.capabilities, default=str),
                    json.dumps(ch.discharge.to_json()),
                ),
            )
        self._chargers[ch.charger_id] = ch
