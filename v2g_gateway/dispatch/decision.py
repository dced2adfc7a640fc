"""What one EVSE should do right now: a pure function, so the safety rules are testable by table.

The planner decides the economics; this module is the last gate before a command leaves, and it
alone enforces DESIGN.md section 4: no discharge below the reserve (or the outage floor), with
unknown or stale SoC, with unknown prices outside an outage, or against a user override.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from v2g_gateway.model import Override, OverrideKind, UserPriceSlot, VehicleState

# Below this a planned power is noise from the LP averaging a slot; chargers cannot hold it.
MIN_PLANNED_W = 100.0
# Stop this far above the floor: SoC arrives in steps, the car keeps discharging until the
# charger obeys, and a reserve is a promise.
FLOOR_MARGIN_PERCENT = 0.5


class Mode(StrEnum):
    IDLE = "idle"  # not plugged or nothing to do
    CHARGE = "charge"
    HOLD = "hold"  # plugged, neither charge nor discharge
    DISCHARGE = "discharge"
    BACKUP = "backup"  # outage: discharge to carry the house
    RELEASE = "release"  # the user handed control back to the charger


@dataclass(frozen=True, slots=True)
class Inputs:
    now: datetime
    vehicle: VehicleState
    capacity_kwh: float
    reserve_percent: float
    max_soc_percent: float
    max_charge_w: float
    max_discharge_w: float
    can_discharge: bool  # charger and car both able, V2G on
    soc_max_age: timedelta
    price: UserPriceSlot | None  # the slot containing now; None = unknown
    discharge_above_per_kwh: float | None
    planned_w: float | None = None  # from the planner, when there is a plan for this slot
    min_discharge_w: float = 0.0  # the charger cannot discharge more gently than this
    plan_reason: str | None = None
    override: Override | None = None
    outage: bool = False
    outage_floor_percent: float = 20.0
    backup_w: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    mode: Mode
    limit_w: float  # signed; negative = discharge
    reason: str


def estimated_soc(v: VehicleState, now: datetime, capacity_kwh: float) -> float | None:
    """The lower of the last reading and that reading moved by the power since, for safety."""
    if v.soc_percent is None or v.soc_at is None:
        return None
    if not v.power_w or capacity_kwh <= 0:
        return v.soc_percent
    hours = max(0.0, (now - v.soc_at).total_seconds() / 3600.0)
    moved = v.soc_percent + v.power_w * hours / (capacity_kwh * 10.0)  # W*h / (kWh*1000) * 100
    return min(v.soc_percent, moved)


def decide(x: Inputs) -> Decision:
    v = x.vehicle
    if not v.plugged:
        return Decision(Mode.IDLE, 0.0, "not plugged in")
    soc_known = v.soc_fresh(x.now, x.soc_max_age)
    soc = v.soc_percent if soc_known else None
    # Floors are checked against the conservative estimate: the reading may be minutes old.
    soc_low = estimated_soc(v, x.now, x.capacity_kwh) if soc_known else None
    charge_w = x.max_charge_w
    if soc is not None and soc >= x.max_soc_percent:
        charge_w = 0.0

    def discharge(floor: float, power: float, mode: Mode, why: str) -> Decision | None:
        if soc_low is None:
            return None
        if not x.can_discharge or power <= 0:
            return None
        if soc_low <= floor + FLOOR_MARGIN_PERCENT:
            return None
        return Decision(mode, -min(power, x.max_discharge_w), why)

    o = x.override
    if o is not None and o.active(x.now):
        if o.kind == OverrideKind.HOLD:
            return Decision(Mode.HOLD, 0.0, "held at 0 W by the user (pause)")
        if o.kind == OverrideKind.RELEASE:
            return Decision(Mode.RELEASE, 0.0, "control released to the charger by the user")
        if o.kind == OverrideKind.CHARGE_NOW:
            target = o.target_soc_percent if o.target_soc_percent is not None else 100.0
            if soc is not None and soc >= min(target, x.max_soc_percent):
                return Decision(Mode.HOLD, 0.0, f"charge-now target {target:g} % reached")
            return Decision(
                Mode.CHARGE,
                min(o.power_w or x.max_charge_w, x.max_charge_w),
                f"charge now (user) to {target:g} %",
            )
        if o.kind == OverrideKind.DISCHARGE_NOW:
            floor = max(o.target_soc_percent or 0.0, x.reserve_percent)
            if x.outage:
                floor = max(o.target_soc_percent or 0.0, x.outage_floor_percent)
            d = discharge(
                floor, o.power_w or x.max_discharge_w, Mode.DISCHARGE, "discharge now (user)"
            )
            if d is not None:
                return d
            why = "SoC unknown" if soc is None else f"at the floor of {floor:g} %"
            if not x.can_discharge:
                why = "the charger or car cannot discharge"
            return Decision(Mode.HOLD, 0.0, f"discharge now (user) stopped: {why}")

    if x.outage:
        d = discharge(
            x.outage_floor_percent, x.backup_w, Mode.BACKUP, "grid outage: powering the home"
        )
        if d is not None:
            return d
        why = (
            "SoC unknown"
            if soc is None
            else f"SoC at the outage floor {x.outage_floor_percent:g} %"
        )
        if not x.can_discharge:
            why = "the charger or car cannot discharge"
        return Decision(Mode.HOLD, 0.0, f"grid outage, no backup: {why}")

    if x.price is None:
        if soc is not None and soc < x.reserve_percent:
            return Decision(Mode.CHARGE, charge_w, "below reserve; prices unknown")
        return Decision(Mode.CHARGE, charge_w, "prices unknown: charge only")

    if x.planned_w is not None:
        if -max(MIN_PLANNED_W, x.min_discharge_w) < x.planned_w < MIN_PLANNED_W:
            return Decision(Mode.HOLD, 0.0, x.plan_reason or "plan: wait")
        if x.planned_w < 0:
            d = discharge(x.reserve_percent, -x.planned_w, Mode.DISCHARGE, x.plan_reason or "plan")
            if d is not None:
                return d
            return Decision(Mode.HOLD, 0.0, "planned discharge blocked: at reserve or SoC unknown")
        if x.planned_w > 0:
            return Decision(Mode.CHARGE, min(x.planned_w, charge_w), x.plan_reason or "plan")
        return Decision(Mode.HOLD, 0.0, x.plan_reason or "plan: wait")

    if soc is not None and soc < x.reserve_percent:
        return Decision(Mode.CHARGE, charge_w, f"below the reserve of {x.reserve_percent:g} %")
    threshold = x.discharge_above_per_kwh
    if threshold is not None and x.price.export_per_kwh >= threshold:
        d = discharge(
            x.reserve_percent,
            x.max_discharge_w,
            Mode.DISCHARGE,
            f"export price {x.price.export_per_kwh:.3f} at or above {threshold:.3f} per kWh",
        )
        if d is not None:
            return d
        if soc is None:
            return Decision(Mode.HOLD, 0.0, "price spike but SoC unknown: no discharge")
        if soc_low is not None and soc_low <= x.reserve_percent + FLOOR_MARGIN_PERCENT:
            return Decision(Mode.HOLD, 0.0, f"price spike but at reserve {x.reserve_percent:g} %")
    if charge_w == 0.0:
        return Decision(Mode.HOLD, 0.0, f"full ({x.max_soc_percent:g} %)")
    return Decision(Mode.CHARGE, charge_w, "charging")
