"""What the car itself said about its powers (OCPP 2.1 v2xChargingParameters), for planner and gate.

The store keeps the car's word per EVSE as the charger capability `ev_limits:<evse>`, tagged with
the plug session it came from (store/events.py); it counts only for that session (a car that
drives off takes its limits with it). The configured limits stay the outer bound: the car can
only lower them, or forbid discharging when it did not ask for a bidirectional mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from v2g_gateway.model import ChargerState
from v2g_gateway.soc import PlugSession


def key(evse_id: int) -> str:
    return f"ev_limits:{evse_id}"


@dataclass(frozen=True, slots=True)
class CarLimits:
    max_charge_w: float | None = None
    max_discharge_w: float | None = None
    min_charge_w: float | None = None
    min_discharge_w: float | None = None
    bidirectional: bool | None = None
    # The SoC (%) the car wants before it may be discharged (evMinV2XEnergyRequest).
    floor_percent: float | None = None

    def bound(self, max_charge_w: float, max_discharge_w: float) -> tuple[float, float]:
        """The configured (charge, discharge) limits, lowered to what the car said."""
        if self.max_charge_w is not None:
            max_charge_w = min(max_charge_w, self.max_charge_w)
        if self.bidirectional is False:
            max_discharge_w = 0.0
        elif self.max_discharge_w is not None:
            max_discharge_w = min(max_discharge_w, self.max_discharge_w)
        return max_charge_w, max_discharge_w


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def car_limits(charger: ChargerState | None, session: PlugSession | None) -> CarLimits:
    """The car's limits at this session's EVSE, or none known (all None)."""
    if charger is None or session is None:
        return CarLimits()
    raw = charger.capabilities.get(key(session.evse_id))
    if not isinstance(raw, dict) or raw.get("session_id") != session.session_id:
        return CarLimits()
    bidi = raw.get("bidirectional")
    return CarLimits(
        max_charge_w=_number(raw.get("max_charge_w")),
        max_discharge_w=_number(raw.get("max_discharge_w")),
        min_charge_w=_number(raw.get("min_charge_w")),
        min_discharge_w=_number(raw.get("min_discharge_w")),
        bidirectional=bidi if isinstance(bidi, bool) else None,
        floor_percent=_number(raw.get("floor_percent")),
    )
