"""From what the store knows to the frozen situation the dispatch core decides on.

Pure: the controller and the backtest both call `situation()`, so the rules about which SoC may
be acted on (a fresh reading of this plug session, moved down by the power commanded or
measured since) and when discharging is allowed at all are written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from v2g_gateway.car_limits import car_limits
from v2g_gateway.config import Config
from v2g_gateway.dispatch.core import Ahead, Sent, Situation
from v2g_gateway.dispatch.decision import Inputs
from v2g_gateway.dispatch.gate import GatedProfile, GateLimits
from v2g_gateway.dispatch.home_follow import Cap
from v2g_gateway.model import ChargerState, Override, UserPriceSlot, VehicleState
from v2g_gateway.soc import PlugSession, conservative_soc, resolution_allowance

GUEST_BATTERY_KWH = 60.0  # what a guest car is assumed to hold (it is never discharged)


@dataclass(frozen=True, slots=True)
class Wishes:
    """The user's effective preferences for one vehicle (config overlaid by run-time changes)."""

    reserve_percent: float
    v2g_enabled: bool
    discharge_above_per_kwh: float | None


@dataclass(frozen=True, slots=True)
class Grid:
    outage: bool = False
    backup_w: float = 0.0


@dataclass(frozen=True, slots=True)
class Plan:
    now_w: float | None = None
    reason: str | None = None
    ahead: tuple[Ahead, ...] = ()


@dataclass(frozen=True, slots=True)
class Drain:
    """The most negative limit commanded at an EVSE since the session's current reading: the
    conservative SoC estimate drains by it, since a silent charger may still be discharging."""

    since: float | None = None  # receipt (monotonic) of the reading it counts from
    w: float = 0.0


def drain_for(d: Drain, session: PlugSession, in_force_w: float | None) -> Drain:
    """A new reading restarts the count at the limit in force now; otherwise it stands."""
    since = None if session.soc is None else session.soc.received_mono
    if since == d.since:
        return d
    return Drain(since, min(0.0, in_force_w or 0.0))


def drain_sent(d: Drain, profile: GatedProfile) -> Drain:
    """A profile handed to the charger counts from the moment it is sent, answered or not."""
    return Drain(d.since, min(d.w, *(p.limit_w for p in profile.spec.periods)))


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def situation(
    cfg: Config,
    now: datetime,
    mono: float,
    session: PlugSession,
    vehicle: VehicleState | None,
    charger: ChargerState,
    wishes: Wishes,
    price: UserPriceSlot | None,
    plan: Plan,
    *,
    override: Override | None = None,
    grid: Grid = Grid(),
    last: Sent | None = None,
    commanded_w: float | None = None,
    tx_forgotten: bool = False,
    probing: bool = False,
    site_cap: Cap | None = None,
) -> Situation:
    """One EVSE's situation. `vehicle` is None for a guest (or a vehicle not configured)."""
    vcfg = cfg.vehicle(vehicle.vehicle_id) if vehicle is not None else None
    ev = charger.evses.get(session.evse_id)
    prefs = cfg.preferences
    max_charge, max_discharge = (
        cfg.power_limits(vcfg.id, charger.charger_id)
        if vcfg is not None
        else (cfg.power_limits("", charger.charger_id)[0], 0.0)
    )
    car = car_limits(charger, session)  # what the car itself said (OCPP 2.1)
    max_charge, max_discharge = car.bound(max_charge, max_discharge)
    capacity = GUEST_BATTERY_KWH
    eta_d = 0.95
    soc: float | None = None
    allowance = 0.0
    if vcfg is not None and vehicle is not None:
        capacity = (vehicle.capacity_wh / 1000.0) if vehicle.capacity_wh else vcfg.battery_kwh
        eta_d = vcfg.discharge_efficiency
        reading = vehicle.usable_soc(mono, timedelta(minutes=prefs.soc_max_age_minutes))
        if reading is not None:
            allowance = resolution_allowance(reading)
            soc = conservative_soc(
                reading,
                mono,
                capacity,
                eta_d,
                measured_w=None if ev is None else ev.power_w,
                commanded_w=commanded_w,
            )
    no_discharge: str | None = None
    if vcfg is None:
        no_discharge = "guest car (not identified)"
    elif car.bidirectional is False:
        no_discharge = "the car did not ask for a bidirectional mode"
    elif max_discharge <= 0:
        no_discharge = "no discharge power configured"
    elif not charger.discharge.may_try(now, charger.booted_at, grid.outage):
        no_discharge = f"the charger refused to discharge ({charger.discharge.reason})"
    elif charger.capabilities.get("obeys_profiles") is False:
        no_discharge = "the charger does not follow its profiles"
    elif not grid.outage and not wishes.v2g_enabled:
        no_discharge = "V2G is switched off"
    elif probing:
        no_discharge = "checking whether the charger refuses discharging"
    ccfg = cfg.charger(charger.charger_id)
    x = Inputs(
        now=now,
        plugged=ev is not None and ev.plugged,
        soc=soc,
        reserve_percent=max(wishes.reserve_percent, car.floor_percent or 0.0),
        max_soc_percent=vcfg.max_soc_percent if vcfg else 100.0,
        max_charge_w=max_charge,
        max_discharge_w=max_discharge,
        can_discharge=no_discharge is None,
        price=price,
        discharge_above_per_kwh=wishes.discharge_above_per_kwh,
        planned_w=plan.now_w,
        plan_reason=plan.reason,
        min_discharge_w=max(ccfg.min_discharge_w if ccfg else 0.0, car.min_discharge_w or 0.0),
        override=override if vcfg is not None else None,
        outage=grid.outage,
        # Never below what the car itself allows (config check refuses such a floor, too).
        outage_floor_percent=max(
            cfg.outage.floor_soc_percent, vcfg.min_soc_percent if vcfg else 0.0
        ),
        backup_w=grid.backup_w,
        guest=vcfg is None,
    )
    tx = None if ev is None or tx_forgotten else ev.transaction_id
    limits = GateLimits(
        charger_id=charger.charger_id,
        evse_id=session.evse_id,
        transaction_id=tx,
        max_charge_w=max_charge,
        max_discharge_w=max_discharge,
        capacity_kwh=capacity,
        eta_d=eta_d,
        validity_s=prefs.profile_validity_minutes * 60,
        soc_percent=None if soc is None else max(0.0, soc - allowance),
        no_discharge=no_discharge,
        min_discharge_w=x.min_discharge_w,
        # Below its minimum current a charger that takes amperes sends the car 0 A: round there
        # (a charger taking watts converts, and rounds, by itself).
        min_charge_w=max(
            (_number(charger.capabilities.get("min_power_w")) or 0.0)
            if charger.capabilities.get("rate_unit") == "A"
            else 0.0,
            min(car.min_charge_w or 0.0, max_charge),
        ),
        power_cap_w=_number(charger.capabilities.get("external_limit_w")),
        site_charge_cap_w=None if site_cap is None else site_cap.charge_w,
        site_discharge_cap_w=None if site_cap is None else site_cap.discharge_w,
    )
    return Situation(x=x, limits=limits, ahead=plan.ahead, last=last)
