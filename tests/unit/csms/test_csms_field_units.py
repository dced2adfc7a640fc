"""The pure parts of adapting to field firmware: W <-> A, leniency, skew, obedience, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from v2g_gateway.csms.clock_skew import SkewWatch, describe, has_offset
from v2g_gateway.csms.electrical import Electrical
from v2g_gateway.csms.external_limit import cap_in_force
from v2g_gateway.csms.frames import Call, FrameError
from v2g_gateway.csms.installed import Installed, installed_from, stack_floor, to_clear
from v2g_gateway.csms.leniency import accept, v2x_powers
from v2g_gateway.csms.obedience import ObedienceWatch, limit_in_force, violates
from v2g_gateway.csms.profile_sender import refusal
from v2g_gateway.csms.profiles import ocpp_profile
from v2g_gateway.model import (
    ChargingProfileSpec,
    CommandResult,
    CommandStatus,
    ProfilePeriod,
    ProfilePurpose,
)

T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
AMPS = Electrical(rate_unit="A", phases=3, voltage_v=230.0, min_current_a=6.0)


def spec(*limits: float, purpose: ProfilePurpose = ProfilePurpose.TX_DEFAULT_PROFILE) -> Any:
    return ChargingProfileSpec(
        charger_id="c",
        evse_id=1,
        profile_id=1001,
        purpose=purpose,
        start=T0,
        valid_to=T0 + timedelta(minutes=15),
        periods=tuple(ProfilePeriod(i * 300, w) for i, w in enumerate(limits)),
    )


# ------------------------------------------------------------------------ W <-> A


@pytest.mark.parametrize(
    ("watts", "amps"),
    [
        (6900.0, 10.0),  # 6900 / (230 x 3)
        (-6900.0, -10.0),  # discharge keeps its sign
        (11000.0, 15.9),  # 15.94 rounded toward zero: never more power than gated
        (-11000.0, -15.9),
        (4140.0, 6.0),  # exactly the minimum current
        (4139.0, 0.0),  # just below it: 0, not a charger rounding up to 6 A
        (-4139.0, 0.0),
        (0.0, 0.0),
    ],
)
def test_watts_become_per_phase_amps_rounded_toward_zero(watts: float, amps: float) -> None:
    assert AMPS.amps(watts) == amps
    assert abs(AMPS.effective_w(watts)) <= abs(watts)


def test_single_phase_and_minimum_power() -> None:
    one = Electrical(rate_unit="A", phases=1, voltage_v=230.0, min_current_a=6.0)
    assert one.amps(2300.0) == 10.0
    assert one.min_power_w == 1380.0
    assert AMPS.min_power_w == 4140.0


def test_profile_in_amps_has_number_phases_and_unit() -> None:
    profile = ocpp_profile(spec(-6900.0, 3000.0, 0.0), AMPS)
    (sched,) = profile["chargingSchedule"]
    assert sched["chargingRateUnit"] == "A"
    assert sched["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": -10, "numberPhases": 3},
        {"startPeriod": 300, "limit": 0, "numberPhases": 3},  # 4.3 A < 6 A
        {"startPeriod": 600, "limit": 0, "numberPhases": 3},
    ]


def test_profile_in_watts_is_unchanged_and_stack_level_only_lifts() -> None:
    profile = ocpp_profile(spec(-7400.5), stack_level=3)
    (sched,) = profile["chargingSchedule"]
    assert sched["chargingRateUnit"] == "W"
    assert sched["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": -7400.5}]
    assert profile["stackLevel"] == 3
    assert ocpp_profile(spec(0.0), stack_level=None)["stackLevel"] == 0


# ------------------------------------------------------------------------ leniency


def _call(action: str, payload: dict[str, Any]) -> Call:
    return Call("u1", action, payload)


def _mv(**sv: Any) -> dict[str, Any]:
    return {
        "evseId": 1,
        "meterValue": [{"timestamp": "2025-01-15T12:00:00Z", "sampledValue": [sv]}],
    }


def test_numbers_as_strings_are_read_and_noted_once_per_shape() -> None:
    payload = {
        "evseId": "1",
        "meterValue": [
            {
                "timestamp": "2025-01-15T12:00:00Z",
                "sampledValue": [
                    {"value": "55", "measurand": "SoC"},
                    {"value": "1234.5", "measurand": "Energy.Active.Import.Register"},
                ],
            }
        ],
    }
    got = accept(_call("MeterValues", payload), strict=False)
    assert got.payload["evseId"] == 1
    assert [v["value"] for v in got.payload["meterValue"][0]["sampledValue"]] == [55, 1234.5]
    assert {k for k, _ in got.quirks} == {"number as string"}
    assert payload["evseId"] == "1"  # the caller's frame is not changed


def test_vendor_measurand_and_unknown_property_are_kept_aside() -> None:
    got = accept(
        _call("MeterValues", _mv(value=3.0, measurand="Vendor.Temperature", vendorX=1)), False
    )
    (sv,) = got.payload["meterValue"][0]["sampledValue"]
    assert sv == {"value": 3.0, "measurand": "Vendor.Temperature"}
    assert sorted(k for k, _ in got.quirks) == ["unknown property", "vendor measurand"]


def test_out_of_enum_reasons_and_21_fields() -> None:
    tx = {
        "eventType": "Ended",
        "timestamp": "2025-01-15T12:00:00Z",
        "triggerReason": "VendorStop",
        "seqNo": 3,
        "transactionInfo": {
            "transactionId": 42,
            "stoppedReason": "CableCut",
            "chargingState": "Discharging",
        },
    }
    got = accept(_call("TransactionEvent", tx), False)
    info = got.payload["transactionInfo"]
    assert got.payload["triggerReason"] == "VendorStop"
    assert info == {"transactionId": "42", "stoppedReason": "CableCut"}
    kinds = {k for k, _ in got.quirks}
    assert kinds == {"out-of-enum reason", "number for a string", "unknown charging state"}
    needs = {
        "evseId": 1,
        "chargingNeeds": {
            "requestedEnergyTransfer": "DC_BPT",
            "v2xChargingParameters": {"maxDischargePower": 11000, "maxChargePower": 22000},
            "controlMode": "ScheduledControl",
        },
    }
    got = accept(_call("NotifyEVChargingNeeds", needs), False)
    cn = got.payload["chargingNeeds"]
    assert cn["requestedEnergyTransfer"] == "DC_BPT"
    assert "controlMode" not in cn
    assert v2x_powers(cn["v2xChargingParameters"]) == {
        "maxChargePower": 22000.0,
        "maxDischargePower": 11000.0,
    }
    assert {k for k, _ in got.quirks} == {"OCPP 2.1 value", "OCPP 2.1 field"}


def test_v2x_powers_reads_only_plain_numbers() -> None:
    assert v2x_powers({"maxDischargePower": "11000", "maxChargePower": -5}) == {}
    assert v2x_powers(None) == {}


@pytest.mark.parametrize(
    "payload",
    [
        _mv(value="lots", measurand="SoC"),  # a string that is no number stays an error
        {"evseId": 1, "meterValue": [{"timestamp": 1736942400, "sampledValue": [{"value": 1}]}]},
        {"evseId": -1, "meterValue": [{"timestamp": "2025-01-15T12:00:00Z", "sampledValue": []}]},
    ],
)
def test_what_leniency_does_not_cover_is_still_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(FrameError):
        got = accept(_call("MeterValues", payload), False)
        # A timestamp as a number becomes a string, then fails where it is parsed.
        from v2g_gateway.csms.meter import sample_from

        sample_from("c", 1, got.payload["meterValue"][0])


def test_strict_refuses_what_lenient_accepts() -> None:
    with pytest.raises(FrameError) as exc:
        accept(_call("MeterValues", _mv(value="55", measurand="SoC")), strict=True)
    assert exc.value.code == "TypeConstraintViolation"


def test_boot_with_missing_and_overlong_fields_is_read() -> None:
    boot = {
        "reason": "CosmicRay",
        "chargingStation": {"model": "M" * 30, "firmwareVersion": "x" * 80},
    }
    got = accept(_call("BootNotification", boot), False)
    cs = got.payload["chargingStation"]
    assert cs["vendorName"] == "unknown" and cs["model"] == "M" * 20
    assert len(cs["firmwareVersion"]) == 50
    assert got.payload["reason"] == "CosmicRay"
    assert {k for k, _ in got.quirks} == {
        "missing boot field",
        "string too long",
        "out-of-enum reason",
    }


def test_16_connector_status_is_mapped() -> None:
    status = {
        "timestamp": "2025-01-15T12:00:00Z",
        "connectorStatus": "Charging",
        "evseId": 1,
        "connectorId": 1,
    }
    got = accept(_call("StatusNotification", status), False)
    assert got.payload["connectorStatus"] == "Occupied"


# ------------------------------------------------------------------------ clock skew


@pytest.mark.parametrize(
    ("raw", "offset"),
    [
        ("2025-01-15T12:00:00Z", True),
        ("2025-01-15T12:00:00.123+01:00", True),
        ("2025-01-15T12:00:00+0100", True),
        ("2025-01-15T12:00:00", False),
        ("2025-01-15T12:00:00.5", False),
    ],
)
def test_has_offset(raw: str, offset: bool) -> None:
    assert has_offset(raw) is offset


def test_skew_is_reported_after_three_readings_and_cleared_after_three() -> None:
    watch = SkewWatch()
    now = T0
    ahead = now + timedelta(hours=1)
    assert watch.observe("x", now + timedelta(seconds=299), now) is None  # within tolerance
    assert watch.observe("2025-01-15T13:00:00", ahead, now) is None
    assert watch.observe("2025-01-15T13:00:00", ahead, now) is None
    report = watch.observe("2025-01-15T13:00:00", ahead, now)
    assert report is not None and report.skew_s == 3600.0 and report.offsetless
    assert "UTC+1:00" in describe("garage", report) and "TimeSource" in describe("garage", report)
    assert watch.observe("2025-01-15T13:00:00", ahead, now) is None  # told once
    for _ in range(2):
        assert watch.observe("2025-01-15T12:00:00Z", now, now) is None
    back = watch.observe("2025-01-15T12:00:00Z", now, now)
    assert back is not None and back.skew_s == 0.0


def test_one_outlier_does_not_count() -> None:
    watch = SkewWatch()
    late = T0 - timedelta(minutes=10)
    for _ in range(5):
        assert watch.observe("x", late, T0) is None
        assert watch.observe("x", T0, T0) is None


# ------------------------------------------------------------------------ obedience


@pytest.mark.parametrize(
    ("limit", "power", "bad"),
    [
        (5000.0, 5000.0, False),
        (5000.0, 1000.0, False),  # the car wants less: not held against the charger
        (5000.0, 5600.0, True),  # beyond 10 %
        (5000.0, 5499.0, False),
        (0.0, 299.0, False),  # within the absolute tolerance
        (0.0, 400.0, True),
        (0.0, -400.0, True),  # discharging when not asked to
        (-5000.0, -5000.0, False),
        (-5000.0, -2000.0, False),  # discharging less than allowed
        (-5000.0, -5600.0, True),  # harder than allowed
        (-5000.0, 400.0, True),  # charging when asked to discharge
    ],
)
def test_violates(limit: float, power: float, bad: bool) -> None:
    assert violates(limit, power) is bad


def test_three_bad_readings_make_a_verdict_and_five_good_undo_it() -> None:
    watch = ObedienceWatch()
    assert watch.observe(-5000.0, 11000.0) is None
    assert watch.observe(-5000.0, 11000.0) is None
    verdict = watch.observe(-5000.0, 11000.0)
    assert verdict is not None and verdict.obeys is False and verdict.powers_w == [11000.0] * 3
    assert watch.observe(-5000.0, 11000.0) is None  # said once
    for _ in range(4):
        assert watch.observe(-5000.0, -5000.0) is None
    again = watch.observe(-5000.0, -5000.0)
    assert again is not None and again.obeys is True


def test_a_good_reading_breaks_a_bad_run() -> None:
    w = ObedienceWatch()
    w.observe(0.0, 7000.0)
    w.observe(0.0, 7000.0)
    w.observe(0.0, 0.0)
    assert w.observe(0.0, 7000.0) is None and w.obeys is None


def test_limit_in_force_follows_periods_and_acceptance() -> None:
    s = spec(-5000.0, 2000.0)
    accepted = T0 + timedelta(seconds=10)
    assert limit_in_force(s, accepted, T0 + timedelta(seconds=60), Electrical()) == (
        -5000.0,
        accepted,
    )
    assert limit_in_force(s, accepted, T0 + timedelta(seconds=400), AMPS) == (
        0.0,  # 2 kW is below 6 A on three phases: the charger was sent 0
        T0 + timedelta(seconds=300),
    )
    assert limit_in_force(s, accepted, T0 + timedelta(minutes=15), Electrical()) is None


# ------------------------------------------------------------------------ external limits


def test_external_cap_in_amps_with_periods() -> None:
    sched = {
        "id": 1,
        "chargingRateUnit": "A",
        "startSchedule": "2025-01-15T12:00:00Z",
        "duration": 3600,
        "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 16},
            {"startPeriod": 600, "limit": 10, "numberPhases": 1},
        ],
    }
    cap, nxt = cap_in_force([(sched, T0)], T0 + timedelta(seconds=5), AMPS)
    assert cap == 16 * 230 * 3 and nxt == T0 + timedelta(seconds=600)
    cap, nxt = cap_in_force([(sched, T0)], T0 + timedelta(seconds=600), AMPS)
    assert cap == 10 * 230 and nxt == T0 + timedelta(hours=1)
    assert cap_in_force([(sched, T0)], T0 + timedelta(hours=1), AMPS) == (None, None)


def test_lowest_of_several_caps_and_relative_start() -> None:
    w = {
        "id": 1,
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 4000}],
    }
    low = {
        "id": 2,
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 2500}],
    }
    assert cap_in_force([(w, T0), (low, T0)], T0, Electrical()) == (2500.0, None)


# ------------------------------------------------------------------------ installed profiles


def _report(evse: int, source: str, *profiles: tuple[int, str, int]) -> dict[str, Any]:
    return {
        "requestId": 7,
        "evseId": evse,
        "chargingLimitSource": source,
        "chargingProfile": [
            {"id": i, "chargingProfilePurpose": purpose, "stackLevel": level}
            for i, purpose, level in profiles
        ],
        "tbc": False,
    }


def test_foreign_profiles_cleared_ours_and_station_limits_left() -> None:
    reports = [
        _report(0, "CSO", (7, "TxDefaultProfile", 0), (9, "ChargingStationMaxProfile", 0)),
        _report(1, "CSO", (1001, "TxDefaultProfile", 0), (12, "TxProfile", 2)),
        _report(1, "EMS", (30, "TxDefaultProfile", 4)),
        {**_report(1, "CSO", (99, "TxProfile", 9)), "requestId": 6},  # another request
    ]
    found = installed_from(reports, 7)
    assert sorted(p.profile_id for p in found) == [7, 9, 12, 30, 1001]
    assert [p.profile_id for p in to_clear(found)] == [7, 12]
    ems = [p for p in found if p.source == "EMS"]
    assert stack_floor(ems) == 5
    assert stack_floor([Installed(1001, 1, "TxDefaultProfile", 8, "CSO")]) == 0  # ours


# ------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("result", "why"),
    [
        (
            CommandResult(
                CommandStatus.REJECTED,
                "Rejected: UnsupportedParam (ChargingScheduleChargingRateUnitUnsupported)",
                {
                    "status": "Rejected",
                    "statusInfo": {
                        "reasonCode": "UnsupportedParam",
                        "additionalInfo": "ChargingScheduleChargingRateUnitUnsupported",
                    },
                },
            ),
            "unit",
        ),
        (
            CommandResult(
                CommandStatus.ERROR, "CALLERROR PropertyConstraintViolation: only A units"
            ),
            "unit",
        ),
        (
            CommandResult(
                CommandStatus.REJECTED,
                "Rejected: DuplicateTxDefaultProfileFound",
                {"statusInfo": {"reasonCode": "DuplicateTxDefaultProfileFound"}},
            ),
            "duplicate",
        ),
        (CommandResult(CommandStatus.REJECTED, "Rejected: UnknownEvse"), "evse"),
        (
            CommandResult(CommandStatus.NOT_IMPLEMENTED, "CALLERROR NotSupported: no"),
            "not_supported",
        ),
        (CommandResult(CommandStatus.REJECTED, "Rejected: NoDischarge (cannot discharge)"), None),
        (CommandResult(CommandStatus.REJECTED, "Rejected: TxNotFound"), None),
        (CommandResult(CommandStatus.TIMEOUT, "no answer within 30 s"), None),
        (CommandResult(CommandStatus.ACCEPTED), None),
    ],
)
def test_refusal_kinds(result: CommandResult, why: str | None) -> None:
    assert refusal(result) == why
