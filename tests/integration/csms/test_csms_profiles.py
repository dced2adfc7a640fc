"""SetChargingProfile / ClearChargingProfile through the per-charger queue."""

from __future__ import annotations

from datetime import timedelta

from csms_client import RawCharger, basic
from csms_fixtures import PASSWORD, T0, Events, make_config

from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.model import (
    ChargerCapability,
    ChargingProfileSpec,
    CommandStatus,
    ProfilePeriod,
    ProfilePurpose,
)


def spec(
    limit_w: float, purpose: ProfilePurpose = ProfilePurpose.TX_PROFILE
) -> ChargingProfileSpec:
    return ChargingProfileSpec(
        charger_id="garage",
        evse_id=1,
        profile_id=7,
        purpose=purpose,
        start=T0,
        valid_to=T0 + timedelta(minutes=15),
        periods=(ProfilePeriod(0, limit_w),),
        transaction_id="tx-1" if purpose == ProfilePurpose.TX_PROFILE else None,
    )


async def test_discharge_profile_sent_and_accepted(
    server: CsmsServer, charger: RawCharger, events: Events
) -> None:
    result = await server.commands.set_charging_profile(spec(-7400))
    assert result.status == CommandStatus.ACCEPTED
    call = await charger.next_call("SetChargingProfile")
    profile = call[3]["chargingProfile"]
    assert call[3]["evseId"] == 1
    assert profile["chargingProfilePurpose"] == "TxProfile"
    assert profile["transactionId"] == "tx-1"
    assert profile["chargingProfileKind"] == "Absolute"
    assert profile["validTo"] == "2025-01-15T12:15:00.000Z"
    sched = profile["chargingSchedule"][0]
    assert sched["startSchedule"] == "2025-01-15T12:00:00.000Z"
    assert sched["duration"] == 900
    assert sched["chargingRateUnit"] == "W"
    assert sched["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": -7400}]
    assert server.commands.last_profile("garage", 1) == spec(-7400)
    (cap,) = events.of(ChargerCapability)
    assert (cap.name, cap.value) == ("discharge", True)


async def test_rejected_negative_limit_marks_no_discharge(
    server: CsmsServer, charger: RawCharger, events: Events
) -> None:
    charger.answers["SetChargingProfile"] = {
        "status": "Rejected",
        "statusInfo": {"reasonCode": "InvalidValue"},
    }
    result = await server.commands.set_charging_profile(spec(-5000))
    assert result.status == CommandStatus.REJECTED
    assert result.detail == "Rejected: InvalidValue"
    assert server.commands.last_profile("garage", 1) is None
    (cap,) = events.of(ChargerCapability)
    assert (cap.name, cap.value) == ("discharge", False)
    assert cap.detail is not None and "Rejected" in cap.detail


async def test_not_implemented_marks_no_discharge(
    server: CsmsServer, charger: RawCharger, events: Events
) -> None:
    charger.answers["SetChargingProfile"] = [4, "NotImplemented", "no V2G", {}]
    result = await server.commands.set_charging_profile(
        spec(-5000, ProfilePurpose.TX_DEFAULT_PROFILE)
    )
    assert result.status == CommandStatus.NOT_IMPLEMENTED
    (cap,) = events.of(ChargerCapability)
    assert cap.value is False


async def test_charge_profile_emits_no_capability(
    server: CsmsServer, charger: RawCharger, events: Events
) -> None:
    result = await server.commands.set_charging_profile(
        spec(11000, ProfilePurpose.TX_DEFAULT_PROFILE)
    )
    assert result.ok
    call = await charger.next_call("SetChargingProfile")
    assert "transactionId" not in call[3]["chargingProfile"]
    assert events.of(ChargerCapability) == []


async def test_clear_profile_forgets_last(server: CsmsServer, charger: RawCharger) -> None:
    assert (await server.commands.set_charging_profile(spec(3000))).ok
    result = await server.commands.clear_charging_profile("garage", profile_id=7, evse_id=1)
    assert result.ok
    call = await charger.next_call("ClearChargingProfile")
    assert call[3] == {"chargingProfileId": 7, "chargingProfileCriteria": {"evseId": 1}}
    assert server.commands.last_profile("garage", 1) is None


async def test_offline_charger(server: CsmsServer) -> None:
    result = await server.commands.set_charging_profile(spec(3000))
    assert result.status == CommandStatus.OFFLINE
    assert server.commands.history("garage")[-1].status == CommandStatus.OFFLINE


async def test_invalid_spec_is_an_error_not_a_crash(
    server: CsmsServer, charger: RawCharger
) -> None:
    bad = ChargingProfileSpec(
        charger_id="garage",
        evse_id=1,
        profile_id=1,
        purpose=ProfilePurpose.TX_PROFILE,
        start=T0,
        valid_to=T0 + timedelta(minutes=5),
        periods=(ProfilePeriod(0, 1000),),
    )
    result = await server.commands.set_charging_profile(bad)
    assert result.status == CommandStatus.ERROR
    assert result.detail is not None and "transaction_id" in result.detail


async def test_timeout_is_typed(make_server, clock, events) -> None:  # type: ignore[no-untyped-def]
    server = await make_server(make_config(call_timeout_s=0.2))
    c = await RawCharger.open(
        f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
    )
    c.silent = True  # the charger reads but never answers
    result = await server.commands.get_composite_schedule("garage", 1, 3600)
    assert result.status == CommandStatus.TIMEOUT
    await c.ws.close()
