"""The controller's view of the home in one round: what each EVSE takes now, its share of the
grid connection, and the setpoint followed from the meter (dispatch/home_follow.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from v2g_gateway.config import Config
from v2g_gateway.dispatch.acting import Evse
from v2g_gateway.dispatch.home_follow import Cap, EvseKey, Follower, breach, caps
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.dispatch.site_types import ChargeMode
from v2g_gateway.dispatch.situation import Plan
from v2g_gateway.home.meter import HomeNow
from v2g_gateway.model import ChargerState
from v2g_gateway.soc import PlugSession

UNKNOWN = HomeNow(None, None, None, None)


class HomeView(Protocol):
    def now(self) -> HomeNow: ...


class SiteView:
    def __init__(
        self,
        cfg: Config,
        policy: Policy,
        home: HomeView | None,
        clock_now: Callable[[], datetime],
    ) -> None:
        self._cfg = cfg
        self._clock_now = clock_now
        self._policy = policy
        self._home = home
        self._follow = Follower(cfg.home)
        self._export_kw = cfg.home.export_limit_kw(cfg.preferences.grid_export_limit_w)
        self._caps: dict[EvseKey, Cap] = {}
        self._powers: dict[EvseKey, float] = {}
        self._told: dict[EvseKey, list[tuple[float, float]]] = {}
        self._now = UNKNOWN
        self._woke_at: float | None = None

    def begin(
        self,
        mono: float,
        sessions: Sequence[tuple[PlugSession, ChargerState]],
        mem: Mapping[EvseKey, Evse],
    ) -> None:
        """Measure once per round: the home, and what every plugged EVSE takes now."""
        self._now = self._home.now() if self._home is not None else UNKNOWN
        self._powers = {}
        now = self._clock_now()
        at = self._now.grid_mono
        for session, charger in sessions:
            key = (session.charger_id, session.evse_id)
            m = mem.get(key)
            sent = None if m is None else (m.inflight or m.last)
            prof = None if sent is None else sent.profile
            course = () if prof is None else prof.spec.course(now)
            if course:
                told = course[0][1]
            else:
                ev = charger.evses.get(session.evse_id)
                told = 0.0 if ev is None or ev.power_w is None else ev.power_w
            history = self._told.setdefault(key, [])
            if not history or history[-1][1] != told:
                history.append((mono, float(told)))
                del history[:-20]
            # What it was told when the meter measured: the grid reading and the cars' powers
            # then belong together (a meter's reading lags the commands sent since).
            then = [w for t, w in history if at is None or t <= at]
            self._powers[key] = then[-1] if then else history[0][1]
        for key in [k for k in self._told if k not in self._powers]:
            del self._told[key]
        self._caps = caps(self._cfg.home, self._now, self._powers, self._export_kw)

    def cap(self, key: EvseKey) -> Cap | None:
        return self._caps.get(key)

    def mode(self, vehicle_id: str | None) -> ChargeMode:
        if vehicle_id is None:
            return ChargeMode.SMART
        return ChargeMode.parse(str(self._policy.preference("charge_mode", vehicle_id)))

    def follow(
        self,
        key: EvseKey,
        vehicle_id: str | None,
        plan: Plan,
        mono: float,
        limits: tuple[float, float, float],
    ) -> Plan:
        """The plan's power for now, or the one followed from the meter inside the slot."""
        if self._home is None:
            return plan
        mode = self.mode(vehicle_id)
        sharing = sum(1 for k in self._powers) or 1
        w, why = self._follow.setpoint(
            key,
            mono,
            mode,
            plan.now_w,
            plan.reason,
            self._now,
            self._powers.get(key, 0.0),
            sharing,
            *limits,
        )
        if w == plan.now_w and why == plan.reason:
            return plan
        return dataclasses.replace(plan, now_w=w, reason=why)

    def wants_wake(self, grid_w: float, mono: float) -> bool:
        """A grid reading: wake at once on a breach, else at most every follow interval."""
        if breach(self._cfg.home, grid_w, self._export_kw):
            self._woke_at = mono
            return True
        every = self._cfg.home.follow_min_interval_s
        if self._woke_at is None or mono - self._woke_at >= every:
            self._woke_at = mono
            return True
        return False
