"""Field firmware at the wire: lenient input, offline replays, boots, units, refusals, reports.

Raw frames against the real server (the simulator's quirky mode covers the same behaviours end
to end in tests/e2e/test_quirks_*.py); these pin the exact frames and answers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from csms_client import RawCharger, basic
from csms_fixtures import BOOT, PASSWORD, T0, Events, make_config
from gated import through_gate
from structlog.testing import capture_logs

from v2g_gateway.clock import ManualClock
from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.model import (
    ChargerCapability,
    CommandStatus,
    MeterSample,
    Notification,
    TransactionChanged,
)

TS = "2025-01-15T12:00:00Z"


def caps(events: Events, name: str) -> list[Any]:
    return [c.value for c in events.of(ChargerCapability) if c.name == name]


def spec(*limits: float) -> Any:
    """A default profile (EVSE 1) with a period every 5 minutes, through the gate."""
    return through_gate(T0, [(i * 300, w) for i, w in enumerate(limits)], transaction_id=None)


class Told(list[Notification]):
    """Notices as they come, with a way to wait for one (no polling)."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()

    def hear(self, n: Notification) -> None:
        self.append(n)
        self._changed.set()

    async def kind(self, kind: str, count: int = 1) -> Notification:
        """The `count`th notice of `kind`, once it has come."""
        async with asyncio.timeout(10):
            while sum(n.kind == kind for n in self) < count:
                self._changed.clear()
                await self._changed.wait()
        return [n for n in self if n.kind == kind][count - 1]


@pytest.fixture
def told(server: CsmsServer) -> Told:
    out = Told()
    server.commands.adaptation.notices.subscribe(out.hear)
    return out


async def _open(server: CsmsServer) -> RawCharger:
    return await RawCharger.open(
        f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
    )


@pytest.fixture
async def strict_server(make_server: Any) -> AsyncIterator[CsmsServer]:
    server: CsmsServer = await make_server(make_config(charger={"strict": True}))
    yield server


# ------------------------------------------------------------------------ lenient input


def _quirky_meter_values(soc: Any) -> dict[str, Any]:
    return {
        "evseId": "1",
        "vendorExtension": {"build": 7},
        "meterValue": [
            {
                "timestamp": TS,
                "sampledValue": [
                    {"value": soc, "measurand": "SoC", "vendorQuality": "good"},
                    {"value": "3200", "measurand": "Power.Active.Import"},
                    {"value": 41.5, "measurand": "Vendor.Temperature.Cable"},
                ],
            }
        ],
    }


async def test_quirky_frames_are_read_with_one_warning_per_kind(
    charger: RawCharger, events: Events
) -> None:
    with capture_logs() as logs:
        for soc in ("55", "56"):
            answer = await charger.call("MeterValues", _quirky_meter_values(soc))
            assert answer[0] == 3, answer
    samples = events.of(MeterSample)
    assert [(s.evse_id, s.soc_percent, s.power_w) for s in samples] == [
        (1, 55.0, 3200.0),
        (1, 56.0, 3200.0),
    ]
    warned = [e["kind"] for e in logs if e["event"].startswith("accepted input")]
    assert sorted(warned) == ["number as string", "unknown property", "vendor measurand"]
    assert caps(events, "input_quirks")[-1] == sorted(warned)


async def test_values_dispatch_depends_on_stay_strict(charger: RawCharger, events: Events) -> None:
    answer = await charger.call("MeterValues", _quirky_meter_values("105"))
    assert answer[:3] == [4, answer[1], "PropertyConstraintViolation"]  # SoC out of range
    register = {
        "evseId": 1,
        "meterValue": [
            {
                "timestamp": TS,
                "sampledValue": [{"value": "-5", "measurand": "Energy.Active.Import.Register"}],
            }
        ],
    }
    assert (await charger.call("MeterValues", register))[2] == "PropertyConstraintViolation"
    late = {"evseId": 1, "meterValue": [{"timestamp": "soon", "sampledValue": [{"value": 1}]}]}
    assert (await charger.call("MeterValues", late))[2] == "PropertyConstraintViolation"
    assert events.of(MeterSample) == []


async def test_strict_charger_gets_callerrors(strict_server: CsmsServer, events: Events) -> None:
    c = await _open(strict_server)
    try:
        answer = await c.call("MeterValues", _quirky_meter_values("55"))
        assert answer[0] == 4 and answer[2] == "TypeConstraintViolation"
        assert events.of(MeterSample) == []
    finally:
        await c.close()


async def test_21_fields_in_a_201_session_are_used(charger: RawCharger, events: Events) -> None:
    needs = {
        "evseId": 1,
        "chargingNeeds": {
            "requestedEnergyTransfer": "DC_BPT",
            "dcChargingParameters": {"evMaxCurrent": 100, "evMaxVoltage": 400, "stateOfCharge": 61},
            "v2xChargingParameters": {"maxChargePower": 11000, "maxDischargePower": 9000},
        },
    }
    assert (await charger.call("NotifyEVChargingNeeds", needs))[2] == {"status": "Accepted"}
    (need,) = [e for e in events if type(e).__name__ == "EvChargingNeeds"]
    assert (need.soc_percent, need.max_charge_w, need.max_discharge_w) == (61.0, 11000.0, 9000.0)


# ------------------------------------------------------------------------ boots


async def test_unreadable_boot_is_rejected_never_a_callerror(
    strict_server: CsmsServer, events: Events
) -> None:
    c = await _open(strict_server)
    try:
        answer = await c.call("BootNotification", {"chargingStation": []})
        assert answer[0] == 3
        assert answer[2]["status"] == "Rejected" and answer[2]["interval"] > 0
        assert answer[2]["statusInfo"]["reasonCode"] == "InvalidValue"
        assert answer[2]["statusInfo"]["additionalInfo"].startswith("Occurrence")
    finally:
        await c.close()


async def test_lenient_boot_with_missing_fields_is_accepted(
    charger: RawCharger, events: Events
) -> None:
    answer = await charger.call(
        "BootNotification", {"reason": "ColdStart", "chargingStation": {"model": "X"}}
    )
    assert answer[2]["status"] == "Accepted"
    (booted,) = [e for e in events if type(e).__name__ == "ChargerBooted"]
    assert (booted.vendor, booted.model, booted.reason) == ("unknown", "X", "ColdStart")


def _tx(seq: int, offline: bool) -> dict[str, Any]:
    return {
        "eventType": "Started" if seq == 0 else "Updated",
        "timestamp": TS,
        "triggerReason": "CablePluggedIn" if seq == 0 else "MeterValuePeriodic",
        "seqNo": seq,
        "offline": offline,
        "transactionInfo": {"transactionId": "replay-1", "chargingState": "Charging"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [
            {
                "timestamp": TS,
                "sampledValue": [
                    {"value": 1000 + seq, "measurand": "Energy.Active.Import.Register"}
                ],
            }
        ],
    }


async def test_offline_queue_of_1500_is_answered_and_kept_in_order(
    make_server: Any, events: Events
) -> None:
    """The flood guard (here 10 a minute on a stopped clock) counts live traffic only."""
    server: CsmsServer = await make_server(make_config(max_messages_per_minute=10))
    c = await _open(server)
    try:
        frames = [json.dumps([2, f"q{i}", "TransactionEvent", _tx(i, True)]) for i in range(1500)]
        waiting = [asyncio.ensure_future(c.call_raw(f"q{i}", f)) for i, f in enumerate(frames)]
        answers = await asyncio.gather(*waiting)
        assert [a[0] for a in answers] == [3] * 1500
        seqs = [t.seq_no for t in events.of(TransactionChanged)]
        assert seqs == list(range(1500))
        registers = [s.energy_import_wh for s in events.of(MeterSample)]
        assert registers == [1000.0 + i for i in range(1500)]
        # Live traffic still meets the guard: 10 pass, then GenericError, and a boot is Pending.
        live = [await c.call("Heartbeat", {}) for _ in range(11)]
        assert [a[0] for a in live] == [3] * 10 + [4]
        boot = await c.call("BootNotification", BOOT)
        assert boot[0] == 3 and boot[2]["status"] == "Pending"
    finally:
        await c.close()
    # The penalty ended with that session: a new connection is served at once.
    again = await _open(server)
    try:
        assert (await again.call("Heartbeat", {}))[0] == 3
    finally:
        await again.close()


# ------------------------------------------------------------------------ profiles


async def test_w_refused_for_its_unit_is_sent_again_in_amps(
    server: CsmsServer, charger: RawCharger, events: Events, told: Told
) -> None:
    def answer(p: dict[str, Any]) -> dict[str, Any]:
        unit = p["chargingProfile"]["chargingSchedule"][0]["chargingRateUnit"]
        if unit == "W":
            return {
                "status": "Rejected",
                "statusInfo": {"reasonCode": "ChargingScheduleChargingRateUnitUnsupported"},
            }
        return {"status": "Accepted"}

    charger.answers["SetChargingProfile"] = answer
    result = await server.commands.set_charging_profile(spec(-6900.0, 11000.0))
    assert result.ok
    first = await charger.next_call("SetChargingProfile")
    second = await charger.next_call("SetChargingProfile")
    assert first[3]["chargingProfile"]["chargingSchedule"][0]["chargingRateUnit"] == "W"
    periods = second[3]["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
    assert periods == [
        {"startPeriod": 0, "limit": -10, "numberPhases": 3},
        {"startPeriod": 300, "limit": 15.9, "numberPhases": 3},
    ]
    assert caps(events, "rate_unit") == ["A"]
    assert caps(events, "min_power_w") == [4140.0]
    # The command layer reports; dispatch alone learns about discharging (never from a unit).
    assert caps(events, "discharge") == []
    # The over-long reasonCode (20 characters in 2.0.1) was read leniently, and said so once.
    assert [n.kind for n in told] == ["charger_lenient_input", "charger_takes_amps"]
    # Learnt: the next profile goes in A straight away.
    await server.commands.set_charging_profile(spec(3000.0))
    third = await charger.next_call("SetChargingProfile")
    assert third[3]["chargingProfile"]["chargingSchedule"][0]["chargingRateUnit"] == "A"


async def test_not_supported_means_smart_charging_off_and_no_more_profiles(
    server: CsmsServer, charger: RawCharger, events: Events, told: Told
) -> None:
    charger.answers["SetChargingProfile"] = [4, "NotSupported", "no smart charging", {}]
    first = await server.commands.set_charging_profile(spec(3000.0))
    assert first.status == CommandStatus.NOT_IMPLEMENTED
    assert caps(events, "smart_charging_enabled") == [False]
    assert [n.kind for n in told] == ["charger_smart_charging_off"]
    assert "Turn on smart charging" in told[0].message
    for _ in range(3):
        again = await server.commands.set_charging_profile(spec(3000.0))
        assert again.status == CommandStatus.ERROR
    sent = [h.action for h in server.commands.history("garage")]
    assert sent.count("SetChargingProfile") == 1  # no profile spam
    assert len(told) == 1


async def test_tx_default_on_evse0_when_the_charger_wants_it(
    server: CsmsServer, charger: RawCharger, events: Events
) -> None:
    charger.answers["SetChargingProfile"] = lambda p: (
        {"status": "Accepted"}
        if p["evseId"] == 0
        else {"status": "Rejected", "statusInfo": {"reasonCode": "InvalidEvse"}}
    )
    assert (await server.commands.set_charging_profile(spec(3000.0))).ok
    targets = [(await charger.next_call("SetChargingProfile"))[3]["evseId"] for _ in range(2)]
    assert targets == [1, 0]
    assert caps(events, "tx_default_evse") == [0]


async def test_duplicate_default_goes_one_stack_level_up(
    server: CsmsServer, charger: RawCharger, events: Events
) -> None:
    charger.answers["SetChargingProfile"] = lambda p: (
        {"status": "Accepted"}
        if p["chargingProfile"]["stackLevel"] > 0
        else {"status": "Rejected", "statusInfo": {"reasonCode": "DuplicateProfile"}}
    )
    assert (await server.commands.set_charging_profile(spec(3000.0))).ok
    levels = [
        (await charger.next_call("SetChargingProfile"))[3]["chargingProfile"]["stackLevel"]
        for _ in range(2)
    ]
    assert levels == [0, 1]
    assert caps(events, "stack_level") == [1]


# ------------------------------------------------------------------------ after boot


async def test_boot_reads_variables_and_smart_charging_off_is_told_once(
    charger: RawCharger, events: Events, told: Told
) -> None:
    values = {"Enabled": "false", "RateUnit": "A", "ProfileStackLevel": "3", "SupplyPhases": "1"}
    charger.answers["GetVariables"] = lambda p: {
        "getVariableResult": [
            {
                "attributeStatus": "Accepted",
                "component": d["component"],
                "variable": d["variable"],
                "attributeValue": values[d["variable"]["name"]],
            }
            for d in p["getVariableData"]
        ]
    }
    await charger.call("BootNotification", BOOT)
    asked = await charger.next_call("GetVariables")
    assert {d["variable"]["name"] for d in asked[3]["getVariableData"]} == set(values)
    await charger.next_call("GetBaseReport")  # after the variables were read and recorded
    assert caps(events, "smart_charging_enabled") == [False]
    assert caps(events, "rate_unit") == ["A"] and caps(events, "phases") == [1]
    assert caps(events, "min_power_w") == [1380.0]
    assert [n.kind for n in told] == ["charger_smart_charging_off", "charger_takes_amps"]


async def test_foreign_profiles_are_cleared_or_stayed_above(
    server: CsmsServer, charger: RawCharger, events: Events, told: Told
) -> None:
    def profiles(p: dict[str, Any]) -> dict[str, Any]:
        rid = p["requestId"]

        async def report() -> None:
            for evse, source, prof, last in (
                (
                    0,
                    "CSO",
                    {"id": 7, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile"},
                    False,
                ),
                (
                    1,
                    "EMS",
                    {"id": 30, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile"},
                    True,
                ),
            ):
                prof |= {
                    "chargingProfileKind": "Absolute",
                    "chargingSchedule": [
                        {
                            "id": 1,
                            "startSchedule": TS,
                            "chargingRateUnit": "A",
                            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 0}],
                        }
                    ],
                }
                body = {
                    "requestId": rid,
                    "chargingLimitSource": source,
                    "evseId": evse,
                    "chargingProfile": [prof],
                    "tbc": not last,
                }
                assert (await charger.call("ReportChargingProfiles", body))[0] == 3

        asyncio.get_running_loop().create_task(report())
        return {"status": "Accepted"}

    charger.answers["GetChargingProfiles"] = profiles
    await charger.call("BootNotification", BOOT)
    cleared = await charger.next_call("ClearChargingProfile")
    assert cleared[3] == {"chargingProfileId": 7}
    await told.kind("charger_foreign_profiles")
    assert caps(events, "stack_level") == [3]  # above the EMS profile it may not clear
    (kept,) = caps(events, "foreign_profiles")
    assert kept == ["TxDefaultProfile id 30 on EVSE 1 at stack level 2 (source EMS)"]
    assert [n.kind for n in told] == ["charger_foreign_profiles"]
    assert "stack level 3" in told[0].message
    await server.commands.set_charging_profile(spec(3000.0))
    sent = await charger.next_call("SetChargingProfile")
    assert sent[3]["chargingProfile"]["stackLevel"] == 3


async def test_refused_measurands_fall_back_to_the_supported_subset(
    charger: RawCharger, events: Events, told: Told
) -> None:
    def setvars(p: dict[str, Any]) -> dict[str, Any]:
        def status(d: dict[str, Any]) -> str:
            value = d["attributeValue"]
            if d["variable"]["name"] == "TxUpdatedMeasurands" and "SoC" in value:
                return "Rejected"
            return "Accepted"

        return {
            "setVariableResult": [
                {
                    "attributeStatus": status(d),
                    "component": d["component"],
                    "variable": d["variable"],
                }
                for d in p["setVariableData"]
            ]
        }

    def report(p: dict[str, Any]) -> dict[str, Any]:
        entry = {
            "component": {"name": "SampledDataCtrlr"},
            "variable": {"name": "TxUpdatedMeasurands"},
            "variableAttribute": [{"type": "Actual", "value": "Power.Active.Import"}],
            "variableCharacteristics": {
                "dataType": "MemberList",
                "supportsMonitoring": False,
                "valuesList": "Power.Active.Import,Power.Active.Export,Energy.Active.Import.Register,Voltage",
            },
        }
        body = {"requestId": p["requestId"], "generatedAt": TS, "seqNo": 0, "reportData": [entry]}
        asyncio.get_running_loop().create_task(charger.call("NotifyReport", body))
        return {"status": "Accepted"}

    charger.answers["SetVariables"] = setvars
    charger.answers["GetBaseReport"] = report
    await charger.call("BootNotification", BOOT)
    await charger.next_call("SetVariables")
    retry = await charger.next_call("SetVariables")
    (item,) = retry[3]["setVariableData"]
    assert item["attributeValue"] == (
        "Energy.Active.Import.Register,Power.Active.Import,Power.Active.Export,Voltage"
    )
    await told.kind("charger_measurands_missing")
    assert told[0].kind == "charger_measurands_missing"
    assert "SoC" in told[0].message and "soc_topic" in told[0].message
    assert caps(events, "measurands_missing") == [
        ["Energy.Active.Export.Register", "SoC", "Current.Import"]
    ]


# ------------------------------------------------------------------------ live checks


async def test_skewed_clock_is_told_once_with_the_fix(
    server: CsmsServer, charger: RawCharger, events: Events, told: Told
) -> None:
    status = {"connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    for _ in range(5):
        ahead = {**status, "timestamp": "2025-01-15T13:00:00"}  # local time, UTC+1, no offset
        assert (await charger.call("StatusNotification", ahead))[0] == 3
    assert caps(events, "clock_skew_s") == [3600.0]
    assert [n.kind for n in told] == ["charger_clock_skew"]
    assert "without a UTC offset" in told[0].message and "UTC+1" in told[0].message
    # The readings are kept as sent (the store orders by receipt time).
    assert len([e for e in events if type(e).__name__ == "ConnectorStatusChanged"]) == 5


async def test_disobedient_charger_is_found_from_the_meter(
    server: CsmsServer,
    charger: RawCharger,
    clock: ManualClock,
    events: Events,
    told: Told,
) -> None:
    assert (await server.commands.set_charging_profile(spec(-5000.0, -5000.0, -5000.0))).ok

    def reading(power: float) -> dict[str, Any]:
        iso = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "evseId": 1,
            "meterValue": [
                {
                    "timestamp": iso,
                    "sampledValue": [{"value": power, "measurand": "Power.Active.Import"}],
                }
            ],
        }

    await clock.advance(10)
    await charger.call("MeterValues", reading(11000.0))  # within the grace time: not counted
    for _ in range(3):
        await clock.advance(60)
        await charger.call("MeterValues", reading(11000.0))
    assert caps(events, "obeys_profiles") == [False]
    assert [n.kind for n in told] == ["charger_ignores_profiles"]
    assert "-5.0 kW" in told[0].message and "+11.0" in told[0].message


async def test_external_limit_caps_and_follows_its_schedule(
    server: CsmsServer,
    charger: RawCharger,
    clock: ManualClock,
    events: Events,
    told: Told,
) -> None:
    limit = {
        "evseId": 1,
        "chargingLimit": {"chargingLimitSource": "EMS", "isGridCritical": False},
        "chargingSchedule": [
            {
                "id": 1,
                "startSchedule": TS,
                "duration": 3600,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 10},
                    {"startPeriod": 600, "limit": 16},
                ],
            }
        ],
    }
    assert (await charger.call("NotifyChargingLimit", limit))[2] == {}
    assert caps(events, "external_limit_w") == [6900.0]
    assert told[0].kind == "charger_external_limit" and "6.9 kW" in told[0].message
    await clock.advance(600)
    second = await told.kind("charger_external_limit", 2)
    assert "11.0 kW" in second.message
    assert caps(events, "external_limit_w") == [6900.0, 11040.0]
    cleared = {"chargingLimitSource": "EMS", "evseId": 1}
    assert (await charger.call("ClearedChargingLimit", cleared))[2] == {}
    assert caps(events, "external_limit_w") == [6900.0, 11040.0, None]
