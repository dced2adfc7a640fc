"""Replay a price history through the planner, as the controller would, and count the money.

The world is simple on purpose: one car (the config's first vehicle) leaves every day at its
departure time, drives `trip_kwh`, and comes back at the arrival time. Plug events are aligned to
price-slot boundaries (arrival rounded up, departure rounded down). While plugged, the planner is
re-run at arrival and whenever new day-ahead prices would be known (13:00 local, for the next
day), seeing only those known prices and only the current stay (a real controller does not know
when the car comes back). Two baselines run over the same days:
- dumb: full power from arrival until the charge limit;
- cheapest: the same charge limit by departure, in the cheapest known slots, never discharging.
The charge limit is the day's departure target, else the highest configured target, else max.

Money is compared as net cost = import cost - export revenue - the change of the stored energy
valued at the period's mean import price / eta_c (the strategies end at different SoCs).
"""

from __future__ import annotations

import bisect
import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from v2g_gateway.config import Config, DeparturePlan, PricesSection, parse_hhmm
from v2g_gateway.dispatch.planner import DepartureTarget, Plan, PlanRequest, PlanVehicle, plan
from v2g_gateway.errors import ConfigError, PlanError, PriceParseError
from v2g_gateway.model import PriceSlot, UserPriceSlot

DAY_AHEAD_KNOWN = time(13, 0)  # local time at which tomorrow's day-ahead prices are published
MAX_FILLED_GAP = timedelta(hours=3)
TOL = 1e-6
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Trip:
    arrive: time = time(18, 0)
    depart: time = time(7, 0)  # used on days without a departure plan
    trip_kwh: float = 10.0


@dataclass(frozen=True, slots=True)
class SlotRecord:
    start: datetime
    end: datetime
    plugged: bool
    charge_kw: float
    discharge_kw: float
    soc_kwh: float  # at the slot's end
    import_per_kwh: float
    export_per_kwh: float

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "plugged": self.plugged,
            "charge_kw": round(self.charge_kw, 6),
            "discharge_kw": round(self.discharge_kw, 6),
            "soc_kwh": round(self.soc_kwh, 6),
            "import_per_kwh": self.import_per_kwh,
            "export_per_kwh": self.export_per_kwh,
        }


@dataclass(frozen=True, slots=True)
class StrategyResult:
    name: str
    cost: float
    revenue: float
    net_cost: float
    charged_kwh: float
    exported_kwh: float
    full_cycles: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cost": round(self.cost, 2),
            "revenue": round(self.revenue, 2),
            "net_cost": round(self.net_cost, 2),
            "charged_kwh": round(self.charged_kwh, 1),
            "exported_kwh": round(self.exported_kwh, 1),
            "full_cycles": round(self.full_cycles, 2),
        }


@dataclass(frozen=True, slots=True)
class BacktestResult:
    vehicle_id: str
    first: date
    last: date
    days: int
    planner: StrategyResult
    dumb: StrategyResult
    cheapest: StrategyResult
    reserve_violations: int
    missed_departures: int  # reachable targets missed: must be 0
    unreachable_departures: int
    departures: int
    solves: int
    slots: tuple[SlotRecord, ...]
    notes: tuple[str, ...] = field(default=())

    def per_year(self, money: float) -> float:
        return money * 365.0 / max(self.days, 1)

    @property
    def saving_vs_dumb(self) -> float:
        return self.dumb.net_cost - self.planner.net_cost

    @property
    def saving_vs_cheapest(self) -> float:
        return self.cheapest.net_cost - self.planner.net_cost

    def to_json(self, with_slots: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "vehicle_id": self.vehicle_id,
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "days": self.days,
            "strategies": [s.to_json() for s in (self.planner, self.dumb, self.cheapest)],
            "saving_vs_dumb": round(self.saving_vs_dumb, 2),
            "saving_vs_cheapest": round(self.saving_vs_cheapest, 2),
            "saving_vs_dumb_per_year": round(self.per_year(self.saving_vs_dumb), 2),
            "saving_vs_cheapest_per_year": round(self.per_year(self.saving_vs_cheapest), 2),
            "full_cycles_per_year": round(self.per_year(self.planner.full_cycles), 1),
            "reserve_violations": self.reserve_violations,
            "missed_departures": self.missed_departures,
            "unreachable_departures": self.unreachable_departures,
            "departures": self.departures,
            "planner_solves": self.solves,
            "notes": list(self.notes),
        }
        if with_slots:
            doc["slots"] = [s.to_json() for s in self.slots]
        return doc

    def summary(self) -> str:
        y = self.per_year
        rows = [
            f"backtest {self.vehicle_id}: {self.first} .. {self.last} ({self.days} days)",
            f"{'strategy':<10} {'cost':>9} {'revenue':>9} {'net':>9} {'net/year':>9} "
            f"{'charged':>9} {'exported':>9} {'cycles':>7}",
        ]
        for s in (self.planner, self.dumb, self.cheapest):
            rows.append(
                f"{s.name:<10} {s.cost:>9.2f} {s.revenue:>9.2f} {s.net_cost:>9.2f} "
                f"{y(s.net_cost):>9.2f} {s.charged_kwh:>9.1f} {s.exported_kwh:>9.1f} "
                f"{s.full_cycles:>7.1f}"
            )
        rows += [
            f"saving per year: {y(self.saving_vs_dumb):.2f} vs dumb, "
            f"{y(self.saving_vs_cheapest):.2f} vs cheapest-slot charging",
            f"full cycles per year: {y(self.planner.full_cycles):.1f}; reserve violations: "
            f"{self.reserve_violations}; missed departures: {self.missed_departures} "
            f"(unreachable: {self.unreachable_departures} of {self.departures})",
        ]
        rows += [f"note: {n}" for n in self.notes]
        return "\n".join(rows)


# ---------------------------------------------------------------------------------------------
# Prices: the prices package's loader; its composer when present, the documented formula until then.


def _provided(module: str, name: str) -> Callable[..., Any] | None:
    """The prices package's function when it exists (it is written in parallel with this)."""
    try:
        fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return fn


def load_prices(path: Path, fmt: str, area: str | None = None) -> list[PriceSlot]:
    from v2g_gateway.prices.load import load_price_file

    return load_price_file(path, fmt, area)


def compose_prices(
    spot: Sequence[PriceSlot], cfg: PricesSection, tz: ZoneInfo
) -> list[UserPriceSlot]:
    compose = _provided("v2g_gateway.prices.compose", "compose")
    if compose is None:
        return [_compose_one(s, cfg) for s in spot]
    out: list[UserPriceSlot] = compose(spot, cfg, tz)
    return out


def _compose_one(s: PriceSlot, c: PricesSection) -> UserPriceSlot:
    imp = (s.price + c.supplier_margin_per_kwh) * (1 + c.vat_percent / 100.0)
    imp += c.grid_fee_per_kwh + c.energy_tax_per_kwh
    if c.export_fixed_per_kwh is not None:
        exp = c.export_fixed_per_kwh
    else:
        exp = s.price * c.export_factor - c.export_fee_per_kwh
    return UserPriceSlot(s.start, s.end, imp, exp)


def contiguous(prices: Sequence[UserPriceSlot], notes: list[str]) -> list[UserPriceSlot]:
    """Short gaps are filled with the last price; a longer one ends the usable history."""
    out: list[UserPriceSlot] = []
    for p in sorted(prices, key=lambda p: p.start):
        if out and p.start < out[-1].end:
            continue
        if out and p.start > out[-1].end:
            gap = p.start - out[-1].end
            if gap > MAX_FILLED_GAP:
                notes.append(
                    f"prices stop at {out[-1].end.isoformat()} (gap of {gap}); ended there"
                )
                break
            last = out[-1]
            t = last.end
            while t < p.start:
                step = min(last.end - last.start, p.start - t)
                out.append(UserPriceSlot(t, t + step, last.import_per_kwh, last.export_per_kwh))
                t += step
            notes.append(f"filled a {gap} gap at {last.end.isoformat()} with the last price")
        out.append(p)
    return out


# ---------------------------------------------------------------------------------------------
# The simulation


@dataclass(frozen=True, slots=True)
class _Stay:
    arrive_i: int  # first plugged slot
    leave_i: int  # first slot after it
    leave_at: datetime
    target_kwh: float | None
    limit_kwh: float


@dataclass
class _Run:
    name: str
    soc: float
    cost: float = 0.0
    revenue: float = 0.0
    charged: float = 0.0
    exported: float = 0.0
    records: list[SlotRecord] = field(default_factory=list)


def _vehicle(cfg: Config) -> PlanVehicle:
    if not cfg.vehicles:
        raise ConfigError("<config>", "vehicles", "the backtest needs at least one [[vehicles]]")
    v = cfg.vehicles[0]
    ch = cfg.charger(v.charger) if v.charger else (cfg.chargers[0] if cfg.chargers else None)
    charge_w = min(x for x in (v.max_charge_w, ch.max_charge_w if ch else None, 11000.0) if x)
    limits = [x for x in (v.max_discharge_w, ch.max_discharge_w if ch else None) if x is not None]
    discharge_w = min(limits) if limits else 10000.0
    cap = v.battery_kwh
    return PlanVehicle(
        vehicle_id=v.id,
        capacity_kwh=cap,
        soc_kwh=cap * v.max_soc_percent / 100.0,
        reserve_kwh=cap * v.reserve_soc_percent / 100.0,
        max_kwh=cap * v.max_soc_percent / 100.0,
        max_charge_kw=charge_w / 1000.0,
        max_discharge_kw=discharge_w / 1000.0,
        eta_c=v.charge_efficiency,
        eta_d=v.discharge_efficiency,
        can_discharge=discharge_w > 0,
    )


def _departure(plans: Sequence[DeparturePlan], day: date, trip: Trip) -> tuple[time, float | None]:
    wd = WEEKDAYS[day.weekday()]
    for p in plans:
        if wd in p.days:
            return parse_hhmm(p.time), p.target_soc_percent
    return trip.depart, None


def _stays(
    prices: Sequence[UserPriceSlot], cfg: Config, v: PlanVehicle, trip: Trip, tz: ZoneInfo
) -> list[_Stay]:
    vid = v.vehicle_id
    plans = [p for p in cfg.preferences.departures if p.vehicle in (None, vid)]
    top = max((p.target_soc_percent for p in plans), default=None)
    default_limit = v.max_kwh if top is None else min(v.max_kwh, v.capacity_kwh * top / 100.0)
    starts = [p.start for p in prices]
    first_day = prices[0].start.astimezone(tz).date()
    last_day = prices[-1].end.astimezone(tz).date()

    def index_at(t: datetime, up: bool) -> int:
        i = bisect.bisect_left(starts, t)
        if up or (i < len(starts) and starts[i] == t):
            return i
        return max(i - 1, 0)

    stays: list[_Stay] = []
    arrive_i = 0  # the car is home and plugged when the history starts
    day = first_day
    while day <= last_day:
        leave_t, pct = _departure(plans, day, trip)
        leave_at = datetime.combine(day, leave_t, tz)
        arrive_at = datetime.combine(day, trip.arrive, tz)
        if arrive_at <= leave_at:
            arrive_at += timedelta(days=1)
        leave_i = index_at(leave_at, up=False)
        if leave_i > arrive_i and leave_at > prices[0].start:
            target = None if pct is None else min(v.max_kwh, v.capacity_kwh * pct / 100.0)
            stays.append(
                _Stay(arrive_i, leave_i, prices[leave_i].start, target, target or default_limit)
            )
        arrive_i = index_at(arrive_at, up=True)
        if arrive_i >= len(prices):
            break
        day += timedelta(days=1)
    if arrive_i < len(prices):
        end = prices[-1].end
        stays.append(_Stay(arrive_i, len(prices), end, None, default_limit))
    return stays


def _next_publication(t: datetime, tz: ZoneInfo) -> datetime:
    local = t.astimezone(tz)
    pub = datetime.combine(local.date(), DAY_AHEAD_KNOWN, tz)
    return (
        pub if pub > t else datetime.combine(local.date() + timedelta(days=1), DAY_AHEAD_KNOWN, tz)
    )


def _known_until(t: datetime, tz: ZoneInfo) -> datetime:
    local = t.astimezone(tz)
    days = 2 if local.time() >= DAY_AHEAD_KNOWN else 1
    return datetime.combine(local.date() + timedelta(days=days), time(0, 0), tz)


def _request(
    cfg: Config,
    v: PlanVehicle,
    soc: float,
    prices: Sequence[UserPriceSlot],
    i: int,
    stay: _Stay,
    known: datetime,
    target: float | None,
    discharge: bool,
) -> PlanRequest:
    horizon = [p for p in prices[i : i + 200] if p.end <= known]
    if not horizon:
        horizon = [prices[i]]
    plugged = [i + k < stay.leave_i for k in range(len(horizon))]
    # a departure beyond the known prices is passed too: the planner keeps it within reach
    targets = [] if target is None else [DepartureTarget(stay.leave_at, target)]
    pref = cfg.preferences
    return PlanRequest(
        now=prices[i].start,
        vehicle=PlanVehicle(
            v.vehicle_id,
            v.capacity_kwh,
            soc,
            v.reserve_kwh,
            v.max_kwh,
            v.max_charge_kw,
            v.max_discharge_kw,
            v.eta_c,
            v.eta_d,
            v.can_discharge and discharge,
        ),
        prices=horizon,
        plugged=plugged,
        targets=targets,
        degradation_cost_per_kwh=pref.degradation_cost_per_kwh,
        spike_threshold_per_kwh=pref.discharge_above_per_kwh if discharge else None,
        v2g_enabled=pref.v2g_enabled and discharge,
        v2h_only=pref.v2h_only,
        grid_export_limit_kw=None
        if pref.grid_export_limit_w is None
        else pref.grid_export_limit_w / 1000.0,
        max_cycles_per_day=pref.max_cycles_per_day,
        terminal_value_per_kwh=None if discharge else 0.0,
        currency=cfg.prices.currency,
    )


def _apply(run: _Run, p: UserPriceSlot, plugged: bool, c: float, d: float, v: PlanVehicle) -> None:
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
    trip: Trip = Trip(),
    first: date | None = None,
    last: date | None = None,
) -> BacktestResult:
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
    v = _vehicle(cfg)
    stays = _stays(prices, cfg, v, trip, tz)
    runs = {n: _Run(n, v.soc_kwh) for n in ("planner", "dumb", "cheapest")}
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
        for name, discharge in (("planner", True), ("cheapest", False)):
            run = runs[name]
            target = stay.target_kwh if discharge else stay.limit_kwh
            current: Plan | None = None
            replan_at = prices[stay.arrive_i].start
            for i in range(stay.arrive_i, stay.leave_i):
                p = prices[i]
                if current is None or p.start >= replan_at or current.slot_at(p.start) is None:
                    known = _known_until(p.start, tz)
                    req = _request(cfg, v, run.soc, prices, i, stay, known, target, discharge)
                    try:
                        current = plan(req)
                    except PlanError as exc:
                        raise PlanError(f"at {p.start.isoformat()}: {exc}") from exc
                    solves += 1
                    replan_at = _next_publication(p.start, tz)
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

    def result(run: _Run) -> StrategyResult:
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
