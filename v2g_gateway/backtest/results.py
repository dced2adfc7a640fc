"""What a backtest reports: per-slot records and per-strategy money, energy and safety counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any


@dataclass(frozen=True, slots=True)
class Trip:
    arrive: time = time(18, 0)
    depart: time = time(7, 0)  # used on days without a departure plan
    trip_kwh: float = 10.0


@dataclass(frozen=True, slots=True)
class SlotRecord:
    start: datetime
    end: datetime
    plugged: bool
    charge_kw: float
    discharge_kw: float
    soc_kwh: float  # at the slot's end
    import_per_kwh: float
    export_per_kwh: float

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "plugged": self.plugged,
            "charge_kw": round(self.charge_kw, 6),
            "discharge_kw": round(self.discharge_kw, 6),
            "soc_kwh": round(self.soc_kwh, 6),
            "import_per_kwh": self.import_per_kwh,
            "export_per_kwh": self.export_per_kwh,
        }


@dataclass(frozen=True, slots=True)
class StrategyResult:
    name: str
    cost: float
    revenue: float
    net_cost: float
    charged_kwh: float
    exported_kwh: float
    full_cycles: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cost": round(self.cost, 2),
            "revenue": round(self.revenue, 2),
            "net_cost": round(self.net_cost, 2),
            "charged_kwh": round(self.charged_kwh, 1),
            "exported_kwh": round(self.exported_kwh, 1),
            "full_cycles": round(self.full_cycles, 2),
        }


@dataclass(frozen=True, slots=True)
class BacktestResult:
    vehicle_id: str
    first: date
    last: date
    days: int
    planner: StrategyResult
    dumb: StrategyResult
    cheapest: StrategyResult
    reserve_violations: int
    missed_departures: int  # reachable targets missed: must be 0
    unreachable_departures: int
    departures: int
    solves: int
    slots: tuple[SlotRecord, ...]
    notes: tuple[str, ...] = field(default=())

    def per_year(self, money: float) -> float:
        return money * 365.0 / max(self.days, 1)

    @property
    def saving_vs_dumb(self) -> float:
        return self.dumb.net_cost - self.planner.net_cost

    @property
    def saving_vs_cheapest(self) -> float:
        return self.cheapest.net_cost - self.planner.net_cost

    def to_json(self, with_slots: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "vehicle_id": self.vehicle_id,
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "days": self.days,
            "strategies": [s.to_json() for s in (self.planner, self.dumb, self.cheapest)],
            "saving_vs_dumb": round(self.saving_vs_dumb, 2),
            "saving_vs_cheapest": round(self.saving_vs_cheapest, 2),
            "saving_vs_dumb_per_year": round(self.per_year(self.saving_vs_dumb), 2),
            "saving_vs_cheapest_per_year": round(self.per_year(self.saving_vs_cheapest), 2),
            "full_cycles_per_year": round(self.per_year(self.planner.full_cycles), 1),
            "reserve_violations": self.reserve_violations,
            "missed_departures": self.missed_departures,
            "unreachable_departures": self.unreachable_departures,
            "departures": self.departures,
            "planner_solves": self.solves,
            "notes": list(self.notes),
        }
        if with_slots:
            doc["slots"] = [s.to_json() for s in self.slots]
        return doc

    def summary(self) -> str:
        y = self.per_year
        rows = [
            f"backtest {self.vehicle_id}: {self.first} .. {self.last} ({self.days} days)",
            f"{'strategy':<10} {'cost':>9} {'revenue':>9} {'net':>9} {'net/year':>9} "
            f"{'charged':>9} {'exported':>9} {'cycles':>7}",
        ]
        for s in (self.planner, self.dumb, self.cheapest):
            rows.append(
                f"{s.name:<10} {s.cost:>9.2f} {s.revenue:>9.2f} {s.net_cost:>9.2f} "
                f"{y(s.net_cost):>9.2f} {s.charged_kwh:>9.1f} {s.exported_kwh:>9.1f} "
                f"{s.full_cycles:>7.1f}"
            )
        rows += [
            f"saving per year: {y(self.saving_vs_dumb):.2f} vs dumb, "
            f"{y(self.saving_vs_cheapest):.2f} vs cheapest-slot charging",
            f"full cycles per year: {y(self.planner.full_cycles):.1f}; reserve violations: "
            f"{self.reserve_violations}; missed departures: {self.missed_departures} "
            f"(unreachable: {self.unreachable_departures} of {self.departures})",
        ]
        rows += [f"note: {n}" for n in self.notes]
        return "\n".join(rows)
