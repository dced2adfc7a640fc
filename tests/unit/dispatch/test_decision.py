"""The last gate before a command leaves: DESIGN.md section 4 as a table."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from v2g_gateway.dispatch.decision import Inputs, Mode, decide, estimated_soc
from v2g_gateway.model import Override, OverrideKind, UserPriceSlot, VehicleState

NOW = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)
PEAK = UserPriceSlot(NOW - timedelta(hours=1), NOW + timedelta(hours=1), 0.45, 0.35)
CHEAP = UserPriceSlot(NOW - timedelta(hours=1), NOW + timedelta(hours=1), 0.20, 0.05)


def vehicle(soc: float | None = 70.0, plugged: bool = True, age_s: float = 10) -> VehicleState:
    return VehicleState(
        vehicle_id="car",
        charger_id="garage",
        evse_id=1,
        plugged=plugged,
        soc_percent=soc,
        soc_at=None if soc is None else NOW - timedelta(seconds=age_s),
    )


def inputs(**kw: object) -> Inputs:
    base = Inputs(
        now=NOW,
        vehicle=vehicle(),
        capacity_kwh=60,
        reserve_percent=40,
        max_soc_percent=100,
        max_charge_w=11000,
        max_discharge_w=10000,
        can_discharge=True,
        soc_max_age=timedelta(minutes=30),
        price=PEAK,
        discharge_above_per_kwh=0.30,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def override(kind: OverrideKind, soc: float | None = None) -> Override:
    return Override("o1", "car", kind, NOW - timedelta(minutes=1), NOW + timedelta(hours=1), soc)


@pytest.mark.parametrize(
    ("case", "kw", "mode", "sign"),
    [
        ("peak above reserve discharges", {}, Mode.DISCHARGE, -1),
        ("cheap hour charges", {"price": CHEAP}, Mode.CHARGE, 1),
        ("at reserve holds", {"vehicle": vehicle(40.2)}, Mode.HOLD, 0),
        ("below reserve charges even at peak", {"vehicle": vehicle(30)}, Mode.CHARGE, 1),
        ("unknown SoC never discharges", {"vehicle": vehicle(None)}, Mode.HOLD, 0),
        ("stale SoC never discharges", {"vehicle": vehicle(80, age_s=3600)}, Mode.HOLD, 0),
        ("unknown price never discharges", {"price": None}, Mode.CHARGE, 1),
        ("charger cannot discharge", {"can_discharge": False}, Mode.CHARGE, 1),
        ("unplugged does nothing", {"vehicle": vehicle(plugged=False)}, Mode.IDLE, 0),
        ("full holds", {"price": CHEAP, "vehicle": vehicle(100)}, Mode.HOLD, 0),
        ("no threshold charges", {"discharge_above_per_kwh": None}, Mode.CHARGE, 1),
        (
            "plan discharge blocked at reserve",
            {"planned_w": -5000.0, "vehicle": vehicle(40.1)},
            Mode.HOLD,
            0,
        ),
        ("plan discharge above reserve", {"planned_w": -5000.0}, Mode.DISCHARGE, -1),
        ("tiny planned discharge holds", {"planned_w": -40.0}, Mode.HOLD, 0),
        (
            "planned discharge under the charger minimum holds",
            {"planned_w": -900.0, "min_discharge_w": 1400.0},
            Mode.HOLD,
            0,
        ),
        (
            "user discharge-now stops at reserve",
            {"override": override(OverrideKind.DISCHARGE_NOW, 10), "vehicle": vehicle(40.3)},
            Mode.HOLD,
            0,
        ),
        (
            "user charge-now wins over a peak",
            {"override": override(OverrideKind.CHARGE_NOW, 90)},
            Mode.CHARGE,
            1,
        ),
        ("hold (pause) keeps 0 W", {"override": override(OverrideKind.HOLD)}, Mode.HOLD, 0),
        (
            "release hands control back",
            {"override": override(OverrideKind.RELEASE)},
            Mode.RELEASE,
            0,
        ),
        (
            "outage backs up above the floor, even with unknown price",
            {"outage": True, "backup_w": 3000.0, "price": None, "vehicle": vehicle(30)},
            Mode.BACKUP,
            -1,
        ),
        (
            "outage at the floor holds",
            {"outage": True, "backup_w": 3000.0, "vehicle": vehicle(20.2)},
            Mode.HOLD,
            0,
        ),
        (
            "outage with unknown SoC holds",
            {"outage": True, "backup_w": 3000.0, "vehicle": vehicle(None)},
            Mode.HOLD,
            0,
        ),
    ],
)
def test_decision_table(case: str, kw: dict[str, object], mode: Mode, sign: int) -> None:
    d = decide(inputs(**kw))
    assert d.mode == mode, f"{case}: {d}"
    assert (d.limit_w > 0) - (d.limit_w < 0) == sign, f"{case}: {d}"
    assert d.reason


def test_discharge_power_is_capped_by_limits() -> None:
    d = decide(inputs(max_discharge_w=3700))
    assert d.limit_w == -3700
    b = decide(inputs(outage=True, backup_w=50000.0))
    assert b.limit_w == -10000


def test_estimated_soc_is_conservative_while_discharging() -> None:
    v = replace(vehicle(50, age_s=600), power_w=-10000.0)
    est = estimated_soc(v, NOW, 60)
    assert est is not None
    # 10 kW for 10 minutes is 1.667 kWh of 60 kWh: 2.78 percentage points.
    assert est == pytest.approx(50 - 2.7778, abs=0.01)
    charging = replace(vehicle(50, age_s=600), power_w=10000.0)
    assert estimated_soc(charging, NOW, 60) == 50


def test_estimated_soc_stops_discharge_before_the_reading_reaches_reserve() -> None:
    v = replace(vehicle(41.5, age_s=600), power_w=-10000.0)
    assert decide(inputs(vehicle=v)).mode == Mode.HOLD
