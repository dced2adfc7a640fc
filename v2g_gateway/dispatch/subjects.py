"""Who the site plan is for: each plugged configured vehicle at its session, or a guest's
session, as the planner should see it (with a fresh SoC, or the worst case without one), and the
planner's request for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from v2g_gateway.car_limits import car_limits
from v2g_gateway.clock import Clock
from v2g_gateway.config import Config, VehicleSection
from v2g_gateway.dispatch.gate import FLOOR_MARGIN_PERCENT
from v2g_gateway.dispatch.plan_types import DepartureTarget, Plan, PlanRequest, PlanVehicle
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.dispatch.requests import (
    GUEST_BATTERY_KWH,
    GUEST_STAY,
    delivered_kwh,
    dr_events,
    next_departure,
    unknown_soc_note,
    worst_case_vehicle,
)
from v2g_gateway.model import UserPriceSlot, VehicleState
from v2g_gateway.soc import PlugSession
from v2g_gateway.store import Store

# Plans keep this far above the reserve, above the safety gate's own margin, so a plan never
# asks for discharge that the gate then refuses: no stop-start flapping at the reserve.
PLAN_RESERVE_MARGIN_PERCENT = FLOOR_MARGIN_PERCENT * 2


@dataclass(frozen=True, slots=True)
class Subject:
    config: VehicleSection | None  # None: a guest
    view: VehicleState | None
    session: PlugSession
    vehicle: PlanVehicle  # as the plan sees it (worst case without a fresh SoC)
    departure: tuple[datetime, float] | None
    soc_known: bool


def unknown_soc(p: Plan, who: Subject) -> Plan:
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


class Subjects:
    """Builds subjects and their requests from the store and the policy."""

    def __init__(self, cfg: Config, store: Store, policy: Policy, clock: Clock) -> None:
        self._cfg = cfg
        self._store = store
        self._policy = policy
        self._clock = clock

    def subject(self, key: str, now: datetime) -> Subject | None:
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
            return Subject(None, None, session, pv, (leave, 100.0), False)
        vcfg = self._cfg.vehicle(key)
        v = self._store.vehicle_view(key) if vcfg else None
        if vcfg is None or v is None or not v.plugged or v.session is None:
            return None
        departure = next_departure(self._cfg, self._policy, vcfg, v, now)
        reading = v.usable_soc(mono, max_age)
        if reading is not None:
            return Subject(
                vcfg, v, v.session, self.vehicle(vcfg, v, reading.percent), departure, True
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
        return Subject(vcfg, v, v.session, pv, departure, False)

    def vehicle(self, vcfg: VehicleSection, v: VehicleState, soc_percent: float) -> PlanVehicle:
        cap = (v.capacity_wh / 1000.0) if v.capacity_wh else vcfg.battery_kwh
        max_c, max_d = self._cfg.power_limits(vcfg.id, v.charger_id)
        charger = self._store.charger_state(v.charger_id) if v.charger_id else None
        car = car_limits(charger, v.session)  # what the car itself said (OCPP 2.1)
        max_c, max_d = car.bound(max_c, max_d)
        may = charger is None or charger.discharge.may_try(
            self._clock.now(), charger.booted_at, outage=False
        )
        reserve = min(
            max(self._policy.reserve_percent(vcfg.id), car.floor_percent or 0.0)
            + PLAN_RESERVE_MARGIN_PERCENT,
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

    def request(
        self,
        who: Subject,
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
