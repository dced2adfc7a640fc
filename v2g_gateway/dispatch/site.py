"""The site planner: one linear program for the whole home, every car, PV and the grid connection.

`plan_site(request)` is pure like `plan()`: `request.now` is its only notion of time. What it adds
to the one-car planner (whose rules it keeps for each car: reserve, departure targets, wear,
price-spike threshold, demand response, cycle limits):

- the site balance per slot: import - export = house load - PV + the cars' charge - discharge,
  so PV surplus goes into a car when storing it is worth more than exporting it, and a discharge
  that covers the house is worth the import it avoids (V2H);
- the grid connection's import and export limits for all cars together (DESIGN.md invariant 8):
  hard bounds, never prices. Only the house itself can force more import than the limit (a
  slack priced so high that the cars first do everything they can: charge less, or discharge);
- `v2h_only`: car energy is never exported (the grid export is at most the PV surplus);
- each car's mode (smart, PV only, min + PV, charge now, hold), explained in every slot's reason;
- the value of the energy left at the horizon's end in two steps (`EndValue`): what the cars
  would otherwise buy from the grid, then what the PV surplus after the horizon would earn.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from v2g_gateway.dispatch.lp_model import LpResult, Vec
from v2g_gateway.dispatch.plan_parts import (
    TOL,
    Horizon,
    TargetBound,
    clean,
    day_blocks,
    dr_series,
    hhmm,
    horizon,
    pct,
    slot_reasons,
    target_bounds,
)
from v2g_gateway.dispatch.plan_types import Plan, PlanRequest, PlanSlot
from v2g_gateway.dispatch.planner import PRIORITY_MARGIN, break_even_per_kwh, validate_request
from v2g_gateway.dispatch.site_lp import INF, CarLp, SiteLp, SiteResult, solve_site
from v2g_gateway.dispatch.site_types import (
    ChargeMode,
    EndValue,
    SiteCar,
    SitePlan,
    SiteRequest,
    SiteSlot,
)
from v2g_gateway.errors import PlanError

__all__ = ["plan_site"]

_NO_DISCHARGE = (ChargeMode.PV_ONLY, ChargeMode.MIN_PV, ChargeMode.CHARGE_NOW, ChargeMode.HOLD)


def _validate(r: SiteRequest) -> None:
    if not r.cars:
        raise PlanError("a site plan needs at least one car")
    ids = [c.vehicle.vehicle_id for c in r.cars]
    if len(set(ids)) != len(ids):
        raise PlanError(f"duplicate vehicle ids in the site plan: {ids}")
    n = len(r.prices)
    for name, series in (("pv_kw", r.pv_kw), ("load_kw", r.load_kw)):
        if series is not None:
            if len(series) != n:
                raise PlanError(f"{name} has {len(series)} entries for {n} price slots")
            if not all(math.isfinite(x) for x in series):
                raise PlanError(f"{name} must be finite numbers")
    for name, value in (
        ("import_limit_kw", r.import_limit_kw),
        ("export_limit_kw", r.export_limit_kw),
    ):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise PlanError(f"{name} must be a number >= 0, got {value!r}")
    for car in r.cars:
        v = car.vehicle
        validate_request(
            PlanRequest(
                now=r.now,
                vehicle=v,
                prices=r.prices,
                plugged=car.plugged,
                targets=car.targets,
                degradation_cost_per_kwh=r.degradation_cost_per_kwh,
                spike_threshold_per_kwh=r.spike_threshold_per_kwh,
                dr_events=r.dr_events,
                max_cycles_per_day=r.max_cycles_per_day,
            )
        )
        if car.drive_kwh is not None and len(car.drive_kwh) != n:
            raise PlanError(f"vehicle {v.vehicle_id}: drive_kwh has {len(car.drive_kwh)} entries")
        if not (math.isfinite(car.min_charge_kw) and car.min_charge_kw >= 0):
            raise PlanError(f"vehicle {v.vehicle_id}: min_charge_kw must be >= 0")


class _Car:
    """One car's bounds and values as the site LP needs them, and what its reasons need."""

    def __init__(
        self,
        r: SiteRequest,
        car: SiteCar,
        hz: Horizon,
        keep: list[int],
        end: EndValue,
        k: int,
        share: Vec,
    ) -> None:
        v = car.vehicle
        n = len(hz.slots)
        self.car = car
        self.notes: list[str] = []
        self.hz = replace(hz, plugged=tuple(bool(car.plugged[i]) for i in keep))
        plugged = np.array(self.hz.plugged, dtype=bool)
        mode = car.mode
        self.reserve = min(v.reserve_kwh, v.max_kwh)
        e_upper = max(v.max_kwh, v.soc_kwh)
        c_max = np.where(plugged, v.max_charge_kw, 0.0)
        if mode == ChargeMode.HOLD:
            c_max = np.zeros(n)
        drive = np.zeros(n) if car.drive_kwh is None else np.array([car.drive_kwh[i] for i in keep])
        # What the hard bounds (reserve, departure) may count on: full power, or this car's
        # share of the connection when the limit is lower, so every car's bounds hold at once.
        c_reach = np.minimum(c_max, share)
        reach = np.minimum(e_upper, v.soc_kwh + np.cumsum(v.eta_c * c_reach * hz.hours))
        if car.drive_kwh is not None:
            # Perfect foresight (the backtest): the car never goes below its reserve, trips
            # included, so the reserve holds in every slot and may be discharged to in any.
            e_lower = np.full(n, self.reserve)
        elif mode != ChargeMode.SMART:
            e_lower = np.zeros(n)  # only the plan brings a car up to its reserve
        elif v.soc_kwh >= self.reserve:
            e_lower = np.full(n, self.reserve)
        else:
            e_lower = np.minimum(self.reserve, reach)
        start_lower = np.concatenate([[v.soc_kwh], e_lower[:-1]])
        may = (start_lower >= self.reserve - TOL) | (car.drive_kwh is not None)
        on = (
            v.can_discharge
            and car.v2g_enabled
            and v.max_discharge_kw > 0
            and mode not in _NO_DISCHARGE
        )
        d_max = np.where(plugged & may & on, v.max_discharge_kw, 0.0)
        self.targets: list[TargetBound] = []
        if mode == ChargeMode.SMART:
            self.targets = target_bounds(r.now, v, car.targets, self.hz, reach, e_upper, self.notes)
        elif car.targets:
            self.notes.append(f"{mode.value}: the departure target is not planned in this mode")
        for tb in self.targets:
            e_lower[tb.index] = max(e_lower[tb.index], tb.soc_kwh)
        self.at_risk = any(tb.at_risk for tb in self.targets)
        floor = np.zeros(n)
        if mode == ChargeMode.MIN_PV:
            floor = np.where(plugged, min(car.min_charge_kw, v.max_charge_kw), 0.0)
        elif mode == ChargeMode.CHARGE_NOW:
            floor = c_max.copy()
        surplus = (
            plugged.astype(np.float64)
            if mode in (ChargeMode.PV_ONLY, ChargeMode.MIN_PV)
            else np.zeros(n)
        )
        self.floor = floor
        wear = r.degradation_cost_per_kwh
        self.dr_kw, dr_bonus = dr_series(r.dr_events, hz)
        grid_v = end.grid_per_kwh
        best = max(grid_v, float(np.max(np.maximum(hz.imp, hz.exp) - wear)) * v.eta_d)
        self.spike = np.zeros(n, dtype=bool)
        bonus = dr_bonus.copy()
        if r.spike_threshold_per_kwh is not None and np.any(d_max > 0):
            self.spike = hz.exp >= r.spike_threshold_per_kwh
            priority = (best + PRIORITY_MARGIN) / v.eta_d
            bonus = np.where(self.spike, np.maximum(bonus, priority - hz.exp + wear), bonus)
        self.best = best
        cycles: tuple[tuple[int, int, float], ...] = ()
        if r.max_cycles_per_day is not None:
            usable = max(v.max_kwh - self.reserve, 0.0)
            cycles = day_blocks(hz, r.now, r.max_cycles_per_day * usable)
        split = end.grid_kwh[k] if k < len(end.grid_kwh) else INF
        c_max[c_max < 1e-6] = 0.0  # (a power of 1e-168 kW is none, and would break the LP)
        d_max[d_max < 1e-6] = 0.0
        self.lp = CarLp(
            soc0=v.soc_kwh,
            eta_c=v.eta_c,
            eta_d=v.eta_d,
            c_max=c_max,
            d_max=d_max,
            e_lower=np.minimum(e_lower, e_upper),
            e_upper=np.full(n, e_upper),
            drive=drive,
            cost_d=wear - bonus,
            # A bonus on discharge alone could be farmed by charging and discharging in the
            # same slot (the meter nets them): it is paid on the net discharge only.
            cost_c=bonus,
            floor_c=floor,
            surplus_c=surplus,
            cycle_blocks=cycles,
            end_grid=grid_v,
            end_pv=grid_v if end.pv_per_kwh is None else min(grid_v, end.pv_per_kwh),
            end_split=max(0.0, split),
        )


def plan_site(r: SiteRequest) -> SitePlan:
    """The cheapest safe schedule for every car at the site; raises PlanError for bad inputs."""
    _validate(r)
    hz, keep = horizon(r.now, r.prices, [True] * len(r.prices), r.load_kw, r.max_horizon)
    n = len(hz.slots)
    pv = np.zeros(n) if r.pv_kw is None else np.maximum(0.0, np.array([r.pv_kw[i] for i in keep]))
    load = np.zeros(n) if hz.load is None else hz.load
    notes: list[str] = []
    median_v = float(np.median(hz.imp)) * r.cars[0].vehicle.eta_c
    end = r.end_value or EndValue(grid_per_kwh=median_v)
    imp_max = np.full(n, INF if r.import_limit_kw is None else r.import_limit_kw)
    shares = _shares(r, keep, imp_max - load + pv)
    cars = [_Car(r, car, hz, keep, end, k, shares[k]) for k, car in enumerate(r.cars)]
    exp_max = np.full(n, INF if r.export_limit_kw is None else r.export_limit_kw)
    if r.v2h_only:
        exp_max = np.minimum(exp_max, np.maximum(0.0, pv - load))
    dr_kw = np.max([c.dr_kw for c in cars], axis=0)
    d_total = np.sum([c.lp.d_max for c in cars], axis=0)
    dr_kw = np.minimum(dr_kw, d_total)
    best = max(c.best for c in cars)
    dr_pen = np.where(dr_kw > 0, (best + 2 * PRIORITY_MARGIN) / 0.9, 0.0)
    res = solve_site(
        SiteLp(
            hours=hz.hours,
            imp=hz.imp,
            exp=np.minimum(hz.exp, hz.imp),
            pv=pv,
            load=load,
            imp_max=imp_max,
            exp_max=exp_max,
            dr_kw=dr_kw,
            dr_penalty=dr_pen,
            over_max=np.maximum(0.0, load - pv - imp_max),
            cars=tuple(c.lp for c in cars),
        )
    )
    over = clean(res.over_kw)
    if np.any(over > 0):
        first = hz.slots[int(np.flatnonzero(over > 0)[0])].start
        notes.append(
            f"the house alone needs more than the import limit from {hhmm(first)}: "
            "the cars draw nothing then"
        )
    plans = {
        c.car.vehicle.vehicle_id: _car_plan(r, c, k, hz, res, pv, load, imp_max)
        for k, c in enumerate(cars)
    }
    imp_kw, exp_kw = clean(res.import_kw), clean(res.export_kw)
    slots = tuple(
        SiteSlot(
            s.start,
            s.end,
            float(pv[i]),
            float(load[i]),
            float(imp_kw[i] + over[i]),
            float(exp_kw[i]),
            float(clean(res.curtailed_kw)[i]),
            float(over[i]),
        )
        for i, s in enumerate(hz.slots)
    )
    cost = float(np.sum((hz.imp * (imp_kw + over) - hz.exp * exp_kw) * hz.hours))
    return SitePlan(
        created_at=r.now,
        cars=plans,
        slots=slots,
        cost=cost,
        import_limit_kw=r.import_limit_kw,
        export_limit_kw=r.export_limit_kw,
        notes=tuple(notes),
        currency=r.currency,
    )


def _shares(r: SiteRequest, keep: list[int], headroom: Vec) -> list[Vec]:
    """Each car's part of the import headroom, in proportion to its charge power."""
    powers = [
        np.array([c.vehicle.max_charge_kw if c.plugged[i] else 0.0 for i in keep])
        * (c.mode not in (ChargeMode.HOLD, ChargeMode.PV_ONLY))
        for c in r.cars
    ]
    total = np.sum(powers, axis=0)
    room = np.clip(headroom, 0.0, 1e6)  # (unlimited: more than any car takes)
    return [np.divide(p * room, total, out=np.zeros_like(p), where=total > 0) for p in powers]


def _car_plan(
    r: SiteRequest,
    c: _Car,
    k: int,
    hz: Horizon,
    res: SiteResult,
    pv: Vec,
    load: Vec,
    imp_max: Vec,
) -> Plan:
    v = c.car.vehicle
    out = res.cars[k]
    charge, dis = clean(out.charge_kw), clean(out.discharge_kw)
    d_all = np.sum([clean(x.discharge_kw) for x in res.cars], axis=0)
    cars_export = np.maximum(0.0, clean(res.export_kw) - np.maximum(0.0, pv - load))
    share = np.divide(dis, d_all, out=np.zeros_like(dis), where=d_all > 0)
    dx = np.minimum(dis, cars_export * share)
    lp_res = LpResult(charge, dis - dx, dx, out.soc_end_kwh)
    refill = float(np.min(hz.imp))
    be = break_even_per_kwh(refill, v, r.degradation_cost_per_kwh)
    base = slot_reasons(
        v,
        r.currency,
        r.spike_threshold_per_kwh,
        c.hz,
        lp_res,
        c.targets,
        c.spike,
        c.dr_kw,
        c.reserve,
        be,
    )
    surplus = np.maximum(0.0, pv - load)
    at_limit = np.isfinite(imp_max) & (clean(res.import_kw) >= imp_max - 1e-3)
    slots = tuple(
        replace(s, reason=_reason(c, i, s, surplus[i], bool(at_limit[i]), float(imp_max[i])))
        for i, s in enumerate(base)
    )
    notes = list(c.notes)
    for tb in c.targets:
        if tb.at_risk:
            notes.append(
                f"{pct(tb.target.soc_kwh, v)} % by {hhmm(tb.target.at)} is out of reach: "
                f"charging at full power, expect {pct(tb.soc_kwh, v)} %"
            )
    cost = sum(s.import_per_kwh * s.charge_kw * s.hours for s in slots)
    revenue = float(np.sum((hz.imp * (dis - dx) + hz.exp * dx) * hz.hours))
    return Plan(
        created_at=r.now,
        vehicle_id=v.vehicle_id,
        slots=slots,
        cost=float(cost),
        revenue=revenue,
        target_at_risk=c.at_risk,
        break_even_per_kwh=be,
        notes=tuple(notes),
        currency=r.currency,
        terminal_value_per_kwh=c.lp.end_grid,
    )


def _reason(c: _Car, i: int, s: PlanSlot, surplus: float, at_limit: bool, limit: float) -> str:
    """The one-car reason, told in the car's mode and with what the home did to it."""
    mode = c.car.mode
    if not c.hz.plugged[i]:
        return s.reason
    kw = s.charge_kw
    if mode == ChargeMode.HOLD:
        return "hold: neither charging nor discharging (your mode)"
    if mode == ChargeMode.CHARGE_NOW:
        why = "charge now: full power (your mode)" if kw > 0 else "charge now: full"
    elif mode == ChargeMode.PV_ONLY:
        why = (
            f"PV only: {kw:.1f} kW of PV surplus into the car"
            if kw > 0
            else "PV only: waiting for PV surplus (never from the grid)"
        )
    elif mode == ChargeMode.MIN_PV:
        floor = float(c.floor[i])
        why = f"min + PV: the minimum {floor:.1f} kW" + (
            f" plus {kw - floor:.1f} kW of PV surplus" if kw > floor + 0.05 else ""
        )
    elif kw > 0 and surplus > TOL and kw <= surplus + 0.05:
        why = f"PV surplus {surplus:.1f} kW stored instead of exported at {s.export_per_kwh:.2f}"
    else:
        why = s.reason
    if at_limit and kw < c.lp.c_max[i] - 0.05:
        why += f"; limited by the grid connection ({limit:.1f} kW import)"
    return why
