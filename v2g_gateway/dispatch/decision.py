"""What one EVSE should do right now: a pure table of rules, one small function per situation.

The planner decides the economics; this decides the mode, the power and the floor. The safety
gate (gate.py) then bounds what is sent, so a wrong row here can cost money but never the
reserve. Order: unplugged, then a user override, then an outage, then unknown prices, then the
plan, then the rules without a plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from v2g_gateway.dispatch.gate import FLOOR_MARGIN_PERCENT
from v2g_gateway.model import Override, OverrideKind, UserPriceSlot

# Below this a planned power is noise from the LP averaging a slot; chargers cannot hold it.
MIN_PLANNED_W = 100.0


class Mode(StrEnum):
    IDLE = "idle"  # not plugged or nothing to do
    CHARGE = "charge"
    HOLD = "hold"  # plugged, neither charge nor discharge
    DISCHARGE = "discharge"
    BACKUP = "backup"  # outage: discharge to carry the house
    RELEASE = "release"  # the user handed control back to the charger


@dataclass(frozen=True, slots=True)
class Inputs:
    """One EVSE's situation. `soc` is the conservative estimate of a fresh reading of the
    current plug session, or None; nothing here may discharge on None."""

    now: datetime
    plugged: bool
    soc: float | None
    reserve_percent: float
    max_soc_percent: float
    max_charge_w: float
    max_discharge_w: float
    can_discharge: bool  # charger and car able, V2G on, identified car (not a guest)
    price: UserPriceSlot | None  # the slot containing now; None = unknown
    discharge_above_per_kwh: float | None
    planned_w: float | None = None  # from the planner, when there is a plan for this slot
    plan_reason: str | None = None
    min_discharge_w: float = 0.0
    override: Override | None = None
    outage: bool = False
    outage_floor_percent: float = 20.0
    backup_w: float = 0.0
    guest: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    mode: Mode
    limit_w: float  # signed; negative = discharge
    reason: str
    floor_percent: float = 100.0  # a discharge must stop above this


def _charge_w(x: Inputs) -> float:
    full = x.soc is not None and x.soc >= x.max_soc_percent
    return 0.0 if full else x.max_charge_w


def _above(x: Inputs, floor: float) -> bool:
    return x.soc is not None and x.soc > floor + FLOOR_MARGIN_PERCENT


def _discharge(x: Inputs, floor: float, power: float, mode: Mode, why: str) -> Decision | None:
    """A discharge if everything allows it; the gate still bounds its energy."""
    if not x.can_discharge or power <= 0 or not _above(x, floor):
        return None
    return Decision(mode, -min(power, x.max_discharge_w), why, floor)


def _blocked(x: Inputs, floor: float, which: str = "floor") -> str:
    if x.guest:
        return "guest car (not identified): never discharged"
    if not x.can_discharge:
        return "the charger or car cannot discharge now"
    if x.soc is None:
        return "SoC unknown"
    return f"SoC at the {which} {floor:g} %"


def _override(x: Inputs, o: Override) -> Decision:
    if o.kind == OverrideKind.HOLD:
        return Decision(Mode.HOLD, 0.0, "held at 0 W by the user (pause)")
    if o.kind == OverrideKind.RELEASE:
        return Decision(Mode.RELEASE, 0.0, "control released to the charger by the user")
    if o.kind == OverrideKind.CHARGE_NOW:
        target = o.target_soc_percent if o.target_soc_percent is not None else 100.0
        if x.soc is not None and x.soc >= min(target, x.max_soc_percent):
            return Decision(Mode.HOLD, 0.0, f"charge-now target {target:g} % reached")
        power = min(o.power_w or x.max_charge_w, x.max_charge_w)
        return Decision(Mode.CHARGE, max(0.0, power), f"charge now (user) to {target:g} %")
    floor = max(
        o.target_soc_percent or 0.0, x.outage_floor_percent if x.outage else x.reserve_percent
    )
    d = _discharge(x, floor, o.power_w or x.max_discharge_w, Mode.DISCHARGE, "discharge now (user)")
    if d is not None:
        return d
    return Decision(Mode.HOLD, 0.0, f"discharge now (user) stopped: {_blocked(x, floor)}")


def _outage(x: Inputs) -> Decision:
    floor = x.outage_floor_percent
    d = _discharge(x, floor, x.backup_w, Mode.BACKUP, "grid outage: powering the home")
    if d is not None:
        return d
    return Decision(Mode.HOLD, 0.0, f"grid outage, no backup: {_blocked(x, floor, 'outage floor')}")


def _planned(x: Inputs, planned_w: float) -> Decision:
    reason = x.plan_reason or "plan"
    if -max(MIN_PLANNED_W, x.min_discharge_w) < planned_w < MIN_PLANNED_W:
        return Decision(Mode.HOLD, 0.0, x.plan_reason or "plan: wait")
    if planned_w < 0:
        d = _discharge(x, x.reserve_percent, -planned_w, Mode.DISCHARGE, reason)
        if d is not None:
            return d
        why = _blocked(x, x.reserve_percent, "reserve")
        return Decision(Mode.HOLD, 0.0, f"planned discharge blocked: {why}")
    charge = min(planned_w, _charge_w(x))
    if charge <= 0:
        return Decision(Mode.HOLD, 0.0, f"full ({x.max_soc_percent:g} %)")
    return Decision(Mode.CHARGE, charge, reason)


def _unplanned(x: Inputs, price: UserPriceSlot) -> Decision:
    """No plan for now (planner failed, or none yet): simple rules, never careless."""
    if x.soc is not None and x.soc < x.reserve_percent:
        return Decision(Mode.CHARGE, _charge_w(x), f"below the reserve of {x.reserve_percent:g} %")
    threshold = x.discharge_above_per_kwh
    if threshold is not None and price.export_per_kwh >= threshold:
        why = f"export price {price.export_per_kwh:.3f} at or above {threshold:.3f} per kWh"
        d = _discharge(x, x.reserve_percent, x.max_discharge_w, Mode.DISCHARGE, why)
        if d is not None:
            return d
        return Decision(
            Mode.HOLD, 0.0, f"price spike, no discharge: {_blocked(x, x.reserve_percent)}"
        )
    if x.soc is None:
        # Without a SoC and without a plan there is no way to know what the car needs: charge,
        # but only while the price is below the spike threshold (the plan normally decides).
        return Decision(Mode.CHARGE, x.max_charge_w, "SoC unknown, no plan: charging")
    if _charge_w(x) == 0.0:
        return Decision(Mode.HOLD, 0.0, f"full ({x.max_soc_percent:g} %)")
    return Decision(Mode.CHARGE, _charge_w(x), "charging")


def decide(x: Inputs) -> Decision:
    if not x.plugged:
        return Decision(Mode.IDLE, 0.0, "not plugged in")
    if x.override is not None and x.override.active(x.now):
        return _override(x, x.override)
    if x.outage:
        return _outage(x)
    if x.price is None:
        if x.soc is not None and x.soc < x.reserve_percent:
            return Decision(Mode.CHARGE, _charge_w(x), "below reserve; prices unknown")
        return Decision(Mode.CHARGE, _charge_w(x), "prices unknown: charge only")
    if x.planned_w is not None:
        return _planned(x, x.planned_w)
    return _unplanned(x, x.price)
