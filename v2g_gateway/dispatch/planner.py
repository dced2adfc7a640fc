"""The pure V2G planner: one linear program per vehicle over the known price horizon.

`plan(request)` reads no clock and does no I/O: `request.now` is the only notion of time, so the
controller, the backtest and the tests get the same answer for the same input.

Safety rules are hard bounds, never prices (DESIGN.md section 4):
- SoC never below the reserve. A car arriving below it charges at full power until the reserve
  is reached (the bound applies from the slot by which it is reachable) and never discharges in
  a slot that starts below the reserve.
- Departure targets are lower bounds on the SoC at the last slot boundary before departure. An
  unreachable target becomes "full power from now until departure" and `target_at_risk`.

Economics (the objective): import cost - export revenue - import avoided by powering the home
+ wear per kWh discharged - the value of the energy left at the horizon's end. That terminal
value defaults to median(import price) * eta_c per kWh stored: roughly what refilling the car
later costs, shaded by the charging loss, so the plan neither sells the car empty at the edge
nor buys energy it will not use. A price-spike threshold and demand-response requests are given
a bonus just above the best alternative use of a stored kWh, so they win without making the plan
buy energy that no other use would justify.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from v2g_gateway.dispatch.lp_model import LpInput, LpResult, Vec, solve
from v2g_gateway.dispatch.plan_types import (
    DemandResponse,
    DepartureTarget,
    Plan,
    PlanRequest,
    PlanSlot,
    PlanVehicle,
)
from v2g_gateway.errors import PlanError
from v2g_gateway.model import UserPriceSlot

__all__ = [
    "DemandResponse",
    "DepartureTarget",
    "Plan",
    "PlanRequest",
    "PlanSlot",
    "PlanVehicle",
    "break_even_per_kwh",
    "plan",
]

MAX_HORIZON = timedelta(hours=48)
TOL = 1e-6
PRIORITY_MARGIN = 0.01  # per kWh stored: how much a spike/DR slot must beat any other use


@dataclass(frozen=True, slots=True)
class _Horizon:
    slots: tuple[UserPriceSlot, ...]  # first one cut to start at `now`
    hours: Vec
    imp: Vec
    exp: Vec
    plugged: tuple[bool, ...]
    load: Vec | None


@dataclass(frozen=True, slots=True)
class _TargetBound:
    index: int  # slot whose end SoC is bounded
    target: DepartureTarget
    soc_kwh: float  # the bound actually applied
    at_risk: bool
    beyond: bool = False  # departure after the last known price: only kept reachable


def break_even_per_kwh(refill_per_kwh: float, vehicle: PlanVehicle, wear_per_kwh: float) -> float:
    """Export price at which selling a kWh and buying it back later pays exactly nothing."""
    return refill_per_kwh / (vehicle.eta_c * vehicle.eta_d) + wear_per_kwh


def plan(request: PlanRequest) -> Plan:
    """The cheapest safe schedule for one vehicle; raises PlanError for impossible inputs."""
    _validate(request)
    hz = _horizon(request)
    v = request.vehicle
    n = len(hz.slots)
    notes: list[str] = []

    reserve = min(v.reserve_kwh, v.max_kwh)
    e_upper_val = max(v.max_kwh, v.soc_kwh)
    plugged = np.array(hz.plugged, dtype=bool)
    c_max = np.where(plugged, v.max_charge_kw, 0.0)
    reach = np.minimum(e_upper_val, v.soc_kwh + np.cumsum(v.eta_c * c_max * hz.hours))
    e_lower = np.full(n, reserve) if v.soc_kwh >= reserve else np.minimum(reserve, reach)
    # A slot may discharge only if it starts at or above the reserve for sure.
    start_lower = np.concatenate([[v.soc_kwh], e_lower[:-1]])
    may_discharge = start_lower >= reserve - TOL

    discharge_on = v.can_discharge and request.v2g_enabled and v.max_discharge_kw > 0
    d_max = np.where(plugged & may_discharge & discharge_on, v.max_discharge_kw, 0.0)
    if request.v2h_only:
        if hz.load is None:
            notes.append("V2H-only mode without a home load forecast: no discharge planned")
            dh_max = np.zeros(n)
        else:
            dh_max = np.minimum(d_max, hz.load)
        dx_max = np.zeros(n)
    else:
        dh_max = np.zeros(n) if hz.load is None else np.minimum(d_max, hz.load)
        dx_max = d_max.copy()
        if request.grid_export_limit_kw is not None:
            dx_max = np.minimum(dx_max, request.grid_export_limit_kw)

    targets = _target_bounds(request, hz, reach, e_upper_val, notes)
    for tb in targets:
        e_lower[tb.index] = max(e_lower[tb.index], tb.soc_kwh)
    target_at_risk = any(tb.at_risk for tb in targets)

    wear = request.degradation_cost_per_kwh
    terminal = (
        request.terminal_value_per_kwh
        if request.terminal_value_per_kwh is not None
        else float(np.median(hz.imp)) * v.eta_c
    )
    dr_kw, dr_bonus = _dr_series(request.dr_events, hz)
    value_dh = hz.imp - wear
    value_dx = hz.exp + dr_bonus - wear
    # The best a stored kWh can earn anywhere without priority bonuses.
    can_h, can_x = dh_max > 0, dx_max > 0
    best = max(
        terminal,
        float(np.max(value_dh[can_h], initial=-math.inf)) * v.eta_d,
        float(np.max(value_dx[can_x], initial=-math.inf)) * v.eta_d,
    )
    spike = np.zeros(n, dtype=bool)
    if request.spike_threshold_per_kwh is not None:
        spike = hz.exp >= request.spike_threshold_per_kwh
        priority = (best + PRIORITY_MARGIN) / v.eta_d
        value_dh = np.where(spike, np.maximum(value_dh, priority), value_dh)
        value_dx = np.where(spike, np.maximum(value_dx, priority), value_dx)
    dr_penalty = np.where(
        dr_kw > 0,
        np.maximum(0.0, (best + 2 * PRIORITY_MARGIN) / v.eta_d - np.minimum(value_dh, value_dx)),
        0.0,
    )

    cycle_blocks: tuple[tuple[int, int, float], ...] = ()
    if request.max_cycles_per_day is not None:
        usable = max(v.max_kwh - reserve, 0.0)
        cycle_blocks = _day_blocks(hz, request.now, request.max_cycles_per_day * usable)

    result = solve(
        LpInput(
            hours=hz.hours,
            soc0=v.soc_kwh,
            eta_c=v.eta_c,
            eta_d=v.eta_d,
            c_max=c_max,
            dh_max=dh_max,
            dx_max=dx_max,
            d_max=d_max,
            e_lower=e_lower,
            e_upper=np.full(n, e_upper_val),
            cost_c=hz.imp,
            value_dh=value_dh,
            value_dx=value_dx,
            dr_request_kw=np.minimum(dr_kw, d_max),
            dr_penalty=dr_penalty,
            terminal_value=terminal,
            cycle_blocks=cycle_blocks,
        )
    )

    refill = float(np.min(hz.imp))
    be = break_even_per_kwh(refill, v, wear)
    thr = request.spike_threshold_per_kwh
    if thr is not None and thr < be:
        notes.append(
            f"your discharge threshold {thr:.2f} {request.currency}/kWh is below the break-even "
            f"{be:.2f}: discharging at it loses money, but it is obeyed"
        )
    if target_at_risk:
        for tb in targets:
            if tb.at_risk:
                notes.append(
                    f"{_pct(tb.target.soc_kwh, v)} % by {_hhmm(tb.target.at)} is out of reach: "
                    f"charging at full power, expect {_pct(tb.soc_kwh, v)} %"
                )
    slots = _slots(request, hz, result, targets, spike, dr_kw, reserve, be)
    cost = sum(s.import_per_kwh * s.charge_kw * s.hours for s in slots)
    revenue = float(
        np.sum((hz.imp * _clean(result.home_kw) + hz.exp * _clean(result.export_kw)) * hz.hours)
    )
    return Plan(
        created_at=request.now,
        vehicle_id=v.vehicle_id,
        slots=slots,
        cost=float(cost),
        revenue=revenue,
        target_at_risk=target_at_risk,
        break_even_per_kwh=be,
        notes=tuple(notes),
        currency=request.currency,
        terminal_value_per_kwh=terminal,
    )


# ---------------------------------------------------------------------------------------------
# Input checks and the horizon


def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise PlanError(f"{name} must be a finite number, got {value!r}")


def _validate(r: PlanRequest) -> None:
    if r.now.tzinfo is None:
        raise PlanError("now must be timezone-aware")
    v = r.vehicle
    for name in (
        "capacity_kwh",
        "soc_kwh",
        "reserve_kwh",
        "max_kwh",
        "max_charge_kw",
        "max_discharge_kw",
        "eta_c",
        "eta_d",
    ):
        value = getattr(v, name)
        _finite(f"vehicle {v.vehicle_id}: {name}", value)
        if value < 0:
            raise PlanError(f"vehicle {v.vehicle_id}: {name} must be >= 0, got {value}")
    if v.capacity_kwh <= 0 or v.max_kwh <= 0:
        raise PlanError(f"vehicle {v.vehicle_id}: capacity_kwh and max_kwh must be > 0")
    if not (0 < v.eta_c <= 1 and 0 < v.eta_d <= 1):
        raise PlanError(f"vehicle {v.vehicle_id}: efficiencies must be in (0, 1]")
    if not r.prices:
        raise PlanError("no prices: cannot plan without a price horizon")
    if len(r.plugged) != len(r.prices):
        raise PlanError(f"plugged has {len(r.plugged)} entries for {len(r.prices)} price slots")
    if r.home_load_kw is not None and len(r.home_load_kw) != len(r.prices):
        raise PlanError(
            f"home_load_kw has {len(r.home_load_kw)} entries for {len(r.prices)} price slots"
        )
    prev_end: datetime | None = None
    for i, p in enumerate(r.prices):
        if p.start.tzinfo is None or p.end.tzinfo is None:
            raise PlanError(f"price slot {i} has a naive time")
        if p.end <= p.start:
            raise PlanError(f"price slot {i} ends before it starts ({p.start} .. {p.end})")
        if prev_end is not None and p.start != prev_end:
            raise PlanError(f"price slot {i} starts at {p.start}, not where slot {i - 1} ends")
        _finite(f"price slot {i} import_per_kwh", p.import_per_kwh)
        _finite(f"price slot {i} export_per_kwh", p.export_per_kwh)
        prev_end = p.end
    for name in (
        "degradation_cost_per_kwh",
        "spike_threshold_per_kwh",
        "grid_export_limit_kw",
        "max_cycles_per_day",
        "terminal_value_per_kwh",
    ):
        value = getattr(r, name)
        if value is not None:
            _finite(name, value)
    if r.degradation_cost_per_kwh < 0:
        raise PlanError("degradation_cost_per_kwh must be >= 0")
    if r.grid_export_limit_kw is not None and r.grid_export_limit_kw < 0:
        raise PlanError("grid_export_limit_kw must be >= 0")
    if r.max_cycles_per_day is not None and r.max_cycles_per_day < 0:
        raise PlanError("max_cycles_per_day must be >= 0")
    if r.home_load_kw is not None:
        for i, x in enumerate(r.home_load_kw):
            _finite(f"home_load_kw[{i}]", x)
    for e in r.dr_events:
        if e.end <= e.start:
            raise PlanError(f"demand-response event {e.event_id!r} ends before it starts")
        if e.power_kw is not None and (not math.isfinite(e.power_kw) or e.power_kw < 0):
            raise PlanError(f"demand-response event {e.event_id!r}: power_kw must be >= 0")
    for t in r.targets:
        _finite("departure target soc_kwh", t.soc_kwh)
        if t.at.tzinfo is None:
            raise PlanError("departure target time must be timezone-aware")


def _horizon(r: PlanRequest) -> _Horizon:
    end_cap = r.now + MAX_HORIZON
    keep: list[int] = [i for i, p in enumerate(r.prices) if p.end > r.now and p.start < end_cap]
    if not keep:
        raise PlanError(f"no price slot after {r.now.isoformat()}: the price horizon has ended")
    slots = []
    for i in keep:
        p = r.prices[i]
        if p.start < r.now:
            p = UserPriceSlot(r.now, p.end, p.import_per_kwh, p.export_per_kwh)
        slots.append(p)
    load = None
    if r.home_load_kw is not None:
        load = np.array([max(0.0, r.home_load_kw[i]) for i in keep], dtype=np.float64)
    return _Horizon(
        slots=tuple(slots),
        hours=np.array([s.hours for s in slots], dtype=np.float64),
        imp=np.array([s.import_per_kwh for s in slots], dtype=np.float64),
        exp=np.array([s.export_per_kwh for s in slots], dtype=np.float64),
        plugged=tuple(bool(r.plugged[i]) for i in keep),
        load=load,
    )


def _target_bounds(
    r: PlanRequest, hz: _Horizon, reach: Vec, e_upper: float, notes: list[str]
) -> list[_TargetBound]:
    out: list[_TargetBound] = []
    v = r.vehicle
    for t in sorted(r.targets, key=lambda t: t.at):
        if t.at <= r.now:
            continue
        want = t.soc_kwh
        if want > e_upper + TOL:
            notes.append(f"target {_pct(want, v)} % is above the maximum; using the maximum")
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
            notes.append(f"departure at {_hhmm(t.at)} is beyond the known prices: kept reachable")
            at_risk = want > reach[k] + TOL
            out.append(_TargetBound(k, t, float(reach[k]) if at_risk else want, at_risk, True))
            continue
        idx = [i for i, s in enumerate(hz.slots) if s.end <= t.at]
        if not idx:
            notes.append(f"departure at {_hhmm(t.at)} is within the current slot")
            continue
        k = idx[-1]
        at_risk = want > reach[k] + TOL
        out.append(_TargetBound(k, t, float(reach[k]) if at_risk else want, at_risk))
    return out


def _overlap_h(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds() / 3600.0)


def _dr_series(events: Sequence[DemandResponse], hz: _Horizon) -> tuple[Vec, Vec]:
    n = len(hz.slots)
    kw, bonus = np.zeros(n), np.zeros(n)
    for e in events:
        for i, s in enumerate(hz.slots):
            share = _overlap_h(s.start, s.end, e.start, e.end) / float(hz.hours[i])
            if share <= 0:
                continue
            if e.power_kw:
                kw[i] = max(kw[i], e.power_kw * share)
            if e.bonus_per_kwh:
                bonus[i] += e.bonus_per_kwh * share
    return kw, bonus


def _day_blocks(hz: _Horizon, now: datetime, limit: float) -> tuple[tuple[int, int, float], ...]:
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


def _clean(x: Vec) -> Vec:
    y = np.round(x, 6)
    y[np.abs(y) < 1e-5] = 0.0
    return y


def _pct(kwh: float, v: PlanVehicle) -> int:
    return round(100.0 * kwh / v.capacity_kwh)


def _hhmm(at: datetime) -> str:
    return at.strftime("%H:%M")


def _slots(
    r: PlanRequest,
    hz: _Horizon,
    res: LpResult,
    targets: list[_TargetBound],
    spike: Vec,
    dr_kw: Vec,
    reserve: float,
    be: float,
) -> tuple[PlanSlot, ...]:
    v, cur = r.vehicle, r.currency
    c, dh, dx = _clean(res.charge_kw), _clean(res.home_kw), _clean(res.export_kw)
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
                reason = f"full power: {_pct(nxt.target.soc_kwh, v)} % by {_hhmm(nxt.target.at)} "
                reason += "is out of reach"
            elif soc_start < reserve - TOL:
                reason = f"charging up to the reserve {_pct(reserve, v)} %"
            elif s.import_per_kwh < 0:
                reason = f"negative price {s.import_per_kwh:.2f} {cur}/kWh"
            elif nxt is not None and nxt.beyond:
                pct = _pct(nxt.target.soc_kwh, v)
                reason = f"keeping {pct} % by {_hhmm(nxt.target.at)} within reach"
            elif nxt is not None and soc_start < nxt.soc_kwh - TOL:
                reason = (
                    f"cheapest hours to reach {_pct(nxt.soc_kwh, v)} % by {_hhmm(nxt.target.at)}"
                )
            else:
                reason = f"cheap energy {s.import_per_kwh:.2f} {cur}/kWh stored for later"
        elif d > 0:
            if dr_kw[i] > 0:
                reason = "demand-response event"
            elif spike[i]:
                reason = (
                    f"export {s.export_per_kwh:.2f} {cur}/kWh at or above your threshold "
                    f"{r.spike_threshold_per_kwh:.2f} (break-even {be:.2f})"
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
            reason = f"target {_pct(nxt.soc_kwh, v)} % reached"
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
