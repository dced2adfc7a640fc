"""SoC readings into plug sessions: how old a reading is, which session it is of, what is kept.

A charger's reading is aged by the gateway's receipt time (corrected by the charger's learnt
clock skew), an MQTT reading by its own timestamp or, retained, as of unknown age; the pure
rules of store/sessions.py judge it against the session (stale, another session's, a jump held
back) and this module persists what they decide.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING

from v2g_gateway.bus import Changed
from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.model import Notification
from v2g_gateway.soc import PlugSession, SocReading, SocSource
from v2g_gateway.store import sessions as rules
from v2g_gateway.store.plugs import PlugsMixin
from v2g_gateway.store.rows import ts as _ts

MAX_LAG_S = 600.0  # a reading measured longer than this before it arrived is of the past


class ReadingsMixin(PlugsMixin):
    _db: sqlite3.Connection
    _cfg: Config
    _clock: Clock

    if TYPE_CHECKING:  # provided by the Store and its other mixins

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...  # the Store's

        def notify(self, n: Notification) -> None: ...  # HistoryMixin's

    def _reading(
        self, percent: float, source: SocSource, session: PlugSession, measured_at: datetime
    ) -> SocReading | None:
        """A charger's reading, aged by how long ago it was measured when that is longer than
        its trip here: the charger's stamp, corrected by its known clock skew, says it was
        measured `lag` seconds before it arrived (a congested link, a busy gateway). A clock
        ahead never makes a reading younger than its receipt; one measured more than
        MAX_LAG_S before it arrived is of the past (None)."""
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"SoC {percent} outside 0..100")
        now = self._clock.now()
        skew = self._charger(session.charger_id).capabilities.get("clock_skew_s")
        skew_s = (
            float(skew) if isinstance(skew, int | float) and not isinstance(skew, bool) else 0.0
        )
        lag = max(0.0, (now - measured_at).total_seconds() + skew_s)
        if lag > MAX_LAG_S:
            return None
        return SocReading(
            percent=percent,
            source=source,
            received_at=now,
            received_mono=self._clock.monotonic() - lag,
            session_id=session.session_id,
            measured_at=measured_at,
        )

    def record_mqtt_soc(
        self,
        vehicle_id: str,
        percent: float,
        *,
        measured_at: datetime | None = None,
        retained: bool = False,
        expiry_s: float | None = None,
    ) -> str:
        """A reading from the vehicle's own topic; returns what became of it.

        A retained message is of unknown age unless it carries its own timestamp; a reading
        counts for the car's plug session only if it was received (or, with a timestamp,
        measured) after the plug-in."""
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"SoC {percent} outside 0..100")
        now, mono = self._clock.now(), self._clock.monotonic()
        age: float | None = None if retained else 0.0
        if measured_at is not None:
            lag = (now - measured_at).total_seconds()
            if lag >= -60.0:  # a car API's clock a minute fast is tolerated, not more
                age = max(0.0, lag)
        session = self._vehicle_session(vehicle_id)
        received_mono = mono - (age or 0.0)
        belongs = session is not None and age is not None and received_mono >= session.started_mono
        reading = SocReading(
            percent=percent,
            source=SocSource.MQTT,
            received_at=now,
            received_mono=received_mono,
            session_id=session.session_id if belongs and session else None,
            measured_at=measured_at,
            expires_mono=None if expiry_s is None else mono + expiry_s,
            age_known=age is not None,
        )
        self._set_last_soc(vehicle_id, reading)
        self.changes.publish(Changed("vehicle", vehicle_id))
        if not belongs or session is None:
            return "not for a plug session" if age is not None else "retained, age unknown"
        changed = self._add_reading(session, reading)
        for c in changed:
            self.changes.publish(c)
        held = self._evse(session.charger_id, session.evse_id).session
        return "held" if held is not None and held.pending_soc == reading else "accepted"

    def _add_reading(self, session: PlugSession, reading: SocReading) -> list[Changed]:
        vcfg = self._cfg.vehicle(session.vehicle_id) if session.vehicle_id else None
        ccfg = self._cfg.charger(session.charger_id)
        capacity = (session.capacity_wh or 0) / 1000.0 or (vcfg.battery_kwh if vcfg else 50.0)
        power = max(ccfg.max_charge_w, ccfg.max_discharge_w) if ccfg else 11000.0
        updated, verdict = rules.judge(session, reading, capacity, power)
        if verdict in (rules.Verdict.STALE, rules.Verdict.OTHER_SESSION):
            return []
        if verdict == rules.Verdict.HELD and session.pending_soc is None and session.soc:
            self.notify(
                Notification(
                    kind="soc_jump_held",
                    message=f"SoC {reading.percent:g} % from {reading.source.value} is a jump "
                    f"from {session.soc.percent:g} % that the charger's power cannot explain; "
                    "held back until a second reading confirms it",
                    at=reading.received_at,
                    level="warning",
                    charger_id=session.charger_id,
                    vehicle_id=session.vehicle_id,
                    data={"held": reading.percent, "previous": session.soc.percent},
                )
            )
        self._put_session(updated)
        if verdict != rules.Verdict.HELD:
            self._soc_history(
                session, reading.percent, reading.source, reading.received_at, reading.measured_at
            )
            if session.vehicle_id:
                self._set_last_soc(session.vehicle_id, reading)
        return [Changed("vehicle", session.vehicle_id)] if session.vehicle_id else []

    def _soc_history(
        self,
        session: PlugSession,
        percent: float,
        source: SocSource,
        at: datetime,
        measured_at: datetime | None,
    ) -> None:
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"SoC {percent} outside 0..100")
        with self._tx() as db:
            db.execute(
                "INSERT INTO soc_samples (vehicle_id, at, soc_percent, source, session_id, "
                "measured_at) VALUES (?,?,?,?,?,?)",
                (
                    session.vehicle_id or f"guest@{session.charger_id}",
                    _ts(at),
                    percent,
                    source.value,
                    session.session_id,
                    _ts(measured_at),
                ),
            )
