"""SetChargingProfile / ClearChargingProfile through the per-charger queue."""

from __future__ import annotations

from csms_client import RawCharger, basic
from csms_fixtures import PASSWORD, T0, Events, make_config
from gated import through_gate

from v2g_gateway.csms.refusals import Refusal, classify
from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.dispatch.gate import GatedProfile
from v2g_gateway.model import ChargerCapability, CommandStatus


def spec(limit_w: float, tx: str | None = "tx-1") -> GatedProfile:
    return through_gate(T0, [(0, limit_w)], transaction_id=tx)


async def test_discharge_profile_sent_and_accepted(
    server: CsmsServer, charger: RawCharger, events: Events
) -> None:
    sent = spec(-7400)
    result = await server.commands.set_charging_profile(sent)
    assert result.status == CommandStatus.ACCEPTED
    call = await charger.next_call("SetChargingProfile")
    profile = call[3]["chargingProfile"]
    assert call[3]["evseId"] == 1
    assert profile["chargingProfilePurpose"] == "TxProfile"
    assert profile["transactionId"] == "tx-1"
    assert profile["chargingProfileKind"] == "Absolute"
    # 14 minutes of dispatch, then a minute at 0 W before it expires: never ends on a discharge.
    assert profile["validTo"] == "2025-01-15T12:15:00.000Z"
    sched = profile["chargingSchedule"][0]
    assert sched["startSchedule"] == "2025-01-15T12:00:00.000Z"
    assert sched["duration"] == 900
    assert sched["chargingRateUnit"] == "W"
    assert sched["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": -7400},
        {"startPeriod": 840, "limit": 0},
    ]
    assert server.commands.last_profile("garage", 1) == sent.spec
    # The command layer reports; what an answer means for discharging, dispatch decides.
    assert events.of(ChargerCapability) == []


async def test_a_rejection_carries_the_chargers_words(
    server: CsmsServer, charger: RawCharger, events: Events
) -> None:
    charger.answers["SetChargingProfile"] = {
        "status": "Rejected",
        "statusInfo": {"reasonCode": "UnsupportedRateUnit"},
    }
    result = await server.commands.set_charging_profile(spec(-5000))
    assert result.status == CommandStatus.REJECTED
    assert result.detail == "Rejected: UnsupportedRateUnit"
    assert classify(result) == Refusal.UNIT
    assert server.commands.last_profile("garage", 1) is None
    # The command layer learns the unit (and tries amperes); discharging is not its to judge.
    assert [c.name for c in events.of(ChargerCapability) if c.name == "discharge"] == []


async def test_not_implemented_keeps_the_callerror_code(
    server: CsmsServer, charger: RawCharger, events: Events
) -> None:
    charger.answers["SetChargingProfile"] = [4, "NotImplemented", "no V2G", {}]
    result = await server.commands.set_charging_profile(spec(-5000, tx=None))
    assert result.status == CommandStatus.NOT_IMPLEMENTED
    assert result.payload["callError"] == "NotImplemented"
    assert classify(result) == Refusal.DISCHARGE  # "no V2G" says what it is about
    assert events.of(ChargerCapability) == []


async def test_a_default_profile_has_no_transaction(
    server: CsmsServer, charger: RawCharger, events: Events
) -> None:
    result = await server.commands.set_charging_profile(spec(11000, tx=None))
    assert result.ok
    call = await charger.next_call("SetChargingProfile")
    assert call[3]["chargingProfile"]["chargingProfilePurpose"] == "TxDefaultProfile"
    assert "transactionId" not in call[3]["chargingProfile"]


async def test_clear_profile_forgets_last(server: CsmsServer, charger: RawCharger) -> None:
    sent = spec(3000)
    assert (await server.commands.set_charging_profile(sent)).ok
    pid = sent.spec.profile_id
    result = await server.commands.clear_charging_profile("garage", profile_id=pid, evse_id=1)
    assert result.ok
    call = await charger.next_call("ClearChargingProfile")
    assert call[3] == {"chargingProfileId": pid, "chargingProfileCriteria": {"evseId": 1}}
    assert server.commands.last_profile("garage", 1) is None


async def test_offline_charger(server: CsmsServer) -> None:
    result = await server.commands.set_charging_profile(spec(3000))
    assert result.status == CommandStatus.OFFLINE
    assert server.commands.history("garage")[-1].status == CommandStatus.OFFLINE


async def test_timeout_is_typed(make_server, clock, events) -> None:  # type: ignore[no-untyped-def]
    server = await make_server(make_config(call_timeout_s=0.2))
    c = await RawCharger.open(
        f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
    )
    c.silent = True  # the charger reads but never answers
    result = await server.commands.get_composite_schedule("garage", 1, 3600)
    assert result.status == CommandStatus.TIMEOUT
    await c.ws.close()
