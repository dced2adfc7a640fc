"""When the simulated car is home, what it must reach by when, and what the planner is asked."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from v2g_gateway.backtest.results import SlotRecord, Trip
from v2g_gateway.config import Config, DeparturePlan, parse_hhmm
from v2g_gateway.dispatch.planner import DepartureTarget, PlanRequest, PlanVehicle
from v2g_gateway.errors import ConfigError
from v2g_gateway.model import UserPriceSlot

DAY_AHEAD_KNOWN = time(13, 0)  # local time at which tomorrow's day-ahead prices are published
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Stay:
    arrive_i: int  # first plugged slot
    leave_i: int  # first slot after it
    leave_at: datetime
    target_kwh: float | None
    limit_kwh: float


@dataclass
class Run:
    name: str
    soc: float
    cost: float = 0.0
    revenue: float = 0.0
    charged: float = 0.0
    exported: float = 0.0
    records: list[SlotRecord] = field(default_factory=list)


def backtest_vehicle(cfg: Config) -> PlanVehicle:
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


def departure_on(
    plans: Sequence[DeparturePlan], day: date, trip: Trip
) -> tuple[time, float | None]:
    wd = WEEKDAYS[day.weekday()]
    for p in plans:
        if wd in p.days:
            return parse_hhmm(p.time), p.target_soc_percent
    return trip.depart, None


def stays_of(
    prices: Sequence[UserPriceSlot], cfg: Config, v: PlanVehicle, trip: Trip, tz: ZoneInfo
) -> list[Stay]:
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

    stays: list[Stay] = []
    arrive_i = 0  # the car is home and plugged when the history starts
    day = first_day
    while day <= last_day:
        leave_t, pct = departure_on(plans, day, trip)
        leave_at = datetime.combine(day, leave_t, tz)
        arrive_at = datetime.combine(day, trip.arrive, tz)
        if arrive_at <= leave_at:
            arrive_at += timedelta(days=1)
        leave_i = index_at(leave_at, up=False)
        if leave_i > arrive_i and leave_at > prices[0].start:
            target = None if pct is None else min(v.max_kwh, v.capacity_kwh * pct / 100.0)
            stays.append(
                Stay(arrive_i, leave_i, prices[leave_i].start, target, target or default_limit)
            )
        arrive_i = index_at(arrive_at, up=True)
        if arrive_i >= len(prices):
            break
        day += timedelta(days=1)
    if arrive_i < len(prices):
        end = prices[-1].end
        stays.append(Stay(arrive_i, len(prices), end, None, default_limit))
    return stays


def next_publication(t: datetime, tz: ZoneInfo) -> datetime:
    local = t.astimezone(tz)
    pub = datetime.combine(local.date(), DAY_AHEAD_KNOWN, tz)
    return (
        pub if pub > t else datetime.combine(local.date() + timedelta(days=1), DAY_AHEAD_KNOWN, tz)
    )


def known_until(t: datetime, tz: ZoneInfo) -> datetime:
    local = t.astimezone(tz)
    days = 2 if local.time() >= DAY_AHEAD_KNOWN else 1
    return datetime.combine(local.date() + timedelta(days=days), time(0, 0), tz)


def plan_request(
    cfg: Config,
    v: PlanVehicle,
    soc: float,
    prices: Sequence[UserPriceSlot],
    i: int,
    stay: Stay,
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
