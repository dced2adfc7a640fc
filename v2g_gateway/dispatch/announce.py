"""What the user is told about plans: a new plan when it changed materially, a departure target
at risk, planning trouble (each once until it clears)."""

from __future__ import annotations

from datetime import datetime

from v2g_gateway.config import Config
from v2g_gateway.dispatch.plan_types import Plan
from v2g_gateway.model import Notification
from v2g_gateway.store import Store


class Announcer:
    def __init__(self, cfg: Config, store: Store) -> None:
        self._cfg = cfg
        self._store = store
        self._told: set[tuple[str, str]] = set()

    def clear(self, vehicle_id: str, kind: str) -> None:
        self._told.discard((vehicle_id, kind))

    def tell_once(self, vehicle_id: str, kind: str, message: str, now: datetime) -> None:
        if (vehicle_id, kind) in self._told:
            return
        self._told.add((vehicle_id, kind))
        self._store.notify(
            Notification(kind=kind, message=message, at=now, level="warning", vehicle_id=vehicle_id)
        )

    def announce(
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
            self.tell_once(
                vehicle_id,
                "departure_target_at_risk",
                f"{vehicle_id} cannot reach its departure target{when}: charging at full power",
                now,
            )
        else:
            self.clear(vehicle_id, "departure_target_at_risk")
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
