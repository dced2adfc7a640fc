"""Core charger messages: answered per spec and turned into events."""

from __future__ import annotations

from typing import Any

import pytest
from csms_client import RawCharger, basic
from csms_fixtures import BOOT, PASSWORD, Events, make_config

from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.model import (
    ChargerBooted,
    ConnectorStatus,
    ConnectorStatusChanged,
    EvChargingNeeds,
    HeartbeatSeen,
    MeterSample,
    TransactionChanged,
    TransactionEventType,
)

TS = "2025-01-15T12:00:00Z"


def sv(value: float, measurand: str, **extra: Any) -> dict[str, Any]:
    return {"value": value, "measurand": measurand, **extra}


async def test_boot_is_accepted_and_configures_sampling(
    server: CsmsServer, charger: RawCharger, events: Events
) -> None:
    answer = await charger.call("BootNotification", BOOT)
    assert answer[0] == 3
    assert answer[2]["status"] == "Accepted"
    assert answer[2]["interval"] == server.cfg.ocpp.heartbeat_interval_s
    assert answer[2]["currentTime"] == "2025-01-15T12:00:00.000Z"
    (booted,) = events.of(ChargerBooted)
    assert (booted.vendor, booted.model, booted.serial, booted.firmware, booted.reason) == (
        "Acme",
        "Bidi-11",
        "SN1",
        "1.2.3",
        "PowerUp",
    )
    setvars = await charger.next_call("SetVariables")
    items = {
        d["variable"]["name"]: d["attributeValue"]
        for d in setvars[3]["setVariableData"]
        if d["component"]["name"] == "SampledDataCtrlr"
    }
    assert items["TxUpdatedInterval"] == str(server.cfg.ocpp.meter_interval_s)
    assert {"SoC", "Power.Active.Export", "Energy.Active.Export.Register"} <= set(
        items["TxUpdatedMeasurands"].split(",")
    )
    report = await charger.next_call("GetBaseReport")
    assert report[3]["reportBase"] == "FullInventory"


async def test_heartbeat(charger: RawCharger, events: Events) -> None:
    answer = await charger.call("Heartbeat", {})
    assert answer[2] == {"currentTime": "2025-01-15T12:00:00.000Z"}
    assert [e.charger_id for e in events.of(HeartbeatSeen)] == ["garage"]


async def test_status_notification(charger: RawCharger, events: Events) -> None:
    payload = {"timestamp": TS, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}
    answer = await charger.call("StatusNotification", payload)
    assert answer == [3, answer[1], {}]
    (ev,) = events.of(ConnectorStatusChanged)
    assert (ev.evse_id, ev.connector_id, ev.status) == (1, 1, ConnectorStatus.OCCUPIED)


async def test_meter_values_units_phases_and_sign(charger: RawCharger, events: Events) -> None:
    values = [
        sv(55.5, "SoC", unitOfMeasure={"unit": "Percent"}),
        sv(1.5, "Power.Active.Import", unitOfMeasure={"unit": "kW"}),
        sv(4000, "Power.Active.Export", unitOfMeasure={"unit": "W"}),
        sv(12.5, "Energy.Active.Import.Register", unitOfMeasure={"unit": "kWh"}),
        sv(3, "Energy.Active.Export.Register", unitOfMeasure={"unit": "Wh", "multiplier": 3}),
        sv(231.0, "Voltage", phase="L1-N"),
        sv(228.5, "Voltage", phase="L2-N"),
        sv(230.0, "Voltage", phase="L3-N"),
        sv(10.0, "Current.Import", phase="L1"),
        sv(11.0, "Current.Import", phase="L2"),
    ]
    answer = await charger.call(
        "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": TS, "sampledValue": values}]}
    )
    assert answer[0] == 3
    (s,) = events.of(MeterSample)
    assert s.soc_percent == 55.5
    assert s.power_w == pytest.approx(1500 - 4000)
    assert s.energy_import_wh == pytest.approx(12500)
    assert s.energy_export_wh == pytest.approx(3000)
    assert s.voltage_v == 228.5
    assert s.current_a == 11.0
    assert s.transaction_id is None


async def test_meter_values_per_phase_power_adds_up(charger: RawCharger, events: Events) -> None:
    values = [sv(1000, "Power.Active.Import", phase=p) for p in ("L1", "L2", "L3")]
    await charger.call(
        "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": TS, "sampledValue": values}]}
    )
    (s,) = events.of(MeterSample)
    assert s.power_w == 3000
    assert s.soc_percent is None


def tx_event(seq: int, event_type: str, trigger: str, **extra: Any) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "timestamp": TS,
        "triggerReason": trigger,
        "seqNo": seq,
        "transactionInfo": {"transactionId": "tx-1", **extra.pop("info", {})},
        **extra,
    }


async def test_transaction_lifecycle(charger: RawCharger, events: Events) -> None:
    started = tx_event(
        0,
        "Started",
        "CablePluggedIn",
        evse={"id": 1, "connectorId": 1},
        info={"chargingState": "EVConnected"},
        idToken={"idToken": "TAG1", "type": "ISO14443"},
    )
    answer = await charger.call("TransactionEvent", started)
    assert answer[2] == {"idTokenInfo": {"status": "Accepted"}}
    updated = tx_event(
        1,
        "Updated",
        "MeterValuePeriodic",
        info={"chargingState": "Charging"},
        meterValue=[{"timestamp": TS, "sampledValue": [sv(61, "SoC")]}],
    )
    assert (await charger.call("TransactionEvent", updated))[0] == 3
    ended = tx_event(
        2, "Ended", "EVDeparted", info={"stoppedReason": "EVDisconnected"}, offline=True
    )
    assert (await charger.call("TransactionEvent", ended))[2] == {}
    changes = events.of(TransactionChanged)
    assert [c.event_type for c in changes] == [
        TransactionEventType.STARTED,
        TransactionEventType.UPDATED,
        TransactionEventType.ENDED,
    ]
    assert [c.plugged for c in changes] == [True, True, False]
    assert [c.evse_id for c in changes] == [1, 1, 1]  # remembered when Updated leaves it out
    assert changes[0].id_token == "TAG1"
    assert changes[2].offline is True
    assert changes[2].stopped_reason == "EVDisconnected"
    (sample,) = events.of(MeterSample)
    assert (sample.transaction_id, sample.evse_id, sample.soc_percent) == ("tx-1", 1, 61)


async def test_transaction_event_resend_is_applied_once(
    charger: RawCharger, events: Events
) -> None:
    started = tx_event(0, "Started", "Authorized", evse={"id": 1})
    first = await charger.call("TransactionEvent", started)
    again = await charger.call("TransactionEvent", started)
    assert first[0] == again[0] == 3
    assert len(events.of(TransactionChanged)) == 1


async def test_transaction_seqno_gap_is_applied(charger: RawCharger, events: Events) -> None:
    await charger.call("TransactionEvent", tx_event(0, "Started", "Authorized", evse={"id": 1}))
    await charger.call("TransactionEvent", tx_event(5, "Updated", "ChargingStateChanged"))
    assert [c.seq_no for c in events.of(TransactionChanged)] == [0, 5]


@pytest.mark.parametrize(
    ("authorize", "token", "status"),
    [
        ("any", {"idToken": "TAG1", "type": "ISO14443"}, "Accepted"),
        ("any", {"idToken": "X", "type": "ISO14443"}, "Accepted"),  # a guest, not "Invalid"
        ("any", {"idToken": "", "type": "NoAuthorization"}, "Accepted"),
        ("known", {"idToken": "TAG1", "type": "ISO14443"}, "Accepted"),
        ("known", {"idToken": "X", "type": "ISO14443"}, "Unknown"),
        ("known", {"idToken": "", "type": "NoAuthorization"}, "Unknown"),
    ],
)
async def test_token_answers_follow_the_authorize_setting(
    make_server: Any, authorize: str, token: dict[str, str], status: str
) -> None:
    server: CsmsServer = await make_server(make_config(authorize=authorize))
    c = await RawCharger.open(
        f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
    )
    try:
        started = tx_event(0, "Started", "Authorized", idToken=token)
        answer = await c.call("TransactionEvent", started)
        assert answer[2]["idTokenInfo"]["status"] == status
        authorized = await c.call("Authorize", {"idToken": token})
        assert authorized[2] == {"idTokenInfo": {"status": status}}
    finally:
        await c.close()


async def test_ev_charging_needs_dc(charger: RawCharger, events: Events) -> None:
    needs = {
        "requestedEnergyTransfer": "DC",
        "departureTime": "2025-01-16T07:30:00+01:00",
        "dcChargingParameters": {
            "evMaxCurrent": 200,
            "evMaxVoltage": 400,
            "evMaxPower": 50000,
            "stateOfCharge": 42,
            "evEnergyCapacity": 60000,
            "energyAmount": 20000,
        },
    }
    answer = await charger.call("NotifyEVChargingNeeds", {"evseId": 1, "chargingNeeds": needs})
    assert answer[2] == {"status": "Accepted"}
    (n,) = events.of(EvChargingNeeds)
    assert (n.soc_percent, n.capacity_wh, n.energy_request_wh, n.max_charge_w) == (
        42,
        60000,
        20000,
        50000,
    )
    assert (
        n.departure_time is not None and n.departure_time.isoformat() == "2025-01-16T06:30:00+00:00"
    )


async def test_ev_charging_needs_ac(charger: RawCharger, events: Events) -> None:
    needs = {
        "requestedEnergyTransfer": "AC_three_phase",
        "acChargingParameters": {
            "energyAmount": 10000,
            "evMinCurrent": 6,
            "evMaxCurrent": 16,
            "evMaxVoltage": 230,
        },
    }
    await charger.call("NotifyEVChargingNeeds", {"evseId": 1, "chargingNeeds": needs})
    (n,) = events.of(EvChargingNeeds)
    assert n.soc_percent is None
    assert n.energy_request_wh == 10000
    assert n.max_charge_w == 16 * 230


async def test_resend_after_reconnect_is_applied_once(server: CsmsServer, events: Events) -> None:
    from csms_client import basic
    from csms_fixtures import PASSWORD

    url = f"ws://127.0.0.1:{server.port}/ocpp/garage"
    started = tx_event(0, "Started", "Authorized", evse={"id": 1})
    first = await RawCharger.open(url, headers=basic("garage", PASSWORD))
    await first.call("TransactionEvent", started)
    await first.close()
    # The charger was not sure the event got through, reconnects and sends it again (offline).
    second = await RawCharger.open(url, headers=basic("garage", PASSWORD))
    again = await second.call("TransactionEvent", {**started, "offline": True})
    assert again[0] == 3
    update = tx_event(1, "Updated", "ChargingStateChanged", offline=True)
    await second.call("TransactionEvent", update)
    await second.close()
    assert [c.seq_no for c in events.of(TransactionChanged)] == [0, 1]
    assert events.of(TransactionChanged)[1].evse_id == 1  # EVSE remembered across the reconnect
