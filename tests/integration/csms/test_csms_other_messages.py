"""The rest of the charger-to-CSMS messages of 2.0.1, and the remaining commands."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from csms_client import RawCharger, basic
from csms_fixtures import PASSWORD, T0, Events, make_config

from v2g_gateway.clock import ManualClock
from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.model import ChargerCapability, ChargerDisconnected, CommandStatus

TS = "2025-01-15T12:00:00Z"


def entry(component: str, variable: str, value: str | None = None, **chars: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "component": {"name": component},
        "variable": {"name": variable},
        "variableAttribute": [{"type": "Actual", "value": value}] if value is not None else [{}],
    }
    if chars:
        e["variableCharacteristics"] = {"dataType": "decimal", "supportsMonitoring": False, **chars}
    return e


async def test_notify_report_capabilities(charger: RawCharger, events: Events) -> None:
    report = [
        entry("SmartChargingCtrlr", "Enabled", "true"),
        entry("ISO15118Ctrlr", "Enabled", "false"),
        entry("V2XChargingCtrlr", "Enabled", "true"),
        entry("EVSE", "SupplyPhases", "3"),
        entry("EVSE", "Power", "11000", maxLimit=11, unit="kW"),
        entry("OCPPCommCtrlr", "HeartbeatInterval", "300"),
    ]
    payload = {"requestId": 1, "generatedAt": TS, "seqNo": 0, "reportData": report}
    assert (await charger.call("NotifyReport", payload))[2] == {}
    caps = {c.name: c.value for c in events.of(ChargerCapability)}
    assert caps == {
        "smart_charging_enabled": True,
        "iso15118": False,
        "discharge": True,
        "phases": 3,  # learnt from SupplyPhases, with what W <-> A uses beside it
        "rate_unit": "W",
        "voltage_v": 230.0,
        "min_power_w": 4140.0,
        "max_power_w": 11000.0,
    }


async def test_charging_limit_set_and_cleared(charger: RawCharger, events: Events) -> None:
    limit = {"evseId": 1, "chargingLimit": {"chargingLimitSource": "SO", "isGridCritical": True}}
    assert (await charger.call("NotifyChargingLimit", limit))[2] == {}
    cleared = {"chargingLimitSource": "SO", "evseId": 1}
    assert (await charger.call("ClearedChargingLimit", cleared))[2] == {}
    first, second = events.of(ChargerCapability)
    assert first.name == second.name == "external_limit"
    assert first.value["source"] == "SO" and first.value["grid_critical"] is True
    assert second.value is None


@pytest.mark.parametrize(
    ("action", "payload", "answer"),
    [
        (
            "Authorize",
            {"idToken": {"idToken": "TAG1", "type": "ISO14443"}},
            {"idTokenInfo": {"status": "Accepted"}},
        ),
        (
            "Authorize",
            {"idToken": {"idToken": "GUEST", "type": "ISO14443"}},
            {"idTokenInfo": {"status": "Accepted"}},  # authorize = "any" (the default)
        ),
        ("DataTransfer", {"vendorId": "com.acme", "messageId": "x"}, {"status": "UnknownVendorId"}),
        (
            "SignCertificate",
            {"csr": "x"},
            {"status": "Rejected", "statusInfo": {"reasonCode": "NotSupported"}},
        ),
        ("FirmwareStatusNotification", {"status": "Downloading", "requestId": 3}, {}),
        ("LogStatusNotification", {"status": "Uploaded", "requestId": 4}, {}),
        ("SecurityEventNotification", {"type": "TamperDetectionActivated", "timestamp": TS}, {}),
        (
            "NotifyEvent",
            {
                "generatedAt": TS,
                "seqNo": 0,
                "eventData": [
                    {
                        "eventId": 1,
                        "timestamp": TS,
                        "trigger": "Delta",
                        "actualValue": "Faulted",
                        "eventNotificationType": "HardWiredNotification",
                        "component": {"name": "Connector"},
                        "variable": {"name": "AvailabilityState"},
                    }
                ],
            },
            {},
        ),
        (
            "NotifyEVChargingSchedule",
            {
                "timeBase": TS,
                "evseId": 1,
                "chargingSchedule": {
                    "id": 1,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7000}],
                },
            },
            {"status": "Accepted"},
        ),
        (
            "Get15118EVCertificate",
            {"iso15118SchemaVersion": "x", "action": "Install", "exiRequest": "AA=="},
            {"status": "Failed", "exiResponse": ""},
        ),
        ("ReservationStatusUpdate", {"reservationId": 1, "reservationUpdateStatus": "Removed"}, {}),
    ],
)
async def test_answers(
    charger: RawCharger, action: str, payload: dict[str, Any], answer: dict[str, Any]
) -> None:
    got = await charger.call(action, payload)
    assert got[0] == 3
    assert got[2] == answer


async def test_report_charging_profiles_are_kept(server: CsmsServer, charger: RawCharger) -> None:
    result = await server.commands.get_charging_profiles("garage", evse_id=1)
    assert result.ok
    request = await charger.next_call("GetChargingProfiles")
    report = {
        "requestId": request[3]["requestId"],
        "chargingLimitSource": "CSO",
        "evseId": 1,
        "chargingProfile": [
            {
                "id": 9,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [
                    {
                        "id": 9,
                        "startSchedule": TS,
                        "chargingRateUnit": "W",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 2000}],
                    }
                ],
            }
        ],
    }
    assert (await charger.call("ReportChargingProfiles", report))[2] == {}
    (kept,) = server.commands.reported_profiles("garage")
    assert kept["chargingProfile"][0]["id"] == 9


async def test_commands_send_what_the_spec_says(server: CsmsServer, charger: RawCharger) -> None:
    charger.answers.update(
        {
            "RequestStartTransaction": {"status": "Accepted", "transactionId": "tx-9"},
            "RequestStopTransaction": {"status": "Rejected"},
            "TriggerMessage": {"status": "NotImplemented"},
            "Reset": {"status": "Scheduled"},
            "ChangeAvailability": {"status": "Accepted"},
            "GetVariables": {
                "getVariableResult": [
                    {
                        "attributeStatus": "Accepted",
                        "attributeValue": "true",
                        "component": {"name": "SmartChargingCtrlr"},
                        "variable": {"name": "Enabled"},
                    }
                ]
            },
            "SetVariables": {
                "setVariableResult": [
                    {
                        "attributeStatus": "Rejected",
                        "component": {"name": "SampledDataCtrlr"},
                        "variable": {"name": "TxUpdatedInterval"},
                    }
                ]
            },
            "GetCompositeSchedule": {"status": "Rejected"},
        }
    )
    c = server.commands
    start = await c.request_start_transaction("garage", "TAG1", evse_id=1)
    assert start.ok and start.payload["transactionId"] == "tx-9"
    sent = await charger.next_call("RequestStartTransaction")
    assert sent[3]["idToken"] == {"idToken": "TAG1", "type": "Central"} and sent[3]["evseId"] == 1
    assert (await c.request_stop_transaction("garage", "tx-9")).status == CommandStatus.REJECTED
    trig = await c.trigger_message("garage", "StatusNotification", evse_id=1)
    assert (trig.status, trig.detail) == (CommandStatus.REJECTED, "NotImplemented")
    reset = await c.reset("garage", "Immediate")
    assert reset.ok and reset.detail == "Scheduled"
    avail = await c.change_availability("garage", False, evse_id=1, connector_id=1)
    assert avail.ok
    sent = await charger.next_call("ChangeAvailability")
    assert sent[3] == {"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": 1}}
    got = await c.get_variables("garage", [("SmartChargingCtrlr", "Enabled")])
    assert got.payload["getVariableResult"][0]["attributeValue"] == "true"
    setv = await c.set_variables("garage", [("SampledDataCtrlr", "TxUpdatedInterval", "5")])
    assert setv.status == CommandStatus.REJECTED
    assert setv.detail == "SampledDataCtrlr.TxUpdatedInterval: Rejected"
    comp = await c.get_composite_schedule("garage", 1, 600)
    assert comp.status == CommandStatus.REJECTED
    actions = [r.action for r in c.history("garage")]
    assert actions[-3:] == ["GetVariables", "SetVariables", "GetCompositeSchedule"]


async def test_invalid_answer_is_an_error(server: CsmsServer, charger: RawCharger) -> None:
    charger.answers["Reset"] = {"status": "Maybe"}
    result = await server.commands.reset("garage")
    assert result.status == CommandStatus.ERROR
    assert result.detail is not None and "invalid answer" in result.detail


async def test_commands_queue_one_at_a_time(server: CsmsServer, charger: RawCharger) -> None:
    c = server.commands
    results = await asyncio.gather(*(c.reset("garage") for _ in range(5)))
    assert [r.status for r in results] == [CommandStatus.ACCEPTED] * 5
    assert charger.calls.qsize() == 5


async def test_dead_socket_found_by_ping_timeout() -> None:
    gone = asyncio.Event()
    seen: list[Any] = []

    def sink(event: Any) -> None:
        seen.append(event)
        if isinstance(event, ChargerDisconnected):
            gone.set()

    server = CsmsServer(
        make_config(ping_interval_s=0.05, ping_timeout_s=0.05), sink, ManualClock(T0)
    )
    await server.start()
    try:
        c = await RawCharger.open(
            f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
        )
        c.ws.transport.pause_reading()  # the charger hangs: no pong ever comes back
        await asyncio.wait_for(gone.wait(), 10)
        assert server.connected() == set()
        c._reader.cancel()
    finally:
        await server.close()


async def test_hangup_during_a_command_is_offline_at_once(server: CsmsServer) -> None:
    # call_timeout_s is 30 s here: the answer must not wait for it.
    c = await RawCharger.open(
        f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
    )
    c.silent = True
    pending = asyncio.create_task(server.commands.reset("garage"))
    await c.next_call("Reset")
    await c.ws.close()
    result = await asyncio.wait_for(pending, 10)
    assert result.status == CommandStatus.OFFLINE
    assert result.detail is not None and "closed" in result.detail
