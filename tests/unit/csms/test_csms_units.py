"""Pure parts of csms: framing, meter units, auth helpers, rate limit, profiles, reports."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import parse_config
from v2g_gateway.csms.auth import Credentials, identity_from_path, parse_basic_auth
from v2g_gateway.csms.frames import Call, Error, FrameError, Result, parse_frame, validate_request
from v2g_gateway.csms.meter import sample_from
from v2g_gateway.csms.profiles import ocpp_profile
from v2g_gateway.csms.ratelimit import TokenBucket
from v2g_gateway.csms.reports import capabilities
from v2g_gateway.csms.transactions import TransactionTracker
from v2g_gateway.errors import ConfigError
from v2g_gateway.model import ChargingProfileSpec, ProfilePeriod, ProfilePurpose

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def test_parse_frames() -> None:
    assert parse_frame('[2,"a","Heartbeat",{}]') == Call("a", "Heartbeat", {})
    assert parse_frame('[3,"a",{"x":1}]') == Result("a", {"x": 1})
    assert parse_frame('[4,"a","GenericError","d",{}]') == Error("a", "GenericError", "d", {})


def test_parse_frame_wrong_type_keeps_id() -> None:
    with pytest.raises(FrameError) as info:
        parse_frame('[5,"abc","Heartbeat",{}]')
    assert (info.value.code, info.value.unique_id) == ("MessageTypeNotSupported", "abc")


def test_validate_request_codes() -> None:
    with pytest.raises(FrameError) as info:
        validate_request(Call("x", "Heartbeat", {"unexpected": 1}))
    assert info.value.code == "FormatViolation"
    with pytest.raises(FrameError) as info:
        validate_request(Call("x", "MeterValues", {"evseId": 1}))
    assert info.value.code == "OccurrenceConstraintViolation"
    assert "meterValue" in info.value.description


def mv(*values: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": "2025-03-01T09:00:00+01:00", "sampledValue": list(values)}


def test_meter_defaults_and_multipliers() -> None:
    s = sample_from("c", 1, mv({"value": 7.5, "unitOfMeasure": {"unit": "Wh", "multiplier": 3}}))
    assert s.energy_import_wh == 7500  # default measurand is Energy.Active.Import.Register
    assert s.at == T0


def test_meter_export_only_is_negative_power() -> None:
    s = sample_from(
        "c",
        1,
        mv({"value": 3.7, "measurand": "Power.Active.Export", "unitOfMeasure": {"unit": "kW"}}),
    )
    assert s.power_w == pytest.approx(-3700)


def test_meter_voltage_ignores_line_to_line_when_phases_given() -> None:
    s = sample_from(
        "c",
        1,
        mv(
            {"value": 400, "measurand": "Voltage", "phase": "L1-L2"},
            {"value": 229, "measurand": "Voltage", "phase": "L1-N"},
            {"value": 0, "measurand": "Voltage", "phase": "L2-N"},  # single-phase install
        ),
    )
    assert s.voltage_v == 229


def test_identity_from_path() -> None:
    assert identity_from_path("/ocpp/garage") == "garage"
    assert identity_from_path("/ocpp/garage/") == "garage"
    assert identity_from_path("/ocpp/a%3Ab?x=1") == "a:b"
    assert identity_from_path("/") is None


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_basic_auth_with_colon_in_identity() -> None:
    assert parse_basic_auth(_basic("a:b:pw:x"), "a:b") == ("a:b", "pw:x")
    assert parse_basic_auth(_basic("other:pw"), "a:b") == ("other", "pw")
    assert parse_basic_auth("Bearer xyz", "a") is None
    assert parse_basic_auth("Basic %%%", "a") is None


def test_credentials_hash_and_verify() -> None:
    cfg = parse_config({"chargers": [{"id": "g", "password": "p" * 20}]})
    creds = Credentials(cfg)
    assert creds.verify("g", "p" * 20)
    assert not creds.verify("g", "p" * 19)
    assert not creds.verify("nobody", "p" * 20)
    assert "p" * 20 not in repr(vars(creds))


def test_profile1_needs_a_password() -> None:
    cfg = parse_config({"chargers": [{"id": "g"}]})
    with pytest.raises(ConfigError, match=r"chargers\[0\]\.password"):
        Credentials(cfg)


async def test_token_bucket_refills_on_the_clock() -> None:
    clock = ManualClock(T0)
    bucket = TokenBucket(60, clock)
    assert [bucket.take() >= 0 for _ in range(61)] == [True] * 60 + [False]
    await clock.advance(2)
    assert bucket.take() >= 0


def spec(**kw: Any) -> ChargingProfileSpec:
    base: dict[str, Any] = {
        "charger_id": "c",
        "evse_id": 1,
        "profile_id": 1,
        "purpose": ProfilePurpose.TX_DEFAULT_PROFILE,
        "start": T0,
        "valid_to": T0 + timedelta(minutes=15),
        "periods": (ProfilePeriod(0, -3500.25),),
    }
    base.update(kw)
    return ChargingProfileSpec(**base)


def test_profile_is_bounded_and_absolute() -> None:
    p = ocpp_profile(spec())
    assert p["chargingProfileKind"] == "Absolute"
    assert p["validTo"] == "2025-03-01T08:15:00.000Z"
    assert p["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == -3500.2


@pytest.mark.parametrize(
    ("kw", "problem"),
    [
        ({"valid_to": T0}, "valid_to"),
        ({"periods": ()}, "period"),
        ({"periods": (ProfilePeriod(60, 0),)}, "offset 0"),
        ({"purpose": ProfilePurpose.TX_PROFILE}, "transaction_id"),
    ],
)
def test_profile_refuses_unsafe_specs(kw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ocpp_profile(spec(**kw))


def test_report_ignores_unrelated_entries() -> None:
    data = [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "Enabled"}}]
    assert list(capabilities(data)) == []


def test_tracker_forgets_old_transactions() -> None:
    t = TransactionTracker("c")
    for i in range(100):
        p = {"transactionInfo": {"transactionId": f"t{i}"}, "seqNo": 0}
        t.mark(p, 1)
    assert t.evse_of("t0") is None
    assert t.evse_of("t99") == 1


def test_tracker_memory_per_transaction_is_bounded() -> None:
    """A car plugged in for a week sends ~10,000 events; only the recent seqNos are kept."""
    t = TransactionTracker("c")

    def event(seq: int) -> dict[str, Any]:
        return {"transactionInfo": {"transactionId": "week"}, "seqNo": seq}

    for seq in range(10_000):
        t.mark(event(seq), 1)
    assert t.is_duplicate(event(9_999)) and t.is_duplicate(event(9_950))
    assert not t.is_duplicate(event(10_000))
    assert len(t._txs["week"].seen) == 64


@pytest.mark.parametrize(
    "value",
    [
        {"value": 1, "unitOfMeasure": {"multiplier": 400}},
        {"value": 1e307, "unitOfMeasure": {"unit": "kWh", "multiplier": 9}},
        {"value": 101, "measurand": "SoC"},
        {"value": -1, "measurand": "SoC"},
    ],
)
def test_meter_refuses_values_out_of_range(value: dict[str, Any]) -> None:
    with pytest.raises(FrameError) as info:
        sample_from("c", 1, mv(value))
    assert info.value.code == "PropertyConstraintViolation"


@pytest.mark.parametrize(
    "ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1969-12-31T23:59:59Z"]
)
def test_timestamps_out_of_range(ts: str) -> None:
    from v2g_gateway.csms.timestamps import parse_ts

    with pytest.raises(FrameError, match="out of range"):
        parse_ts(ts)


def test_integers_beyond_32_bits_are_refused() -> None:
    payload = {
        "timestamp": "2025-01-01T00:00:00Z",
        "connectorStatus": "Available",
        "evseId": 2**63,
        "connectorId": 1,
    }
    with pytest.raises(FrameError) as info:
        validate_request(Call("x", "StatusNotification", payload))
    assert info.value.code == "PropertyConstraintViolation"
    assert "evseId" in info.value.description
