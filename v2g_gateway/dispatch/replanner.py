"""Keeps one current plan per vehicle: builds the planner's request from the store, the policy and
the prices, and replans when something that matters changed.

Replanning is cheap (one LP, tens of ms) but not free, and meter values arrive every few seconds,
so a plan is reused until its inputs change in kind (plug, prices, preferences, overrides,
demand response, departure) or the SoC drifts from the plan, or it is `max_age` old.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from v2g_gateway.clock import Clock
from v2g_gateway.config import Config, VehicleSection
from v2g_gateway.dispatch.controller import PlannedPower, PriceView
from v2g_gateway.dispatch.gate import FLOOR_MARGIN_PERCENT
from v2g_gateway.dispatch.plan_types import DepartureTarget, Plan, PlanRequest, PlanVehicle
from v2g_gateway.dispatch.planner import plan as solve_plan
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.dispatch.requests import (
    GUEST_BATTERY_KWH,
    GUEST_STAY,
    delivered_kwh,
    dr_events,
    next_departure,
    split_slots,
    unknown_soc_note,
    worst_case_vehicle,
)
from v2g_gateway.errors import PlanError, StoreError
from v2g_gateway.model import Notification, UserPriceSlot, VehicleState
from v2g_gateway.soc import PlugSession
from v2g_gateway.store import Store

__all__ = ["Replanner", "next_departure", "split_slots"]

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


@dataclass(frozen=True, slots=True)
class _Subject:
    config: VehicleSection | None  # None: a guest
    view: VehicleState | None
    session: PlugSession
    vehicle: PlanVehicle  # as the plan sees it (worst case without a fresh SoC)
    departure: tuple[datetime, float] | None
    soc_known: bool


def _unknown_soc(p: Plan, who: _Subject) -> Plan:
    """A plan made without a SoC says so, in its notes and in every slot's reason."""
    v = who.vehicle
    need = (
        0.0
        if who.departure is None
        else max(0.0, v.capacity_kwh * who.departure[1] / 100.0 - v.soc_kwh)
    )
    note = unknown_soc_note(min(need, v.max_kwh))
    slots = tuple(replace(s, reason=f"{note}; {s.reason}") for s in p.slots)
    return replace(p, slots=slots, notes=(note, *p.notes))


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

    def _subject(self, key: str, now: datetime) -> _Subject | None:
        """Who is planned: a configured vehicle at its session, or a guest's session."""
        mono = self._clock.monotonic()
        max_age = timedelta(minutes=self._cfg.preferences.soc_max_age_minutes)
        if key.startswith("guest:"):
            session = self._store.session(key[len("guest:") :])
            if session is None or session.vehicle_id is not None:
                return None
            ch = self._store.charger_state(session.charger_id)
            ev = ch.evses.get(session.evse_id) if ch else None
            if ev is None or not ev.plugged:
                return None
            leave = max(session.started_at + GUEST_STAY, now + timedelta(hours=1))
            max_c = self._cfg.power_limits("", session.charger_id)[0]
            pv = worst_case_vehicle(
                key,
                GUEST_BATTERY_KWH,
                100.0,
                max_c,
                delivered_kwh(session, ev, 0.95, 0.95),
                0.95,
                0.95,
            )
            return _Subject(None, None, session, pv, (leave, 100.0), False)
        vcfg = self._cfg.vehicle(key)
        v = self._store.vehicle_view(key) if vcfg else None
        if vcfg is None or v is None or not v.plugged or v.session is None:
            return None
        departure = next_departure(self._cfg, self._policy, vcfg, v, now)
        reading = v.usable_soc(mono, max_age)
        if reading is not None:
            return _Subject(
                vcfg, v, v.session, self._vehicle(vcfg, v, reading.percent), departure, True
            )
        ch = self._store.charger_state(v.session.charger_id)
        ev = ch.evses.get(v.session.evse_id) if ch else None
        cap = (v.capacity_wh / 1000.0) if v.capacity_wh else vcfg.battery_kwh
        got = delivered_kwh(v.session, ev, vcfg.charge_efficiency, vcfg.discharge_efficiency)
        max_c = self._cfg.power_limits(vcfg.id, v.session.charger_id)[0]
        pv = worst_case_vehicle(
            vcfg.id,
            cap,
            vcfg.max_soc_percent,
            max_c,
            got,
            vcfg.charge_efficiency,
            vcfg.discharge_efficiency,
        )
        if departure is None:
            departure = (now + GUEST_STAY, vcfg.max_soc_percent)
        return _Subject(vcfg, v, v.session, pv, departure, False)

    def _refresh(self, key: str, now: datetime) -> _Made | None:
        who = self._subject(key, now)
        if who is None:
            self._made.pop(key, None)
            return None
        try:
            prices = list(self._prices.user_prices(now, now + HORIZON))
        except Exception as exc:
            self._tell_once(key, "prices_missing", f"no price data: {exc}", now)
            return None
        prices = [p for p in prices if p.end > now]
        if not prices:
            self._tell_once(key, "prices_missing", "no price data for now", now)
            return None
        self._told.discard((key, "prices_missing"))
        departure = who.departure
        prices = split_slots(prices, [] if departure is None else [departure[0]])
        charger = self._store.charger_state(who.session.charger_id)
        prefs = self._store.preferences()
        dr_raw = self._store.kv_get("demand_response")
        home_w = self._home_load_w(now) if self._home_load_w else None
        cache_key = (
            None if home_w is None else round(home_w / 500.0),  # replan on a 500 W change
            departure,
            # Slot identity without the moving edges of the window (now, now + horizon).
            tuple((p.end, p.import_per_kwh, p.export_per_kwh) for p in prices[:-1]),
            tuple(sorted((k, repr(val)) for k, val in prefs.items())),
            repr(dr_raw),
            None if charger is None else charger.discharge,
            who.session.session_id,
            who.soc_known,
            # Without a SoC: replan as the registers count each kWh delivered.
            None if who.soc_known else round(who.vehicle.soc_kwh),
        )
        made = self._made.get(key)
        soc_percent = 100.0 * who.vehicle.soc_kwh / who.vehicle.capacity_kwh
        if made is not None and self._still_good(made, cache_key, soc_percent, now, who.soc_known):
            return made
        try:
            request = self._request(who, now, prices, home_w)
            new = solve_plan(request)
        except PlanError as exc:
            log.error("replan.failed", subject=key, error=str(exc))
            self._tell_once(key, "plan_failed", f"planning failed: {exc}", now)
            return None
        if not who.soc_known:
            new = _unknown_soc(new, who)
        self.solves += 1
        result = _Made(new, cache_key, request.vehicle.capacity_kwh)
        self._made[key] = result
        if who.config is not None:
            try:
                self._store.save_plan(key, now, new.to_json())
            except StoreError as exc:  # the plan still drives dispatch; MQTT shows the old one
                log.error("replan.not_saved", subject=key, error=str(exc))
            self._announce(key, made.plan if made else None, new, now, departure)
        return result

    def _still_good(
        self, made: _Made, key: tuple[Any, ...], soc_percent: float, now: datetime, soc_known: bool
    ) -> bool:
        if made.key != key or now - made.plan.created_at > self._max_age:
            return False
        slot = made.plan.slot_at(now)
        if slot is None:
            return False
        if not soc_known:
            return True  # the key follows the delivered energy instead
        done = (now - slot.start) / (slot.end - slot.start)
        expected_kwh = slot.soc_start_kwh + (slot.soc_end_kwh - slot.soc_start_kwh) * done
        expected = 100.0 * expected_kwh / made.capacity_kwh
        return abs(expected - soc_percent) <= SOC_DRIFT_PERCENT

    def _vehicle(self, vcfg: VehicleSection, v: VehicleState, soc_percent: float) -> PlanVehicle:
        cap = (v.capacity_wh / 1000.0) if v.capacity_wh else vcfg.battery_kwh
        max_c, max_d = self._cfg.power_limits(vcfg.id, v.charger_id)
        charger = self._store.charger_state(v.charger_id) if v.charger_id else None
        may = charger is None or charger.discharge.may_try(
            self._clock.now(), charger.booted_at, outage=False
        )
        reserve = min(
            self._policy.reserve_percent(vcfg.id) + PLAN_RESERVE_MARGIN_PERCENT,
            vcfg.max_soc_percent,
        )
        return PlanVehicle(
            vehicle_id=vcfg.id,
            capacity_kwh=cap,
            soc_kwh=cap * soc_percent / 100.0,
            reserve_kwh=cap * reserve / 100.0,
            max_kwh=cap * vcfg.max_soc_percent / 100.0,
            max_charge_kw=max_c / 1000.0,
            max_discharge_kw=max_d / 1000.0,
            eta_c=vcfg.charge_efficiency,
            eta_d=vcfg.discharge_efficiency,
            can_discharge=max_d > 0 and may,
        )

    def _request(
        self,
        who: _Subject,
        now: datetime,
        prices: Sequence[UserPriceSlot],
        home_w: float | None,
    ) -> PlanRequest:
        vehicle = who.vehicle
        departure = who.departure
        cap = vehicle.capacity_kwh
        plugged = [departure is None or p.start < departure[0] for p in prices]
        targets: tuple[DepartureTarget, ...] = ()
        if departure is not None and departure[0] <= prices[-1].end:
            targets = (
                DepartureTarget(departure[0], min(vehicle.max_kwh, cap * departure[1] / 100.0)),
            )
        threshold = self._policy.preference("discharge_above_per_kwh")
        cycles = self._policy.preference("max_cycles_per_day")
        export_limit = self._cfg.preferences.grid_export_limit_w
        may_discharge = who.soc_known and vehicle.can_discharge
        return PlanRequest(
            now=now,
            vehicle=vehicle,
            prices=prices,
            plugged=plugged,
            targets=targets,
            degradation_cost_per_kwh=self._cfg.preferences.degradation_cost_per_kwh,
            spike_threshold_per_kwh=None
            if threshold is None or not may_discharge
            else float(threshold),
            v2g_enabled=bool(self._policy.preference("v2g_enabled")) and may_discharge,
            v2h_only=bool(self._policy.preference("v2h_only")),
            # A persistence forecast: the home keeps using what it uses now. Crude, but it lets
            # the plan value V2H (import avoided) and caps V2H-only discharge at the real load.
            home_load_kw=None if home_w is None else [home_w / 1000.0] * len(prices),
            grid_export_limit_kw=None if export_limit is None else export_limit / 1000.0,
            dr_events=dr_events(self._store.kv_get("demand_response"))
            if self._cfg.preferences.demand_response.enabled and may_discharge
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
