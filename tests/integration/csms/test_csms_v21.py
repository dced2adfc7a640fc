"""OCPP 2.1 sessions: version negotiation, the 2.1 schemas both ways, V2X needs and authorization."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from csms_client import RawCharger, basic
from csms_fixtures import BOOT, PASSWORD, T0, Events, make_config
from gated import through_gate
from websockets.exceptions import InvalidStatus

from v2g_gateway.csms import frames
from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.model import EvChargingNeeds

URL = "ws://127.0.0.1:{port}/ocpp/garage"


async def _open(server: CsmsServer, subprotocols: list[str]) -> RawCharger:
    return await RawCharger.open(
        URL.format(port=server.port), headers=basic("garage", PASSWORD), subprotocols=subprotocols
    )


@pytest.fixture
async def charger21(server: CsmsServer) -> AsyncIterator[RawCharger]:
    c = await _open(server, ["ocpp2.1", "ocpp2.0.1"])
    yield c
    await c.close()


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["ocpp2.1", "ocpp2.0.1"], "ocpp2.1"),
        (["ocpp2.0.1", "ocpp2.1"], "ocpp2.0.1"),  # the charger's preference wins
        (["ocpp1.6", "ocpp2.1"], "ocpp2.1"),
    ],
)
async def test_the_chargers_preference_wins(
    server: CsmsServer, offered: list[str], chosen: str
) -> None:
    c = await _open(server, offered)
    try:
        assert c.ws.subprotocol == chosen
        assert (await c.call("Heartbeat", {}))[0] == 3
        assert server.commands.version_of("garage") == chosen.removeprefix("ocpp")
    finally:
        await c.close()


async def test_a_pinned_version_overrides_the_preference(
    make_server: Callable[..., Any],
) -> None:
    server = await make_server(make_config(charger={"ocpp_version": "2.0.1"}))
    c = await _open(server, ["ocpp2.1", "ocpp2.0.1"])
    try:
        assert c.ws.subprotocol == "ocpp2.0.1"
    finally:
        await c.close()
    pinned21 = await make_server(make_config(charger={"ocpp_version": "2.1"}))
    with pytest.raises(InvalidStatus) as info:
        await _open(pinned21, ["ocpp2.0.1"])
    assert info.value.response.status_code == 400


async def test_2_1_frames_are_checked_against_the_2_1_schemas(charger21: RawCharger) -> None:
    # operationMode in a TransactionEvent is 2.1: valid here, and no leniency needed for it.
    tx = {
        "eventType": "Started",
        "timestamp": "2025-01-15T12:00:00Z",
        "triggerReason": "CablePluggedIn",
        "seqNo": 0,
        "evse": {"id": 1, "connectorId": 1},
        "transactionInfo": {"transactionId": "t1", "operationMode": "ChargingOnly"},
    }
    assert (await charger21.call("TransactionEvent", tx))[0] == 3
    bad = await charger21.call("NotifyPriorityCharging", {"transactionId": "t1"})
    assert bad[0] == 4 and bad[2] == "OccurrenceConstraintViolation"
    ok = await charger21.call("NotifyPriorityCharging", {"transactionId": "t1", "activated": True})
    assert ok == [3, ok[1], {}]


async def test_send_frames_take_no_answer(charger21: RawCharger) -> None:
    await charger21.send_raw(
        '[6,"s1","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"2025-01-15T12:00:00Z","data":[]}]'
    )
    assert (await charger21.call("Heartbeat", {}))[0] == 3
    assert charger21.unsolicited.empty()


async def test_authorize_allows_bidirectional_modes_to_a_v2g_car(charger21: RawCharger) -> None:
    car = await charger21.call("Authorize", {"idToken": {"idToken": "TAG1", "type": "ISO14443"}})
    assert "DC_BPT" in car[2]["allowedEnergyTransfer"]
    guest = await charger21.call("Authorize", {"idToken": {"idToken": "X", "type": "ISO14443"}})
    assert guest[2]["idTokenInfo"]["status"] == "Accepted"
    assert not any("BPT" in m for m in guest[2]["allowedEnergyTransfer"])


async def test_a_v2g_car_started_without_authorize_is_told_its_modes(
    charger21: RawCharger,
) -> None:
    tx = {
        "eventType": "Started",
        "timestamp": "2025-01-15T12:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "evse": {"id": 1, "connectorId": 1},
        "idToken": {"idToken": "TAG1", "type": "ISO14443"},
        "transactionInfo": {"transactionId": "t7"},
    }
    charger21.answers["NotifyAllowedEnergyTransfer"] = {"status": "Accepted"}
    assert (await charger21.call("TransactionEvent", tx))[0] == 3
    call = await asyncio.wait_for(charger21.next_call("NotifyAllowedEnergyTransfer"), 5)
    assert call[3]["transactionId"] == "t7"
    assert "AC_BPT" in call[3]["allowedEnergyTransfer"]
    assert frames.schema_problem(frames.CALL, call[2], call[3], frames.V21) is None


NEEDS = {
    "evseId": 1,
    "chargingNeeds": {
        "requestedEnergyTransfer": "DC_BPT",
        "controlMode": "ScheduledControl",
        "departureTime": "2025-01-15T18:00:00Z",
        "dcChargingParameters": {"evMaxCurrent": 100, "evMaxVoltage": 400, "stateOfCharge": 55},
        "v2xChargingParameters": {
            "minChargePower": 1400,
            "maxChargePower": 11000,
            "minDischargePower": 1000,
            "maxDischargePower": 7000,
            "evTargetEnergyRequest": 12000,
            "evMinV2XEnergyRequest": 3000,
        },
    },
}


async def test_v2x_parameters_are_learnt(
    server: CsmsServer, charger21: RawCharger, events: Events
) -> None:
    await charger21.call("Authorize", {"idToken": {"idToken": "TAG1", "type": "ISO14443"}})
    answer = await charger21.call("NotifyEVChargingNeeds", NEEDS)
    assert answer[2] == {"status": "NoChargingProfile"}  # nothing planned yet
    (needs,) = events.of(EvChargingNeeds)
    assert (needs.max_charge_w, needs.max_discharge_w) == (11000, 7000)
    assert (needs.min_charge_w, needs.min_discharge_w) == (1400, 1000)
    assert needs.bidirectional is True and needs.v2x_min_energy_wh == 3000
    assert needs.energy_request_wh == 12000 and needs.soc_percent == 55
    assert server.commands.v2x_of("garage", 1)
    # Once a profile went out, the same needs are Accepted.
    profile = through_gate(T0, [(0, -5000), (300, 0)], transaction_id=None)
    assert (await server.commands.set_charging_profile(profile)).ok
    assert (await charger21.call("NotifyEVChargingNeeds", NEEDS))[2] == {"status": "Accepted"}


async def test_a_car_asking_only_to_charge_is_not_bidirectional(
    server: CsmsServer, charger21: RawCharger, events: Events
) -> None:
    needs = {
        "evseId": 1,
        "chargingNeeds": {**NEEDS["chargingNeeds"], "requestedEnergyTransfer": "DC"},
    }  # type: ignore[dict-item]
    await charger21.call("NotifyEVChargingNeeds", needs)
    (read,) = events.of(EvChargingNeeds)
    assert read.bidirectional is False and read.max_discharge_w == 0
    assert not server.commands.v2x_of("garage", 1)
    refused = await server.commands.set_charging_profile(
        through_gate(T0, [(0, -5000), (300, 0)], transaction_id=None)
    )
    assert not refused.ok and "without V2X" in (refused.detail or "")


async def test_a_discharge_goes_out_as_a_central_setpoint(
    server: CsmsServer, charger21: RawCharger
) -> None:
    await charger21.call("BootNotification", BOOT)
    profile = through_gate(T0, [(0, -7400.5), (300, 0)], transaction_id=None)
    result = await server.commands.set_charging_profile(profile)
    assert result.ok, result.detail
    call = await charger21.next_call("SetChargingProfile")
    sent = call[3]["chargingProfile"]
    periods = sent["chargingSchedule"][0]["chargingSchedulePeriod"]
    assert periods[0]["operationMode"] == "CentralSetpoint"
    assert periods[0]["setpoint"] == periods[0]["dischargeLimit"] < 0
    assert periods[-1]["operationMode"] == "Idle"
    assert sent["maxOfflineDuration"] == server.cfg.ocpp.max_offline_s
    assert sent["invalidAfterOfflineDuration"] is True


async def test_an_outage_uses_local_load_balancing_where_the_charger_has_it(
    server: CsmsServer, charger21: RawCharger
) -> None:
    report = {
        "requestId": 1,
        "generatedAt": "2025-01-15T12:00:00Z",
        "seqNo": 0,
        "reportData": [
            {
                "component": {"name": "V2XChargingCtrlr"},
                "variable": {"name": "SupportedOperationModes"},
                "variableAttribute": [{"value": "ChargingOnly,CentralSetpoint,LocalLoadBalancing"}],
            }
        ],
    }
    assert (await charger21.call("NotifyReport", report))[0] == 3
    profile = through_gate(T0, [(0, -3000), (300, 0)], transaction_id=None)
    modes = []
    for outage in (False, True):
        server.commands.outage = lambda outage=outage: outage  # type: ignore[misc]
        assert (await server.commands.set_charging_profile(profile)).ok
        call = await charger21.next_call("SetChargingProfile")
        first = call[3]["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
        modes.append(first["operationMode"])
        assert first["dischargeLimit"] == -3000
    assert modes == ["CentralSetpoint", "LocalLoadBalancing"]
