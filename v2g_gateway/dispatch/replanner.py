"""Keeps one current plan per vehicle: builds the planner's request from the store, the policy and
the prices, and replans when something that matters changed.

Replanning is cheap (one LP, tens of ms) but not free, and meter values arrive every few seconds,
so a plan is reused until its inputs change in kind (plug, prices, preferences, overrides,
demand response, departure) or the SoC drifts from the plan, or it is `max_age` old.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from v2g_gateway.clock import Clock
from v2g_gateway.config import WEEKDAYS, Config, VehicleSection, parse_hhmm
from v2g_gateway.dispatch.controller import PlannedPower, PriceView
from v2g_gateway.dispatch.decision import FLOOR_MARGIN_PERCENT
from v2g_gateway.dispatch.plan_types import (
    DemandResponse,
    DepartureTarget,
    Plan,
    PlanRequest,
    PlanVehicle,
)
from v2g_gateway.dispatch.planner import plan as solve_plan
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.errors import PlanError
from v2g_gateway.model import Notification, UserPriceSlot, VehicleState
from v2g_gateway.store import Store

log = structlog.get_logger(__name__)

HORIZON = timedelta(hours=48)
SOC_DRIFT_PERCENT = 3.0
# Plans keep this far above the reserve, above the safety gate's own margin, so a plan never
# asks for discharge that the gate then refuses: no stop-start flapping at the reserve.
PLAN_RESERVE_MARGIN_PERCENT = FLOOR_MARGIN_PERCENT * 2


@dataclass(frozen=True, slots=True)
class _Made:
    plan: Plan
    key: tuple[Any, ...]
    capacity_kwh: float


def next_departure(
    cfg: Config, policy: Policy, vcfg: VehicleSection, v: VehicleState, now: datetime
) -> tuple[datetime, float] | None:
    """The next time this vehicle must be ready, with its target SoC in percent."""
    target_pref = policy.preference("target_soc_percent", vcfg.id)
    if v.departure_time is not None and v.departure_time > now:  # ISO 15118 told us
        target = float(target_pref) if target_pref is not None else vcfg.max_soc_percent
        return v.departure_time, target
    tz = cfg.gateway.tz
    local = now.astimezone(tz)
    one_off = policy.preference("departure_time", vcfg.id)
    plans: list[tuple[tuple[str, ...], str, float]] = []
    if isinstance(one_off, str):
        tgt = float(target_pref) if target_pref is not None else 80.0
        plans.append((WEEKDAYS, one_off, tgt))
    else:
        for d in cfg.preferences.departures:
            if d.vehicle in (None, vcfg.id):
                tgt = float(target_pref) if target_pref is not None else d.target_soc_percent
                plans.append((d.days, d.time, tgt))
    best: tuple[datetime, float] | None = None
    for days, hhmm, target in plans:
        t = parse_hhmm(hhmm)
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            if WEEKDAYS[day.weekday()] not in days:
                continue
            at = datetime.combine(day, t, tzinfo=tz)
            if at > now:
                if best is None or at < best[0]:
                    best = (at, target)
                break
    return best


def split_slots(
    prices: Sequence[UserPriceSlot],
    cuts: Sequence[datetime],
    max_len: timedelta = timedelta(hours=1),
) -> list[UserPriceSlot]:
    """Long tariff periods become hour slots (cut on the hour), and a departure starts a slot,
    so the plan can say when within a period to act and meet a target exactly on time."""
    out: list[UserPriceSlot] = []
    for p in prices:
        start = p.start
        while start < p.end:
            nxt = start.replace(minute=0, second=0, microsecond=0) + max_len
            for c in cuts:
                if start < c < nxt:
                    nxt = c
            end = min(nxt, p.end)
            out.append(UserPriceSlot(start, end, p.import_per_kwh, p.export_per_kwh))
            start = end
    return out


def _dr_events(raw: Any) -> tuple[DemandResponse, ...]:
    out: list[DemandResponse] = []
    if not isinstance(raw, list):
        return ()
    for e in raw:
        try:
            power_w = e.get("power_w")
            out.append(
                DemandResponse(
                    start=datetime.fromisoformat(e["start"]),
                    end=datetime.fromisoformat(e["end"]),
                    power_kw=None if power_w is None else float(power_w) / 1000.0,
                    bonus_per_kwh=e.get("price_bonus_per_kwh"),
                    event_id=str(e.get("event_id", "")),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("replan.bad_demand_response", event=str(e)[:200])
    return tuple(out)


class Replanner:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        policy: Policy,
        prices: PriceView,
        clock: Clock,
        *,
        max_age: timedelta = timedelta(minutes=15),
        home_load_w: Callable[[datetime], float | None] | None = None,
    ) -> None:
        self._cfg = cfg
        self._store = store
        self._policy = policy
        self._prices = prices
        self._clock = clock
        self._max_age = max_age
        self._home_load_w = home_load_w
        self._made: dict[str, _Made] = {}
        self._told: set[tuple[str, str]] = set()
        self.solves = 0

    def current(self, vehicle_id: str) -> Plan | None:
        made = self._made.get(vehicle_id)
        return None if made is None else made.plan

    def lookup(self, vehicle_id: str, now: datetime) -> PlannedPower | None:
        """What the plan says for now, replanning first if the plan is out of date."""
        made = self._refresh(vehicle_id, now)
        if made is None:
            return None
        slot = made.plan.slot_at(now)
        if slot is None:
            return None
        return PlannedPower(power_w=slot.net_kw * 1000.0, reason=slot.reason)

    def ahead(
        self, vehicle_id: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, PlannedPower]]:
        """The current plan's slots that begin inside (start, end): a profile's later periods."""
        made = self._made.get(vehicle_id)
        if made is None:
            return []
        return [
            (s.start, PlannedPower(power_w=s.net_kw * 1000.0, reason=s.reason))
            for s in made.plan.slots
            if start < s.start < end
        ]

    # ------------------------------------------------------------------ internals

    def _refresh(self, vehicle_id: str, now: datetime) -> _Made | None:
        vcfg = self._cfg.vehicle(vehicle_id)
        if vcfg is None:
            return None
        v = self._store.vehicle_view(vehicle_id)
        soc_max_age = timedelta(minutes=self._cfg.preferences.soc_max_age_minutes)
        if v is None or not v.plugged or not v.soc_fresh(now, soc_max_age):
            self._made.pop(vehicle_id, None)
            return None
        assert v.soc_percent is not None
        try:
            prices = list(self._prices.user_prices(now, now + HORIZON))
        except Exception as exc:
            self._tell_once(vehicle_id, "prices_missing", f"no price data: {exc}", now)
            return None
        prices = [p for p in prices if p.end > now]
        if not prices:
            self._tell_once(vehicle_id, "prices_missing", "no price data for now", now)
            return None
        self._told.discard((vehicle_id, "prices_missing"))
        departure = next_departure(self._cfg, self._policy, vcfg, v, now)
        prices = split_slots(prices, [] if departure is None else [departure[0]])
        charger = self._store.charger_state(v.charger_id) if v.charger_id else None
        prefs = self._store.preferences()
        dr_raw = self._store.kv_get("demand_response")
        home_w = self._home_load_w(now) if self._home_load_w else None
        key = (
            None if home_w is None else round(home_w / 500.0),  # replan on a 500 W change
            departure,
            # Slot identity without the moving edges of the window (now, now + horizon).
            tuple((p.end, p.import_per_kwh, p.export_per_kwh) for p in prices[:-1]),
            tuple(sorted((k, repr(val)) for k, val in prefs.items())),
            repr(dr_raw),
            None if charger is None else charger.supports_discharge,
        )
        made = self._made.get(vehicle_id)
        if made is not None and self._still_good(made, key, v.soc_percent, now):
            return made
        try:
            request = self._request(vcfg, v, now, prices, departure, key[-1], home_w)
            new = solve_plan(request)
        except PlanError as exc:
            log.error("replan.failed", vehicle_id=vehicle_id, error=str(exc))
            self._tell_once(vehicle_id, "plan_failed", f"planning failed: {exc}", now)
            return None
        self.solves += 1
        result = _Made(new, key, request.vehicle.capacity_kwh)
        self._made[vehicle_id] = result
        self._store.save_plan(vehicle_id, now, new.to_json())
        self._announce(vehicle_id, made.plan if made else None, new, now, departure)
        return result

    def _still_good(
        self, made: _Made, key: tuple[Any, ...], soc_percent: float, now: datetime
    ) -> bool:
        if made.key != key or now - made.plan.created_at > self._max_age:
            return False
        slot = made.plan.slot_at(now)
        if slot is None:
            return False
        done = (now - slot.start) / (slot.end - slot.start)
        expected_kwh = slot.soc_start_kwh + (slot.soc_end_kwh - slot.soc_start_kwh) * done
        expected = 100.0 * expected_kwh / made.capacity_kwh
        return abs(expected - soc_percent) <= SOC_DRIFT_PERCENT

    def _request(
        self,
        vcfg: VehicleSection,
        v: VehicleState,
        now: datetime,
        prices: Sequence[UserPriceSlot],
        departure: tuple[datetime, float] | None,
        charger_can: bool | None,
        home_w: float | None,
    ) -> PlanRequest:
        assert v.soc_percent is not None
        cap = (v.capacity_wh / 1000.0) if v.capacity_wh else vcfg.battery_kwh
        max_c, max_d = self._cfg.power_limits(vcfg.id, v.charger_id)
        v2g = bool(self._policy.preference("v2g_enabled"))
        v2h_only = bool(self._policy.preference("v2h_only"))
        can_discharge = max_d > 0 and charger_can is not False
        reserve = min(
            self._policy.reserve_percent(vcfg.id) + PLAN_RESERVE_MARGIN_PERCENT,
            vcfg.max_soc_percent,
        )
        vehicle = PlanVehicle(
            vehicle_id=vcfg.id,
            capacity_kwh=cap,
            soc_kwh=cap * v.soc_percent / 100.0,
            reserve_kwh=cap * reserve / 100.0,
            max_kwh=cap * vcfg.max_soc_percent / 100.0,
            max_charge_kw=max_c / 1000.0,
            max_discharge_kw=max_d / 1000.0,
            eta_c=vcfg.charge_efficiency,
            eta_d=vcfg.discharge_efficiency,
            can_discharge=can_discharge,
        )
        plugged = [departure is None or p.start < departure[0] for p in prices]
        targets: tuple[DepartureTarget, ...] = ()
        if departure is not None and departure[0] <= prices[-1].end:
            targets = (DepartureTarget(departure[0], cap * departure[1] / 100.0),)
        threshold = self._policy.preference("discharge_above_per_kwh")
        cycles = self._policy.preference("max_cycles_per_day")
        export_limit = self._cfg.preferences.grid_export_limit_w
        return PlanRequest(
            now=now,
            vehicle=vehicle,
            prices=prices,
            plugged=plugged,
            targets=targets,
            degradation_cost_per_kwh=self._cfg.preferences.degradation_cost_per_kwh,
            spike_threshold_per_kwh=None if threshold is None else float(threshold),
            v2g_enabled=v2g,
            v2h_only=v2h_only,
            # A persistence forecast: the home keeps using what it uses now. Crude, but it lets
            # the plan value V2H (import avoided) and caps V2H-only discharge at the real load.
            home_load_kw=None if home_w is None else [home_w / 1000.0] * len(prices),
            grid_export_limit_kw=None if export_limit is None else export_limit / 1000.0,
            dr_events=_dr_events(self._store.kv_get("demand_response"))
            if self._cfg.preferences.demand_response.enabled
            else (),
            max_cycles_per_day=None if cycles is None else float(cycles),
            currency=self._cfg.prices.currency,
        )

    def _tell_once(self, vehicle_id: str, kind: str, message: str, now: datetime) -> None:
        if (vehicle_id, kind) in self._told:
            return
        self._told.add((vehicle_id, kind))
        self._store.notify(
            Notification(kind=kind, message=message, at=now, level="warning", vehicle_id=vehicle_id)
        )

    def _announce(
        self,
        vehicle_id: str,
        old: Plan | None,
        new: Plan,
        now: datetime,
        departure: tuple[datetime, float] | None,
    ) -> None:
        if new.target_at_risk:
            when = (
                ""
                if departure is None
                else f" by {departure[0].astimezone(self._cfg.gateway.tz):%a %H:%M}"
            )
            self._tell_once(
                vehicle_id,
                "departure_target_at_risk",
                f"{vehicle_id} cannot reach its departure target{when}: charging at full power",
                now,
            )
        else:
            self._told.discard((vehicle_id, "departure_target_at_risk"))
        if old is not None and not _materially_different(old, new):
            return
        tz = self._cfg.gateway.tz
        charge = sum(s.charge_kw * s.hours for s in new.slots)
        discharge = sum(s.discharge_kw * s.hours for s in new.slots)
        first_d = next((s for s in new.slots if s.discharge_kw > 0.05), None)
        msg = f"new plan for {vehicle_id}: charge {charge:.1f} kWh, discharge {discharge:.1f} kWh"
        if first_d is not None:
            msg += f" from {first_d.start.astimezone(tz):%H:%M}"
        msg += f"; expected net {new.revenue - new.cost:+.2f} {new.currency}"
        self._store.notify(
            Notification(
                kind="plan_changed",
                message=msg,
                at=now,
                vehicle_id=vehicle_id,
                data={
                    "charge_kwh": round(charge, 3),
                    "discharge_kwh": round(discharge, 3),
                    "cost": round(new.cost, 4),
                    "revenue": round(new.revenue, 4),
                    "break_even_per_kwh": round(new.break_even_per_kwh, 4),
                },
            )
        )


def _energy(p: Plan, since: datetime) -> tuple[float, float]:
    slots = [s for s in p.slots if s.end > since]
    return (
        sum(s.charge_kw * s.hours for s in slots),
        sum(s.discharge_kw * s.hours for s in slots),
    )


def _materially_different(old: Plan, new: Plan) -> bool:
    """Worth telling the user: the energy moved changed by a kWh or more, or discharge moved."""
    since = new.slots[0].start
    (c0, d0), (c1, d1) = _energy(old, since), _energy(new, since)
    first0 = next((s.start for s in old.slots if s.end > since and s.discharge_kw > 0.05), None)
    first1 = next((s.start for s in new.slots if s.discharge_kw > 0.05), None)
    return abs(c1 - c0) >= 1.0 or abs(d1 - d0) >= 1.0 or first0 != first1
