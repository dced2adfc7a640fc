"""The planner's building blocks shared by the one-car planner and the site planner.

The horizon (price slots cut at `now`), departure targets as SoC bounds, demand-response and
cycle-limit series, and the human reason of every slot. Pure functions of their arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from v2g_gateway.dispatch.lp_model import LpResult, Vec
from v2g_gateway.dispatch.plan_types import DemandResponse, DepartureTarget, PlanSlot, PlanVehicle
from v2g_gateway.errors import PlanError
from v2g_gateway.model import UserPriceSlot

TOL = 1e-6
REACH_SLACK_KWH = 1e-5  # below what full power reaches: the solver's tolerances
MAX_HORIZON = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class Horizon:
    slots: tuple[UserPriceSlot, ...]  # first one cut to start at `now`
    hours: Vec
    imp: Vec
    exp: Vec
    plugged: tuple[bool, ...]
    load: Vec | None


@dataclass(frozen=True, slots=True)
class TargetBound:
    index: int  # slot whose end SoC is bounded
    target: DepartureTarget
    soc_kwh: float  # the bound actually applied
    at_risk: bool
    beyond: bool = False  # departure after the last known price: only kept reachable


def horizon(
    now: datetime,
    prices: Sequence[UserPriceSlot],
    plugged: Sequence[bool],
    load_kw: Sequence[float] | None,
    max_horizon: timedelta | None = MAX_HORIZON,
) -> tuple[Horizon, list[int]]:
    """The slots from `now` on (the first cut to start at now), and their indexes in `prices`."""
    end_cap = None if max_horizon is None else now + max_horizon
    keep: list[int] = [
        i for i, p in enumerate(prices) if p.end > now and (end_cap is None or p.start < end_cap)
    ]
    if not keep:
        raise PlanError(f"no price slot after {now.isoformat()}: the price horizon has ended")
    slots = []
    for i in keep:
        p = prices[i]
        if p.start < now:
            p = UserPriceSlot(now, p.end, p.import_per_kwh, p.export_per_kwh)
        slots.append(p)
    load = None
    if load_kw is not None:
        load = np.array([max(0.0, load_kw[i]) for i in keep], dtype=np.float64)
    hz = Horizon(
        slots=tuple(slots),
        hours=np.array([s.hours for s in slots], dtype=np.float64),
        imp=np.array([s.import_per_kwh for s in slots], dtype=np.float64),
        exp=np.array([s.export_per_kwh for s in slots], dtype=np.float64),
        plugged=tuple(bool(plugged[i]) for i in keep),
        load=load,
    )
    return hz, keep


def reachable(reach: float) -> float:
    """An out-of-reach target is bound at what full power reaches, a hair below it: exactly at
    it the solver may call the LP infeasible by its own tolerances (1e-7); found by a random
    planner property run with a car at 8.5e-8 kWh."""
    return max(0.0, float(reach) - REACH_SLACK_KWH)


def target_bounds(
    now: datetime,
    v: PlanVehicle,
    targets: Sequence[DepartureTarget],
    hz: Horizon,
    reach: Vec,
    e_upper: float,
    notes: list[str],
) -> list[TargetBound]:
    out: list[TargetBound] = []
    for t in sorted(targets, key=lambda t: t.at):
        if t.at <= now:
            continue
        want = t.soc_kwh
        if want > e_upper + TOL:
            notes.append(f"target {pct(want, v)} % is above the maximum; using the maximum")
            want = e_upper
        end = hz.slots[-1].end
        if t.at > end:
            # Prices stop before the departure: end the horizon with a SoC from which the
            # target can still be reached by charging at full power in the hours left.
            rest_h = (t.at - end).total_seconds() / 3600.0
            slack = v.eta_c * v.max_charge_kw * rest_h if hz.plugged[-1] else 0.0
            want -= slack
            if want <= TOL:
                continue
            k = len(hz.slots) - 1
            notes.append(f"departure at {hhmm(t.at)} is beyond the known prices: kept reachable")
            at_risk = want > reach[k] + TOL
            out.append(TargetBound(k, t, reachable(reach[k]) if at_risk else want, at_risk, True))
            continue
        idx = [i for i, s in enumerate(hz.slots) if s.end <= t.at]
        if not idx:
            notes.append(f"departure at {hhmm(t.at)} is within the current slot")
            continue
        k = idx[-1]
        at_risk = want > reach[k] + TOL
        out.append(TargetBound(k, t, reachable(reach[k]) if at_risk else want, at_risk))
    return out


def overlap_h(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds() / 3600.0)


def dr_series(events: Sequence[DemandResponse], hz: Horizon) -> tuple[Vec, Vec]:
    n = len(hz.slots)
    kw, bonus = np.zeros(n), np.zeros(n)
    for e in events:
        for i, s in enumerate(hz.slots):
            share = overlap_h(s.start, s.end, e.start, e.end) / float(hz.hours[i])
            if share <= 0:
                continue
            if e.power_kw:
                kw[i] = max(kw[i], e.power_kw * share)
            if e.bonus_per_kwh:
                bonus[i] += e.bonus_per_kwh * share
    return kw, bonus


def day_blocks(hz: Horizon, now: datetime, limit: float) -> tuple[tuple[int, int, float], ...]:
    blocks: list[tuple[int, int, float]] = []
    first = 0
    for i, s in enumerate(hz.slots):
        day = int((s.start - now).total_seconds() // 86400)
        if day != int((hz.slots[first].start - now).total_seconds() // 86400):
            blocks.append((first, i, limit))
            first = i
    blocks.append((first, len(hz.slots), limit))
    return tuple(blocks)


# ---------------------------------------------------------------------------------------------
# Output: clean numbers and a human reason per slot


def clean(x: Vec) -> Vec:
    y = np.round(x, 6)
    y[np.abs(y) < 1e-5] = 0.0
    return y


def pct(kwh: float, v: PlanVehicle) -> int:
    return round(100.0 * kwh / v.capacity_kwh)


def hhmm(at: datetime) -> str:
    return at.strftime("%H:%M")


def slot_reasons(
    v: PlanVehicle,
    cur: str,
    threshold: float | None,
    hz: Horizon,
    res: LpResult,
    targets: list[TargetBound],
    spike: Vec,
    dr_kw: Vec,
    reserve: float,
    be: float,
) -> tuple[PlanSlot, ...]:
    c, dh, dx = clean(res.charge_kw), clean(res.home_kw), clean(res.export_kw)
    soc_end = np.round(res.soc_end_kwh, 6)
    out: list[PlanSlot] = []
    soc_start = round(v.soc_kwh, 6)
    for i, s in enumerate(hz.slots):
        nxt = next((tb for tb in targets if tb.index >= i), None)
        d = float(dh[i] + dx[i])
        if not hz.plugged[i]:
            reason = "not plugged in"
        elif c[i] > 0 and d > 0:
            reason = "charging and discharging in turn within the slot"
        elif c[i] > 0:
            if nxt is not None and nxt.at_risk:
                reason = f"full power: {pct(nxt.target.soc_kwh, v)} % by {hhmm(nxt.target.at)} "
                reason += "is out of reach"
            elif soc_start < reserve - TOL:
                reason = f"charging up to the reserve {pct(reserve, v)} %"
            elif s.import_per_kwh < 0:
                reason = f"negative price {s.import_per_kwh:.2f} {cur}/kWh"
            elif nxt is not None and nxt.beyond:
                share = pct(nxt.target.soc_kwh, v)
                reason = f"keeping {share} % by {hhmm(nxt.target.at)} within reach"
            elif nxt is not None and soc_start < nxt.soc_kwh - TOL:
                reason = f"cheapest hours to reach {pct(nxt.soc_kwh, v)} % by {hhmm(nxt.target.at)}"
            else:
                reason = f"cheap energy {s.import_per_kwh:.2f} {cur}/kWh stored for later"
        elif d > 0:
            if dr_kw[i] > 0:
                reason = "demand-response event"
            elif spike[i]:
                reason = (
                    f"export {s.export_per_kwh:.2f} {cur}/kWh at or above your threshold "
                    f"{threshold or 0.0:.2f} (break-even {be:.2f})"
                )
            elif dh[i] >= dx[i]:
                reason = f"powering the home instead of importing at {s.import_per_kwh:.2f}"
            else:
                reason = f"peak {s.export_per_kwh:.2f} {cur}/kWh above break-even {be:.2f}"
        elif soc_start >= max(v.max_kwh, v.soc_kwh) - TOL:
            reason = "full"
        elif reserve > TOL and soc_start <= reserve + TOL and max(hz.exp[i], hz.imp[i]) > be:
            reason = "reserve reached"
        elif nxt is not None and soc_start >= nxt.soc_kwh - TOL:
            reason = f"target {pct(nxt.soc_kwh, v)} % reached"
        else:
            reason = "waiting for a better price"
        out.append(
            PlanSlot(
                start=s.start,
                end=s.end,
                charge_kw=float(c[i]),
                discharge_kw=round(d, 6),
                soc_start_kwh=soc_start,
                soc_end_kwh=float(soc_end[i]),
                import_per_kwh=s.import_per_kwh,
                export_per_kwh=s.export_per_kwh,
                reason=reason,
            )
        )
        soc_start = float(soc_end[i])
    return tuple(out)
