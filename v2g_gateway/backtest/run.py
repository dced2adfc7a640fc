"""Replay a price history through the planner and the dispatch core, and count the money.

The world is simple on purpose: one car (the config's first vehicle) leaves every day at its
departure time, drives `trip_kwh`, and comes back at the arrival time. Plug events are aligned to
price-slot boundaries (arrival rounded up, departure rounded down). While plugged, the planner is
re-run at arrival and whenever new day-ahead prices would be known (13:00 local, for the next
day), seeing only those known prices and only the current stay (a real controller does not know
when the car comes back); what the charger is told comes from the daemon's own dispatch core and
safety gate, every few minutes, with the car's battery following it. Two baselines run over the
same days:
- dumb: full power from arrival until the charge limit;
- cheapest: the same charge limit by departure, in the cheapest known slots, never discharging.
The charge limit is the day's departure target, else the highest configured target, else max.

Money is compared as net cost = import cost - export revenue - the change of the stored energy
valued at the period's mean import price / eta_c (the strategies end at different SoCs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

from v2g_gateway.backtest.prices import contiguous
from v2g_gateway.backtest.results import BacktestResult, SlotRecord, StrategyResult, Trip
from v2g_gateway.backtest.stays import (
    Run,
    Stay,
    backtest_vehicle,
    known_until,
    next_publication,
    plan_request,
    stays_of,
)
from v2g_gateway.backtest.through_core import run_stay
from v2g_gateway.config import Config
from v2g_gateway.dispatch.planner import Plan, PlanVehicle, plan
from v2g_gateway.errors import PlanError, PriceParseError
from v2g_gateway.model import UserPriceSlot

TOL = 1e-6


# ---------------------------------------------------------------------------------------------
# The simulation


def _apply(run: Run, p: UserPriceSlot, plugged: bool, c: float, d: float, v: PlanVehicle) -> None:
    h = p.hours
    run.soc += v.eta_c * c * h - d * h / v.eta_d
    run.cost += p.import_per_kwh * c * h
    run.revenue += p.export_per_kwh * d * h
    run.charged += c * h
    run.exported += d * h
    run.records.append(
        SlotRecord(p.start, p.end, plugged, c, d, run.soc, p.import_per_kwh, p.export_per_kwh)
    )


def run_backtest(
    cfg: Config,
    prices: Sequence[UserPriceSlot],
    trip: Trip | None = None,
    first: date | None = None,
    last: date | None = None,
) -> BacktestResult:
    trip = trip or Trip()
    tz = cfg.gateway.tz
    notes: list[str] = []
    prices = sorted(prices, key=lambda p: p.start)
    if first is not None:
        prices = [p for p in prices if p.start.astimezone(tz).date() >= first]
    if last is not None:
        prices = [p for p in prices if p.start.astimezone(tz).date() <= last]
    prices = contiguous(prices, notes)
    if len(prices) < 24:
        raise PriceParseError("fewer than 24 price slots in the chosen period: nothing to replay")
    v = backtest_vehicle(cfg)
    stays = stays_of(prices, cfg, v, trip, tz)
    runs = {n: Run(n, v.soc_kwh) for n in ("planner", "dumb", "cheapest")}
    violations = missed = unreachable = departures = solves = 0
    next_i = 0
    for stay in stays:
        # the away time before this stay: nothing flows, the trip is paid on arrival
        for run in runs.values():
            for p in prices[next_i : stay.arrive_i]:
                _apply(run, p, False, 0.0, 0.0, v)
            if stay.arrive_i > 0:
                run.soc = max(0.0, run.soc - trip.trip_kwh)
        arrive_soc = runs["planner"].soc
        planner = runs["planner"]

        def make_plan(i: int, soc: float, stay: Stay = stay, run: Run = planner) -> Plan:
            known = known_until(prices[i].start, tz)
            req = plan_request(cfg, v, soc, prices, i, stay, known, stay.target_kwh, True)
            try:
                return plan(req)
            except PlanError as exc:
                raise PlanError(f"at {prices[i].start.isoformat()}: {exc}") from exc

        done = run_stay(cfg, v, planner, prices, stay, make_plan, lambda t: next_publication(t, tz))
        solves += done.solves
        violations += done.violations
        for name, discharge in (("cheapest", False),):
            run = runs[name]
            target = stay.target_kwh if discharge else stay.limit_kwh
            current: Plan | None = None
            replan_at = prices[stay.arrive_i].start
            for i in range(stay.arrive_i, stay.leave_i):
                p = prices[i]
                if current is None or p.start >= replan_at or current.slot_at(p.start) is None:
                    known = known_until(p.start, tz)
                    req = plan_request(cfg, v, run.soc, prices, i, stay, known, target, discharge)
                    try:
                        current = plan(req)
                    except PlanError as exc:
                        raise PlanError(f"at {p.start.isoformat()}: {exc}") from exc
                    solves += 1
                    replan_at = next_publication(p.start, tz)
                s = current.slot_at(p.start)
                assert s is not None
                start_soc = run.soc
                _apply(run, p, True, s.charge_kw, s.discharge_kw, v)
                if (
                    discharge
                    and s.discharge_kw > 0
                    and min(start_soc, run.soc) < v.reserve_kwh - TOL
                ):
                    violations += 1
        dumb = runs["dumb"]
        for i in range(stay.arrive_i, stay.leave_i):
            p = prices[i]
            need = max(0.0, stay.limit_kwh - dumb.soc)
            c = min(v.max_charge_kw, need / (v.eta_c * p.hours))
            _apply(dumb, p, True, c, 0.0, v)
        if stay.target_kwh is not None and stay.leave_i < len(prices):
            departures += 1
            hours = sum(p.hours for p in prices[stay.arrive_i : stay.leave_i])
            reach = min(v.max_kwh, arrive_soc + v.eta_c * v.max_charge_kw * hours)
            if runs["planner"].soc < stay.target_kwh - 1e-3:
                if reach >= stay.target_kwh - 1e-3:
                    missed += 1
                else:
                    unreachable += 1
        next_i = stay.leave_i
    for run in runs.values():
        for p in prices[next_i:]:
            _apply(run, p, False, 0.0, 0.0, v)

    mean_import = sum(p.import_per_kwh for p in prices) / len(prices)

    def result(run: Run) -> StrategyResult:
        stored = (run.soc - v.soc_kwh) * mean_import / v.eta_c
        return StrategyResult(
            name=run.name,
            cost=run.cost,
            revenue=run.revenue,
            net_cost=run.cost - run.revenue - stored,
            charged_kwh=run.charged,
            exported_kwh=run.exported,
            full_cycles=run.exported / v.eta_d / v.capacity_kwh,
        )

    days = max(1, math.ceil((prices[-1].end - prices[0].start).total_seconds() / 86400))
    return BacktestResult(
        vehicle_id=v.vehicle_id,
        first=prices[0].start.astimezone(tz).date(),
        last=(prices[-1].end - timedelta(seconds=1)).astimezone(tz).date(),
        days=days,
        planner=result(runs["planner"]),
        dumb=result(runs["dumb"]),
        cheapest=result(runs["cheapest"]),
        reserve_violations=violations,
        missed_departures=missed,
        unreachable_departures=unreachable,
        departures=departures,
        solves=solves,
        slots=tuple(runs["planner"].records),
        notes=tuple(notes),
    )
