"""Grid-meter and home-power payloads: the dialects of real meters, thresholds and bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from v2g_gateway.config import OutageSection
from v2g_gateway.grid.payload import (
    GridPayloadError,
    parse_grid,
    parse_home_power,
    path_parts,
    read_path,
)

SHELLY_EM_GEN2 = {
    "em:0": {"a_voltage": 231.4, "b_voltage": 229.8, "c_voltage": 230.2, "a_freq": 50.0}
}
SHELLY_EM_GEN1 = {"emeters": [{"power": 512.3, "voltage": 232.1}, {"power": 0, "voltage": 232.0}]}


def cfg(**kw: Any) -> OutageSection:
    return OutageSection(**kw)


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("voltage", ["voltage"]),
        ("em:0.a_voltage", ["em:0", "a_voltage"]),
        ("emeters.0.voltage", ["emeters", "0", "voltage"]),
        ("emeters[1].voltage", ["emeters", "1", "voltage"]),
        ("a[0][2]", ["a", "0", "2"]),
    ],
)
def test_path_parts(path: str, parts: list[str]) -> None:
    assert path_parts(path) == parts


def test_read_path_through_dicts_and_lists() -> None:
    assert read_path(SHELLY_EM_GEN2, "em:0.a_voltage") == 231.4
    assert read_path(SHELLY_EM_GEN1, "emeters.1.voltage") == 232.0
    assert read_path(SHELLY_EM_GEN1, "emeters[0].power") == 512.3


@pytest.mark.parametrize("path", ["em:1.a_voltage", "emeters.5.voltage", "emeters.x.voltage", ""])
def test_read_path_names_the_missing_step(path: str) -> None:
    with pytest.raises(GridPayloadError, match=r"JSON path|empty"):
        read_path({**SHELLY_EM_GEN2, **SHELLY_EM_GEN1}, path)


@pytest.mark.parametrize(
    ("payload", "verdict"),
    [
        (b"offline", "outage"),
        (b"ONLINE", "normal"),
        (b" offline\n", "outage"),
        (b'"online"', "normal"),
    ],
)
def test_state_words(payload: bytes, verdict: str) -> None:
    r = parse_grid(cfg(), payload)
    assert r.verdict == verdict
    assert not r.measured  # a state topic: silence is normal for it


@pytest.mark.parametrize(
    ("true_means", "payload", "verdict"),
    [
        ("normal", b"true", "normal"),
        ("normal", b"false", "outage"),
        ("normal", b"OFF", "outage"),
        ("outage", b"true", "outage"),
        ("outage", b"0", "normal"),
    ],
)
def test_booleans_follow_true_means(true_means: Any, payload: bytes, verdict: str) -> None:
    # "1"/"0" are booleans only when no voltage threshold makes them numbers.
    assert parse_grid(cfg(true_means=true_means), payload).verdict == verdict


def test_bare_voltage_with_threshold_and_hysteresis() -> None:
    c = cfg(voltage_below_v=180, voltage_hysteresis_v=10)
    assert parse_grid(c, b"0").verdict == "outage"
    assert parse_grid(c, b"179.9").verdict == "outage"
    assert parse_grid(c, b"185").verdict is None  # inside the band: no change
    r = parse_grid(c, b"230.1")
    assert (r.verdict, r.value, r.measured) == ("normal", 230.1, True)


def test_json_voltage_on_one_path() -> None:
    c = cfg(json_path="emeters.0.voltage", voltage_below_v=180)
    assert parse_grid(c, json.dumps(SHELLY_EM_GEN1).encode()).verdict == "normal"
    down = {"emeters": [{"voltage": 0.0}]}
    assert parse_grid(c, json.dumps(down).encode()).verdict == "outage"


def test_three_phases_are_out_only_when_all_are() -> None:
    c = cfg(json_path="em:0.a_voltage, em:0.b_voltage, em:0.c_voltage", voltage_below_v=180)
    one_down = {"em:0": {"a_voltage": 0, "b_voltage": 230, "c_voltage": 229}}
    all_down = {"em:0": {"a_voltage": 0, "b_voltage": 3, "c_voltage": 0}}
    assert parse_grid(c, json.dumps(one_down).encode()).verdict == "normal"
    r = parse_grid(c, json.dumps(all_down).encode())
    assert (r.verdict, r.value) == ("outage", 3.0)


def test_json_state_string_and_boolean() -> None:
    c = cfg(json_path="state")
    assert parse_grid(c, b'{"state": "offline", "voltage": 0}').verdict == "outage"
    assert parse_grid(cfg(json_path="grid.ok"), b'{"grid": {"ok": true}}').verdict == "normal"


def test_frequency_band() -> None:
    c = cfg(frequency_json_path="f", frequency_below_hz=47.5, frequency_above_hz=52.0)
    assert parse_grid(c, b'{"f": 50.0}').verdict == "normal"
    assert parse_grid(c, b'{"f": 0}').verdict == "outage"
    assert parse_grid(c, b'{"f": 53.1}').verdict == "outage"
    assert parse_grid(c, b'{"f": 47.6}').verdict is None  # within 0.2 Hz of the trip point


def test_voltage_and_frequency_combine() -> None:
    c = cfg(
        json_path="em:0.a_voltage",
        voltage_below_v=180,
        frequency_json_path="em:0.a_freq",
        frequency_below_hz=47.5,
    )
    assert parse_grid(c, json.dumps(SHELLY_EM_GEN2).encode()).verdict == "normal"
    bad_freq = {"em:0": {"a_voltage": 231.0, "a_freq": 45.0}}
    assert parse_grid(c, json.dumps(bad_freq).encode()).verdict == "outage"


@pytest.mark.parametrize(
    ("section", "payload", "problem"),
    [
        ({}, b"\xff\xfe", "not UTF-8"),
        ({}, b"", "empty payload"),
        ({}, b"maybe", "unknown state 'maybe'"),
        ({}, b'{"voltage": 0}', "json_path is not set"),
        ({}, b"230", "voltage_below_v is not set"),
        ({"json_path": "voltage"}, b"{not json", "not JSON"),
        ({"json_path": "voltage"}, b'{"volts": 1}', "no 'voltage'"),
        ({"json_path": "voltage"}, b'{"voltage": [1]}', "state word or a number"),
        ({"frequency_json_path": "f"}, b'{"f": 50}', "frequency_below_hz"),
    ],
)
def test_bad_grid_payloads_say_what_is_wrong(
    section: dict[str, Any], payload: bytes, problem: str
) -> None:
    with pytest.raises(GridPayloadError, match=problem.replace("(", r"\(")):
        parse_grid(cfg(**section), payload)


def test_home_power() -> None:
    assert parse_home_power(cfg(), b"1234.5") == 1234.5
    assert parse_home_power(cfg(), b"-300") == 0.0  # exporting: nothing to back up
    c = cfg(home_power_json_path="em:0.total_act_power")
    assert parse_home_power(c, b'{"em:0": {"total_act_power": 812}}') == 812.0
    with pytest.raises(GridPayloadError, match="not a number"):
        parse_home_power(cfg(), b"lots")
    with pytest.raises(GridPayloadError, match="no 'total_act_power'"):
        parse_home_power(c, b'{"em:0": {}}')
