"""One stay of the backtest's planner strategy, through the daemon's own dispatch core and gate.

Every few minutes (a third of the profile's validity, when the controller renews) the simulated
car reports its SoC, the plan's slot becomes a situation, the core decides and the gate bounds
the profile, and the simulated battery follows what that profile tells the charger. So the
backtest's "zero reserve violations" is a test of the gate with a battery, not of the
planner's own bounds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from v2g_gateway.backtest.results import SlotRecord
from v2g_gateway.backtest.stays import Run, Stay
from v2g_gateway.config import Config
from v2g_gateway.dispatch.core import Ahead, Sent, step
from v2g_gateway.dispatch.plan_types import Plan, PlanVehicle
from v2g_gateway.dispatch.situation import Plan as PlanNow
from v2g_gateway.dispatch.situation import Wishes, situation
from v2g_gateway.model import (
    ChargerState,
    ChargingProfileSpec,
    EvseState,
    UserPriceSlot,
    VehicleState,
)
from v2g_gateway.soc import PlugSession, SocReading, SocSource

TOL = 1e-6


@dataclass
class StayOutcome:
    solves: int = 0
    violations: int = 0
    steps: int = 0


def _limit_at(spec: ChargingProfileSpec | None, at: datetime) -> float:
    if spec is None or not spec.start <= at < spec.valid_to:
        return 0.0
    limit = 0.0
    for p in spec.periods:
        if spec.start + timedelta(seconds=p.start_offset_s) <= at:
            limit = p.limit_w
    return limit


def _segments(
    spec: ChargingProfileSpec | None, t0: datetime, t1: datetime
) -> list[tuple[float, float]]:
    """(hours, W) pieces of [t0, t1) under `spec`."""
    cuts = {t0, t1}
    if spec is not None:
        cuts |= {spec.start + timedelta(seconds=p.start_offset_s) for p in spec.periods}
        cuts.add(spec.valid_to)
    edges = sorted(c for c in cuts if t0 <= c <= t1)
    return [
        ((b - a).total_seconds() / 3600.0, _limit_at(spec, a))
        for a, b in itertools.pairwise(edges)
        if b > a
    ]


def run_stay(
    cfg: Config,
    v: PlanVehicle,
    run: Run,
    prices: Sequence[UserPriceSlot],
    stay: Stay,
    make_plan: Callable[[int, float], Plan],
    replan_after: Callable[[datetime], datetime],
) -> StayOutcome:
    """Drive one stay; `make_plan(i, soc_kwh)` plans from slot i, `replan_after(t)` says when
    the next plan is due (new day-ahead prices)."""
    out = StayOutcome()
    vcfg = cfg.vehicles[0]
    charger_id = vcfg.charger or (cfg.chargers[0].id if cfg.chargers else "charger")
    validity_s = cfg.preferences.profile_validity_minutes * 60
    every = timedelta(seconds=max(60, validity_s // 3))
    reserve_pct = 100.0 * v.reserve_kwh / v.capacity_kwh
    wishes = Wishes(
        reserve_pct,
        cfg.preferences.v2g_enabled and v.can_discharge,
        cfg.preferences.discharge_above_per_kwh,
    )
    start = prices[stay.arrive_i].start
    session = PlugSession(
        "backtest", charger_id, 1, start, 0.0, vehicle_id=vcfg.id, identified_by="default"
    )
    current: Plan | None = None
    replan_at = start
    last: Sent | None = None
    for i in range(stay.arrive_i, stay.leave_i):
        p = prices[i]
        t = p.start
        imported = exported = 0.0
        while t < p.end:
            t1 = min(t + every, p.end)
            if current is None or t >= replan_at or current.slot_at(t) is None:
                current = make_plan(i, run.soc)
                out.solves += 1
                replan_at = replan_after(t)
            mono = (t - start).total_seconds()
            spec = _decide(
                cfg, v, run, current, prices, i, t, mono, session, charger_id, wishes, last
            )
            if spec is not None:
                last = spec
            in_force = None if last is None or last.profile is None else last.profile.spec
            discharged = False
            for hours, w in _segments(in_force, t, t1):
                if w > 0:
                    room = max(0.0, v.max_kwh - run.soc) / v.eta_c  # the car stops when full
                    kwh = min(w / 1000.0 * hours, room)
                    run.soc += kwh * v.eta_c
                    imported += kwh
                elif w < 0:
                    kwh = -w / 1000.0 * hours
                    run.soc -= kwh / v.eta_d
                    exported += kwh
                    discharged = True
            if discharged and run.soc < v.reserve_kwh - TOL:
                out.violations += 1
            out.steps += 1
            t = t1
        run.cost += p.import_per_kwh * imported
        run.revenue += p.export_per_kwh * exported
        run.charged += imported
        run.exported += exported
        run.records.append(
            SlotRecord(
                p.start,
                p.end,
                True,
                imported / p.hours,
                exported / p.hours,
                run.soc,
                p.import_per_kwh,
                p.export_per_kwh,
            )
        )
    return out


def _decide(
    cfg: Config,
    v: PlanVehicle,
    run: Run,
    current: Plan,
    prices: Sequence[UserPriceSlot],
    i: int,
    t: datetime,
    mono: float,
    session: PlugSession,
    charger_id: str,
    wishes: Wishes,
    last: Sent | None,
) -> Sent | None:
    """What the controller would have in force after this round (None: unchanged)."""
    soc_pct = max(0.0, min(100.0, 100.0 * run.soc / v.capacity_kwh))
    reading = SocReading(soc_pct, SocSource.CHARGER, t, mono, session.session_id)
    now_session = replace(session, soc=reading)
    ev = EvseState(charger_id, 1, plugged=True, transaction_id="backtest", session=now_session)
    charger = ChargerState(charger_id, online=True, evses={1: ev})
    vehicle = VehicleState(
        v.vehicle_id,
        charger_id,
        1,
        plugged=True,
        session=now_session,
        capacity_wh=v.capacity_kwh * 1000,
    )
    slot = current.slot_at(t)
    horizon = t + timedelta(minutes=cfg.preferences.profile_validity_minutes)
    ahead = tuple(
        Ahead(s.start, _price(prices, i, s.start), s.net_kw * 1000.0, s.reason)
        for s in current.slots
        if t < s.start < horizon
    )
    plan = PlanNow(
        None if slot is None else slot.net_kw * 1000.0, None if slot is None else slot.reason, ahead
    )
    sit = situation(cfg, t, mono, now_session, vehicle, charger, wishes, prices[i], plan, last=last)
    decided = step(sit)
    if decided.send is not None:
        return Sent(decided.send, decided.decision.mode, decided.decision.reason)
    if decided.clear:
        return Sent(None, decided.decision.mode, decided.decision.reason)
    return None


def _price(prices: Sequence[UserPriceSlot], i: int, at: datetime) -> UserPriceSlot | None:
    for p in prices[i : i + 8]:
        if p.start <= at < p.end:
            return p
    return None
