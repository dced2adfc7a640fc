"""Plug sessions and the vehicles bound to them, kept in memory and in SQLite.

The open sessions are the only binding of vehicles to EVSEs: a vehicle's charger, EVSE and SoC
are those of its session, so a plug-out (or a reboot) unbinds it and the next car at that EVSE
starts with no SoC. Views are built from here for dispatch and MQTT.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from v2g_gateway.bus import Bus, Changed
from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.model import ChargerState, EvseState, VehicleState
from v2g_gateway.soc import PlugSession, SocReading
from v2g_gateway.store import sessions as rules
from v2g_gateway.store.rows import SESSION_COLUMNS, reading_to_json, session_row
from v2g_gateway.store.rows import ts as _ts

log = structlog.get_logger(__name__)

REBOOTED = "charger rebooted"  # a session ended by a reboot, not by a plug-out


class PlugsMixin:
    _db: sqlite3.Connection
    _cfg: Config
    _clock: Clock
    _chargers: dict[str, ChargerState]
    _vehicles: dict[str, VehicleState]
    _sessions: dict[str, PlugSession]  # open sessions by id
    _vehicle_sessions: dict[str, str]  # vehicle id -> its open session's id
    changes: Bus[Changed]

    if TYPE_CHECKING:  # provided by the Store and its other mixins

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...  # the Store's

        def _charger(self, charger_id: str) -> ChargerState: ...  # ChargerEventsMixin's

        def _evse(self, charger_id: str, evse_id: int) -> EvseState: ...  # ChargerEventsMixin's

    # ---------------------------------------------------------------- sessions

    def _ensure_session(self, charger_id: str, evse_id: int, id_token: str | None) -> list[Changed]:
        """The EVSE is plugged: start its session if it has none, and (re)identify the car."""
        ev = self._evse(charger_id, evse_id)
        session = ev.session
        out: list[Changed] = []
        if session is None:
            session = rules.new_session(
                charger_id,
                evse_id,
                self._clock.now(),
                self._clock.monotonic(),
                ev.energy_import_wh,
                ev.energy_export_wh,
            )
            log.info("store.plug_session_started", charger_id=charger_id, evse_id=evse_id)
        elif id_token is None or id_token == session.id_token:
            return out
        who = rules.identify(self._cfg, charger_id, id_token)
        if session.vehicle_id is None and not who.strong and self._guest_before_reboot(ev):
            who = rules.GUEST  # the same car as before the reboot, and that was a guest
        bound, demoted = rules.bind(session, who, id_token, self._sessions)
        for d in demoted:
            self._put_session(d)
            out.append(Changed("charger", d.charger_id))
        if session.vehicle_id and session.vehicle_id != bound.vehicle_id:
            out.append(Changed("vehicle", session.vehicle_id))
        self._put_session(bound)
        if bound.vehicle_id:
            out.append(Changed("vehicle", bound.vehicle_id))
        return out

    def _guest_before_reboot(self, ev: EvseState) -> bool:
        """Was this EVSE's last session a guest's that only a reboot ended (no plug-out seen)?
        Then what is plugged in now is that guest still, until a token says otherwise."""
        # By the order of writing, not by time: the wall clock may have stepped meanwhile.
        row = self._db.execute(
            "SELECT vehicle_id, ended_reason FROM plug_sessions WHERE charger_id=? AND evse_id=? "
            "AND ended_at IS NOT NULL ORDER BY rowid DESC LIMIT 1",
            (ev.charger_id, ev.evse_id),
        ).fetchone()
        return row is not None and row[0] is None and row[1] == REBOOTED

    def _end_session(self, ev: EvseState, why: str) -> str | None:
        """End the EVSE's session; returns the vehicle it unbinds."""
        s = ev.session
        if s is None:
            return None
        now = self._clock.now()
        with self._tx() as db:
            db.execute(
                "UPDATE plug_sessions SET ended_at=?, ended_reason=? WHERE session_id=?",
                (_ts(now), why, s.session_id),
            )
            db.execute(
                "UPDATE evses SET session_id=NULL WHERE charger_id=? AND evse_id=?",
                (ev.charger_id, ev.evse_id),
            )
        self._sessions.pop(s.session_id, None)
        if s.vehicle_id and self._vehicle_sessions.get(s.vehicle_id) == s.session_id:
            del self._vehicle_sessions[s.vehicle_id]
        self._set_evse_session(ev.charger_id, ev.evse_id, None)
        log.info("store.plug_session_ended", charger_id=ev.charger_id, evse_id=ev.evse_id, why=why)
        return s.vehicle_id

    def _put_session(self, s: PlugSession) -> None:
        mono = self._clock.monotonic()
        with self._tx() as db:
            db.execute(
                f"INSERT OR REPLACE INTO plug_sessions ({SESSION_COLUMNS}) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                session_row(s, mono),
            )
            db.execute(
                "UPDATE evses SET session_id=? WHERE charger_id=? AND evse_id=?",
                (s.session_id, s.charger_id, s.evse_id),
            )
        old = self._sessions.get(s.session_id)
        if (
            old is not None
            and old.vehicle_id
            and old.vehicle_id != s.vehicle_id
            and self._vehicle_sessions.get(old.vehicle_id) == s.session_id
        ):
            del self._vehicle_sessions[old.vehicle_id]
        self._sessions[s.session_id] = s
        if s.vehicle_id:
            self._vehicle_sessions[s.vehicle_id] = s.session_id
        self._set_evse_session(s.charger_id, s.evse_id, s)

    def _set_evse_session(self, charger_id: str, evse_id: int, s: PlugSession | None) -> None:
        ch = self._charger(charger_id)
        ev = ch.evses.get(evse_id) or EvseState(charger_id=charger_id, evse_id=evse_id)
        self._chargers[charger_id] = replace(
            ch, evses={**ch.evses, evse_id: replace(ev, session=s)}
        )

    def _vehicle_session(self, vehicle_id: str) -> PlugSession | None:
        sid = self._vehicle_sessions.get(vehicle_id)
        return None if sid is None else self._sessions.get(sid)

    def _put_evse(self, ev: EvseState, last_seen: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO evses (charger_id, evse_id, status, plugged, "
                "transaction_id, charging_state, power_w, energy_import_wh, energy_export_wh, "
                "voltage_v, updated_at, session_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
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
                    None if ev.session is None else ev.session.session_id,
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

    # ---------------------------------------------------------------- vehicles

    def _set_last_soc(self, vehicle_id: str, r: SocReading) -> None:
        v = self._vehicles.get(vehicle_id)
        if v is None:
            return
        last = v.last_soc
        if last is not None and last.age_known and r.received_mono < last.received_mono:
            return
        with self._tx() as db:
            db.execute(
                "UPDATE vehicles SET last_soc=? WHERE vehicle_id=?",
                (reading_to_json(r, self._clock.monotonic()), vehicle_id),
            )
        self._vehicles[vehicle_id] = replace(v, last_soc=r)

    def vehicle_view(self, vehicle_id: str) -> VehicleState | None:
        """One vehicle as dispatch and MQTT see it: bound to its plug session, if any."""
        v = self._vehicles.get(vehicle_id)
        return None if v is None else self._view(v)

    def _view(self, v: VehicleState) -> VehicleState:
        s = self._vehicle_session(v.vehicle_id)
        if s is None:
            return replace(v, charger_id=None, evse_id=None, plugged=False, session=None)
        ev = self._charger(s.charger_id).evses.get(s.evse_id)
        plugged = ev is not None and ev.plugged
        return replace(
            v,
            charger_id=s.charger_id,
            evse_id=s.evse_id,
            plugged=plugged,
            session=s,
            power_w=ev.power_w if ev is not None and plugged else None,
            capacity_wh=s.capacity_wh or v.capacity_wh,
            departure_time=s.departure_time,
            energy_request_wh=s.energy_request_wh,
        )

    def vehicle_at(self, charger_id: str, evse_id: int) -> str | None:
        ev = self._charger(charger_id).evses.get(evse_id)
        return None if ev is None or ev.session is None else ev.session.vehicle_id

    def open_sessions(self) -> list[PlugSession]:
        return list(self._sessions.values())

    def session(self, session_id: str) -> PlugSession | None:
        """An open plug session."""
        return self._sessions.get(session_id)
