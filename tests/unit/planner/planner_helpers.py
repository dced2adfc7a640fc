"""Builders for planner requests: hourly (or any-length) price vectors from plain lists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from v2g_gateway.dispatch.planner import Plan, PlanRequest, PlanVehicle
from v2g_gateway.model import UserPriceSlot

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


def vehicle(**kw: Any) -> PlanVehicle:
    base: dict[str, Any] = {
        "vehicle_id": "car",
        "capacity_kwh": 60.0,
        "soc_kwh": 30.0,
        "reserve_kwh": 18.0,
        "max_kwh": 57.0,
        "max_charge_kw": 11.0,
        "max_discharge_kw": 10.0,
        "eta_c": 0.95,
        "eta_d": 0.95,
        "can_discharge": True,
    }
    base.update(kw)
    return PlanVehicle(**base)


def slots(
    imp: Sequence[float],
    exp: Sequence[float] | None = None,
    minutes: Sequence[int] | int = 60,
    start: datetime = T0,
) -> list[UserPriceSlot]:
    exp = exp if exp is not None else [p * 0.5 for p in imp]
    lengths = [minutes] * len(imp) if isinstance(minutes, int) else list(minutes)
    out, t = [], start
    for i, p in enumerate(imp):
        end = t + timedelta(minutes=lengths[i])
        out.append(UserPriceSlot(t, end, p, exp[i]))
        t = end
    return out


def request(prices: Sequence[UserPriceSlot], **kw: Any) -> PlanRequest:
    base: dict[str, Any] = {
        "now": prices[0].start,
        "vehicle": vehicle(),
        "prices": prices,
        "plugged": [True] * len(prices),
        "degradation_cost_per_kwh": 0.03,
    }
    base.update(kw)
    return PlanRequest(**base)


def replay(plan: Plan, v: PlanVehicle) -> list[float]:
    """SoC after each slot, recomputed from the plan's powers (not trusting its SoC column)."""
    e, out = v.soc_kwh, []
    for s in plan.slots:
        e += v.eta_c * s.charge_kw * s.hours - s.discharge_kw * s.hours / v.eta_d
        out.append(e)
    return out


def exported_kwh(plan: Plan) -> float:
    return sum(s.discharge_kw * s.hours for s in plan.slots)


def charged_kwh(plan: Plan) -> float:
    return sum(s.charge_kw * s.hours for s in plan.slots)
