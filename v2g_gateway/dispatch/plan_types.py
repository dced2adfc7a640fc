"""What the planner takes and gives: frozen values, so a plan can be shared, logged and compared.

Energies are kWh of energy stored in the battery (SoC), powers are kW at the meter, prices are
per kWh in `PlanRequest.currency`. Times are timezone-aware.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from v2g_gateway.model import UserPriceSlot


@dataclass(frozen=True, slots=True)
class PlanVehicle:
    vehicle_id: str
    capacity_kwh: float
    soc_kwh: float
    reserve_kwh: float
    max_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    eta_c: float = 0.95
    eta_d: float = 0.95
    can_discharge: bool = True


@dataclass(frozen=True, slots=True)
class DepartureTarget:
    """Be at `soc_kwh` when leaving at `at` (its tzinfo is used to phrase reasons)."""

    at: datetime
    soc_kwh: float


@dataclass(frozen=True, slots=True)
class DemandResponse:
    """A grid operator's request: discharge at least `power_kw`, and/or a bonus per kWh given."""

    start: datetime
    end: datetime
    power_kw: float | None = None
    bonus_per_kwh: float | None = None
    event_id: str = ""


@dataclass(frozen=True, slots=True)
class PlanRequest:
    now: datetime
    vehicle: PlanVehicle
    prices: Sequence[UserPriceSlot]
    plugged: Sequence[bool]
    targets: Sequence[DepartureTarget] = ()
    degradation_cost_per_kwh: float = 0.05
    spike_threshold_per_kwh: float | None = None
    v2g_enabled: bool = True
    v2h_only: bool = False
    home_load_kw: Sequence[float] | None = None
    grid_export_limit_kw: float | None = None
    dr_events: Sequence[DemandResponse] = ()
    max_cycles_per_day: float | None = None
    terminal_value_per_kwh: float | None = None
    currency: str = "EUR"


@dataclass(frozen=True, slots=True)
class PlanSlot:
    start: datetime
    end: datetime
    charge_kw: float
    discharge_kw: float
    soc_start_kwh: float
    soc_end_kwh: float
    import_per_kwh: float
    export_per_kwh: float
    reason: str

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600.0

    @property
    def net_kw(self) -> float:
        """Signed power as the charger sees it (model.py convention: negative = discharge)."""
        return self.charge_kw - self.discharge_kw

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "charge_kw": self.charge_kw,
            "discharge_kw": self.discharge_kw,
            "soc_start_kwh": self.soc_start_kwh,
            "soc_end_kwh": self.soc_end_kwh,
            "import_per_kwh": self.import_per_kwh,
            "export_per_kwh": self.export_per_kwh,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """One vehicle's plan. `revenue` counts export income and import avoided by powering the home."""

    created_at: datetime
    vehicle_id: str
    slots: tuple[PlanSlot, ...]
    cost: float
    revenue: float
    target_at_risk: bool
    break_even_per_kwh: float
    notes: tuple[str, ...] = field(default=())
    currency: str = "EUR"
    terminal_value_per_kwh: float = 0.0

    def slot_at(self, at: datetime) -> PlanSlot | None:
        return next((s for s in self.slots if s.start <= at < s.end), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at.isoformat(),
            "vehicle_id": self.vehicle_id,
            "currency": self.currency,
            "cost": round(self.cost, 4),
            "revenue": round(self.revenue, 4),
            "target_at_risk": self.target_at_risk,
            "break_even_per_kwh": round(self.break_even_per_kwh, 4),
            "terminal_value_per_kwh": round(self.terminal_value_per_kwh, 4),
            "notes": list(self.notes),
            "slots": [s.to_json() for s in self.slots],
        }
