"""What the site planner takes and gives: the home (PV, house load, the grid connection) and every
car in one request, one plan per car plus the site's flows per slot.

Units as in plan_types.py: kW at the meter, kWh stored, prices per kWh. The grid power is signed
as a meter shows it: import positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from v2g_gateway.dispatch.plan_parts import MAX_HORIZON
from v2g_gateway.dispatch.plan_types import DemandResponse, DepartureTarget, Plan, PlanVehicle
from v2g_gateway.model import UserPriceSlot


class ChargeMode(StrEnum):
    """What a user asks of one car, like evcc's modes (the plan explains each in its reasons)."""

    SMART = "smart"  # the plan: cheapest hours, PV, V2G/V2H where it pays
    PV_ONLY = "pv_only"  # only PV surplus, never the grid, never discharged
    MIN_PV = "min_pv"  # a minimum power always, PV surplus on top, never discharged
    CHARGE_NOW = "charge_now"  # full power until full
    HOLD = "hold"  # neither charge nor discharge

    @classmethod
    def parse(cls, value: str) -> ChargeMode:
        word = value.strip().lower().replace(" ", "_").replace("+", "_").replace("-", "_")
        aliases = {"pv": "pv_only", "min_+_pv": "min_pv", "minpv": "min_pv", "now": "charge_now"}
        word = aliases.get(word, word.replace("__", "_"))
        return cls(word)


@dataclass(frozen=True, slots=True)
class SiteCar:
    vehicle: PlanVehicle
    plugged: Sequence[bool]
    targets: Sequence[DepartureTarget] = ()
    mode: ChargeMode = ChargeMode.SMART
    min_charge_kw: float = 1.4  # MIN_PV: the minimum (6 A on one phase by default)
    v2g_enabled: bool = True
    # Energy taken out of the battery per slot by driving (kWh stored): the backtest's perfect-
    # foresight plan sees the trips; the daemon never knows them and passes None.
    drive_kwh: Sequence[float] | None = None


@dataclass(frozen=True, slots=True)
class EndValue:
    """The worth of a kWh stored at the horizon's end, in two steps (a concave value): the first
    `grid_kwh` of each car would otherwise be bought from the grid (`grid_per_kwh`), the rest
    would come from PV surplus after the horizon (`pv_per_kwh`, what that PV would earn)."""

    grid_per_kwh: float
    pv_per_kwh: float | None = None
    grid_kwh: Sequence[float] = ()  # per car, in request order; empty: all at grid_per_kwh


@dataclass(frozen=True, slots=True)
class SiteRequest:
    now: datetime
    prices: Sequence[UserPriceSlot]
    cars: Sequence[SiteCar]
    pv_kw: Sequence[float] | None = None  # forecast per slot (None: no PV)
    load_kw: Sequence[float] | None = None  # house load without the cars (None: unknown, 0)
    import_limit_kw: float | None = None  # the grid connection, all cars and the house
    export_limit_kw: float | None = None
    v2h_only: bool = False  # car energy is never exported, only used in the house
    degradation_cost_per_kwh: float = 0.05
    spike_threshold_per_kwh: float | None = None
    dr_events: Sequence[DemandResponse] = ()
    max_cycles_per_day: float | None = None
    end_value: EndValue | None = None  # None: the median import price * eta_c (as plan())
    currency: str = "EUR"
    max_horizon: timedelta | None = MAX_HORIZON  # None: every slot given (the backtest)


@dataclass(frozen=True, slots=True)
class SiteSlot:
    start: datetime
    end: datetime
    pv_kw: float
    load_kw: float
    import_kw: float
    export_kw: float
    curtailed_kw: float = 0.0
    over_limit_kw: float = 0.0  # import the house alone forces above the limit

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "pv_kw": round(self.pv_kw, 4),
            "load_kw": round(self.load_kw, 4),
            "grid_import_kw": round(self.import_kw, 4),
            "grid_export_kw": round(self.export_kw, 4),
            "curtailed_kw": round(self.curtailed_kw, 4),
        }


@dataclass(frozen=True, slots=True)
class SitePlan:
    created_at: datetime
    cars: dict[str, Plan]
    slots: tuple[SiteSlot, ...]
    cost: float  # import cost - export revenue over the horizon, the house included
    import_limit_kw: float | None
    export_limit_kw: float | None
    notes: tuple[str, ...] = field(default=())
    currency: str = "EUR"

    def slot_at(self, at: datetime) -> SiteSlot | None:
        return next((s for s in self.slots if s.start <= at < s.end), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at.isoformat(),
            "currency": self.currency,
            "cost": round(self.cost, 4),
            "import_limit_kw": self.import_limit_kw,
            "export_limit_kw": self.export_limit_kw,
            "notes": list(self.notes),
            "vehicles": sorted(self.cars),
            "slots": [s.to_json() for s in self.slots],
        }
