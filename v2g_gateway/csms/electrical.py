"""Watts <-> amperes for chargers that take limits only in A (SmartChargingCtrlr.RateUnit).

The planner and the safety gate think in W. A charger in A mode gets the per-phase current
W / (nominal voltage x phases), rounded toward zero to the 0.1 A OCPP allows, so the energy a
profile allows never grows by the conversion. Below the minimum current a car cannot charge
(IEC 61851: 6 A); such a limit is sent as 0 rather than left for the charger to round up.
Phases default to 3: if the charger really has 1, the current asked is a third of the intended
power (too little, never too much).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

RateUnit = Literal["W", "A"]


@dataclass(frozen=True, slots=True)
class Electrical:
    """What the gateway knows of one charger's supply (config first, then what it reports)."""

    rate_unit: RateUnit = "W"
    phases: int = 3
    voltage_v: float = 230.0
    min_current_a: float = 6.0

    @property
    def watts_per_amp(self) -> float:
        return self.voltage_v * self.phases

    @property
    def min_power_w(self) -> float:
        """The smallest non-zero power a car charges (or discharges) at on this supply."""
        return self.min_current_a * self.watts_per_amp

    def amps(self, limit_w: float) -> float:
        """The signed per-phase current for a signed power limit (see the module docstring)."""
        per_phase = abs(limit_w) / self.watts_per_amp
        magnitude = math.floor(per_phase * 10 + 1e-9) / 10
        if magnitude < self.min_current_a:
            return 0.0
        return math.copysign(magnitude, limit_w)

    def limit(self, limit_w: float) -> float | int:
        """The number to put in a ChargingSchedulePeriod's `limit` in this unit."""
        value = self.amps(limit_w) if self.rate_unit == "A" else limit_w
        return int(value) if float(value).is_integer() else round(value, 1)

    def effective_w(self, limit_w: float) -> float:
        """What a limit of `limit_w` means on the charger once converted (W in, W out)."""
        if self.rate_unit == "W":
            return limit_w
        return self.amps(limit_w) * self.watts_per_amp

    def to_w(self, limit: float, unit: str, phases: int | None = None) -> float:
        """A limit a charger reported (NotifyChargingLimit, schedules) in W."""
        if unit.upper() == "A":
            return limit * self.voltage_v * (phases or self.phases)
        return limit
