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
from datetime import datetime

import numpy as np

from v2g_gateway.dispatch.lp_model import LpInput, solve
from v2g_gateway.dispatch.plan_parts import (
    TOL,
    clean,
    day_blocks,
    dr_series,
    hhmm,
    horizon,
    pct,
    slot_reasons,
    target_bounds,
)
from v2g_gateway.dispatch.plan_types import (
    DemandResponse,
    DepartureTarget,
    Plan,
    PlanRequest,
    PlanSlot,
    PlanVehicle,
)
from v2g_gateway.errors import PlanError

__all__ = [
    "DemandResponse",
    "DepartureTarget",
    "Plan",
    "PlanRequest",
    "PlanSlot",
    "PlanVehicle",
    "break_even_per_kwh",
    "plan",
    "validate_request",
]

PRIORITY_MARGIN = 0.01  # per kWh stored: how much a spike/DR slot must beat any other use


def break_even_per_kwh(refill_per_kwh: float, vehicle: PlanVehicle, wear_per_kwh: float) -> float:
    """Export price at which selling a kWh and buying it back later pays exactly nothing."""
    return refill_per_kwh / (vehicle.eta_c * vehicle.eta_d) + wear_per_kwh


def plan(request: PlanRequest) -> Plan:
    """The cheapest safe schedule for one vehicle; raises PlanError for impossible inputs."""
    validate_request(request)
    hz, _ = horizon(request.now, request.prices, request.plugged, request.home_load_kw)
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

    targets = target_bounds(request.now, v, request.targets, hz, reach, e_upper_val, notes)
    for tb in targets:
        e_lower[tb.index] = max(e_lower[tb.index], tb.soc_kwh)
    target_at_risk = any(tb.at_risk for tb in targets)

    wear = request.degradation_cost_per_kwh
    terminal = (
        request.terminal_value_per_kwh
        if request.terminal_value_per_kwh is not None
        else float(np.median(hz.imp)) * v.eta_c
    )
    dr_kw, dr_bonus = dr_series(request.dr_events, hz)
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
        cycle_blocks = day_blocks(hz, request.now, request.max_cycles_per_day * usable)

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
                    f"{pct(tb.target.soc_kwh, v)} % by {hhmm(tb.target.at)} is out of reach: "
                    f"charging at full power, expect {pct(tb.soc_kwh, v)} %"
                )
    slots = slot_reasons(
        v,
        request.currency,
        request.spike_threshold_per_kwh,
        hz,
        result,
        targets,
        spike,
        dr_kw,
        reserve,
        be,
    )
    cost = sum(s.import_per_kwh * s.charge_kw * s.hours for s in slots)
    revenue = float(
        np.sum((hz.imp * clean(result.home_kw) + hz.exp * clean(result.export_kw)) * hz.hours)
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


def validate_request(r: PlanRequest) -> None:
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
