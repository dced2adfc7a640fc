"""Pure parts of the MQTT bridge: payload parsing, plan summaries, topics, backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from v2g_gateway.config import parse_config
from v2g_gateway.mqtt.commands import CommandError, parse_json_object, plain_value
from v2g_gateway.mqtt.connection import Backoff
from v2g_gateway.mqtt.payloads import minutes_to_target, next_action
from v2g_gateway.mqtt.soc import VehicleReport, parse_report, parse_soc
from v2g_gateway.mqtt.topics import Topics

T0 = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "soc"),
    [
        (b"55", 55.0),
        (b" 12.5 ", 12.5),
        (b'{"soc_percent": 80}', 80.0),
        (b"0", 0.0),
        (b"100", 100.0),
    ],
)
def test_parse_soc_accepts_numbers_and_json(payload: bytes, soc: float) -> None:
    assert parse_soc(payload) == soc


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"abc", "expected a number"),
        (b"\xff", "expected a number"),
        (b"-1", "outside 0..100"),
        (b"100.5", "outside 0..100"),
        (b"NaN", "must be finite"),
        (b'{"range_km": -3}', "must not be negative"),
        (b'{"soc_percent": null}', "must be a number"),
        (b'{"soc": 1}', "without 'soc_percent'"),
        (b'{"soc_percent": "5"}', "must be a number"),
        (b"[5]", "must be a number"),
        (b"false", "must be a number"),
    ],
)
def test_parse_soc_names_what_is_wrong(payload: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_soc(payload)


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (b"ON", True),
        (b"off", False),
        (b"true", True),
        (b"", None),
        (b"None", None),
        (b"45", 45),
        (b"45.5", 45.5),
        (b"07:30", "07:30"),
        (b"charge now", "charge now"),
        (b'{"a": 1}', {"a": 1}),
    ],
)
def test_plain_value(payload: bytes, value: object) -> None:
    assert plain_value(payload) == value


def test_json_object_errors() -> None:
    with pytest.raises(CommandError, match="not valid JSON"):
        parse_json_object(b"{")
    with pytest.raises(CommandError, match="must be a JSON object, got list"):
        parse_json_object(b"[]")


def _slot(h: int, charge: float, discharge: float, soc_end: float) -> dict[str, object]:
    return {
        "start": (T0 + timedelta(hours=h)).isoformat(),
        "end": (T0 + timedelta(hours=h + 1)).isoformat(),
        "charge_kw": charge,
        "discharge_kw": discharge,
        "soc_end_kwh": soc_end,
        "reason": f"r{h}",
    }


def test_next_action_skips_past_and_idle_slots() -> None:
    plan = {"slots": [_slot(0, 5, 0, 10), _slot(1, 0.01, 0, 10), _slot(2, 0, 3, 7)]}
    now = T0 + timedelta(minutes=90)
    assert next_action(plan, now) == {
        "action": "discharge",
        "at": (T0 + timedelta(hours=2)).isoformat(),
        "power_w": -3000.0,
        "reason": "r2",
    }
    assert (
        next_action(plan, T0 + timedelta(minutes=30))["at"]
        == (T0 + timedelta(minutes=30)).isoformat()
    )
    assert next_action(None, T0)["action"] == "idle"
    assert next_action({"slots": [{"start": "bad"}]}, T0)["action"] == "idle"


def test_minutes_to_target() -> None:
    plan = {"slots": [_slot(0, 5, 0, 20), _slot(1, 5, 0, 30), _slot(2, 5, 0, 48)]}
    assert minutes_to_target(plan, 20.0, 80.0, 60.0, T0) == 180.0
    assert minutes_to_target(plan, 20.0, 50.0, 60.0, T0) == 120.0
    assert minutes_to_target(plan, 90.0, 80.0, 60.0, T0) == 0.0
    assert minutes_to_target(plan, 20.0, 95.0, 60.0, T0) is None
    assert minutes_to_target(plan, None, 80.0, 60.0, T0) is None
    assert minutes_to_target(plan, 20.0, None, 60.0, T0) is None


def test_topics_keep_gateways_apart() -> None:
    a = Topics.from_config(
        parse_config({"gateway": {"id": "north"}, "mqtt": {"topic_prefix": "fleet/v2g/"}})
    )
    b = Topics.from_config(parse_config({"gateway": {"id": "south"}}))
    assert a.charger("g1") == "fleet/v2g/north/charger/g1"
    assert a.set_filter == "fleet/v2g/north/set/#"
    assert b.availability == "v2g/south/availability"
    assert b.vehicle_plan("car") == "v2g/south/plan/car"


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    b = Backoff(first_s=1.0, max_s=30.0)
    for failures, top in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (50, 30.0)):
        for _ in range(20):
            assert top / 2 <= b.delay(failures) <= top


def test_report_carries_odometer_and_range() -> None:
    assert parse_report(b'{"soc_percent": 60, "odometer_km": 12345, "range_km": 210.5}') == (
        VehicleReport(60.0, {"odometer_km": 12345.0, "range_km": 210.5})
    )
    assert parse_report(b'{"range_km": 200}') == VehicleReport(None, {"range_km": 200.0})
    with pytest.raises(ValueError, match="no soc_percent"):
        parse_soc(b'{"range_km": 200}')
