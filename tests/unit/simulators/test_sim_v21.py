"""The simulated charger's OCPP 2.1 rules: operation modes and setpoints, maxOfflineDuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from simulators.charger import SimulatedCharger
from simulators.composite import EvseContext, install, limit_at
from simulators.errors import InvalidProfile
from v2g_gateway.clock import ManualClock

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
CTX = EvseContext(evse_id=1, max_charge_w=11000, max_discharge_w=10000, transaction_id="tx1")


def profile(period: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": 1,
                "startSchedule": T0.isoformat(),
                "duration": 900,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, **period}],
            }
        ],
        **extra,
    }


@pytest.mark.parametrize(
    ("period", "power"),
    [
        ({"operationMode": "Idle", "limit": 5000}, 0.0),
        ({"operationMode": "ChargingOnly", "limit": 4000}, 4000.0),
        ({"operationMode": "ChargingOnly", "limit": -4000}, 0.0),  # never discharges
        ({"operationMode": "CentralSetpoint", "setpoint": -6000, "dischargeLimit": -4000}, -4000.0),
        ({"operationMode": "CentralSetpoint", "setpoint": 3000, "limit": 2000}, 2000.0),
        ({"operationMode": "CentralSetpoint", "setpoint": -5000, "limit": 0}, -5000.0),
        ({"operationMode": "LocalLoadBalancing", "dischargeLimit": -1500, "limit": 0}, -1500.0),
        ({"limit": -3000}, -3000.0),  # 2.0.1: a negative limit
    ],
)
def test_operation_modes(period: dict[str, Any], power: float) -> None:
    assert limit_at([install(1, profile(period))], T0, CTX) == power


def test_a_setpoint_is_required_in_central_setpoint() -> None:
    with pytest.raises(InvalidProfile, match="setpoint"):
        install(1, profile({"operationMode": "CentralSetpoint", "limit": 0}))
    with pytest.raises(InvalidProfile, match="maxOfflineDuration"):
        install(1, profile({"limit": 0}, maxOfflineDuration=-1))


def test_max_offline_duration_is_read() -> None:
    p = install(
        1,
        profile(
            {"operationMode": "CentralSetpoint", "setpoint": -5000},
            maxOfflineDuration=60,
            invalidAfterOfflineDuration=True,
        ),
    )
    assert (p.max_offline_s, p.invalid_after_offline) == (60, True)
    assert install(1, profile({"limit": 1})).max_offline_s is None


async def test_offline_profiles_stop_counting() -> None:
    clock = ManualClock(T0)
    sim = SimulatedCharger("ws://127.0.0.1:1", "g", password=None, clock=clock, ocpp_version="2.1")
    raw = profile(
        {"operationMode": "CentralSetpoint", "setpoint": -5000},
        maxOfflineDuration=60,
        invalidAfterOfflineDuration=True,
    )
    sim.book.installed.append(install(1, raw))
    sim.book.went_offline()
    assert sim.book.in_force(T0 + timedelta(seconds=60)) == sim.book.installed
    assert sim.book.in_force(T0 + timedelta(seconds=61)) == []
    await clock.advance(61)
    sim.book.prune()
    assert sim.book.installed == []  # invalid for good, also once back online
