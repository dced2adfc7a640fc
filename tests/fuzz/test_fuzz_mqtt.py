"""Hostile MQTT commands on the real `set/...` topics of a real broker into a whole Gateway.

After every command a fresh preference must still take effect; at the end no task may have
died with an exception, the database must pass integrity_check, and whatever the fuzzer
managed to store must still be valid by the policy's own rules.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mosquitto import Broker, start_broker
from mqtt_target import BASE, MqttTarget
from ocpp_strategies import JSON_VALUES, ODD_TEXT, TIMESTAMPS
from structlog.testing import capture_logs

from v2g_gateway.dispatch.policy import PREFERENCE_KEYS

EXAMPLES = int(os.environ.get("V2G_FUZZ_EXAMPLES", "1500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=os.environ.get("V2G_FUZZ_RANDOM") is None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Topic levels a broker accepts: no wildcards, no control or non-characters (MQTT 5, 1.5.4).
TOPIC_LEVEL = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn"), exclude_characters="#+/"
    ),
    min_size=1,
    max_size=20,
)
COMMANDS = st.sampled_from(
    [
        "override",
        "preference",
        *(f"preference/{k}" for k in PREFERENCE_KEYS),
        *(
            f"vehicle/car/{f}"
            for f in ("mode", "reserve_soc_percent", "target_soc_percent", "departure_time")
        ),
        "vehicle/nope/mode",
        "charging",
        "charger/garage/charging",
        "demand_response",
    ]
) | st.lists(TOPIC_LEVEL, min_size=1, max_size=4).map("/".join)
NUMBERS = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 100, 100.0001, 1e308, -1e308, 2**63, 10**30]),
)
FIELDS = {
    "action": st.sampled_from(["charge_now", "discharge_now", "pause", "cancel", "x"]) | ODD_TEXT,
    "vehicle": st.sampled_from(["car", "nope", ""]) | ODD_TEXT,
    "charger": st.sampled_from(["garage", "nope"]) | ODD_TEXT,
    "soc_percent": NUMBERS,
    "power_w": NUMBERS,
    "minutes": NUMBERS,
    "until": TIMESTAMPS | NUMBERS,
    "start": TIMESTAMPS,
    "end": TIMESTAMPS,
    "key": st.sampled_from(sorted(PREFERENCE_KEYS)) | ODD_TEXT,
    "value": JSON_VALUES,
    "event_id": ODD_TEXT,
    "cancel": JSON_VALUES,
    "price_bonus_per_kwh": NUMBERS,
    "request_id": JSON_VALUES,
}
OBJECTS = st.fixed_dictionaries({}, optional=FIELDS).map(lambda d: json.dumps(d).encode())
PAYLOADS = st.one_of(
    OBJECTS,
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    NUMBERS.map(lambda n: str(n).encode()),
    st.sampled_from(
        [
            b"",
            b"NaN",
            b"Infinity",
            b"1e400",
            b"-0",
            b"true",
            b"null",
            b"on",
            b"\xff\xfe",
            b"{" * 5000,
            b"25:99",
            b"07:30",
        ]
    ),
    st.binary(max_size=200),
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = start_broker(tmp_path_factory.mktemp("fuzz-broker"))
    yield b
    b.stop()


@pytest.fixture(scope="module")
def logs() -> Iterator[list[dict[str, Any]]]:
    with capture_logs() as captured:
        yield captured


@pytest.fixture(scope="module")
def target(
    tmp_path_factory: pytest.TempPathFactory, broker: Broker, logs: list[dict[str, Any]]
) -> Iterator[MqttTarget]:
    t = MqttTarget(tmp_path_factory.mktemp("fuzz-mqtt"), broker.host, broker.port)
    yield t
    t.close()


@FUZZ
@given(command=COMMANDS, payload=PAYLOADS)
def test_hostile_commands(target: MqttTarget, command: str, payload: bytes) -> None:
    target.publish(f"{BASE}/set/{command}", payload)
    target.probe()


def test_no_crash_and_no_corrupted_state(target: MqttTarget, logs: list[dict[str, Any]]) -> None:
    target.probe()
    assert target.published >= min(EXAMPLES, 100)
    crashes = [
        e
        for e in logs
        if e.get("exc_info")
        or e["event"] in ("mqtt.session_failed", "mqtt.listener_failed", "mqtt.render_failed")
    ]
    assert crashes == [], crashes[:5]
    gw = target.gw
    assert gw.mqtt is not None and gw.mqtt.connected.is_set()
    for key, value in gw.store.preferences().items():
        base = key.split(":")[0].split("/")[-1]
        if base in PREFERENCE_KEYS:
            assert PREFERENCE_KEYS[base](value) == value, (key, value)
    now = target.clock.now()
    for o in gw.store.snapshot(now).overrides:
        assert o.created_at < o.expires_at
        assert o.target_soc_percent is None or 0 <= o.target_soc_percent <= 100
    with contextlib.closing(sqlite3.connect(gw.store.path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_no_unhandled_task_exception(target: MqttTarget) -> None:
    errors = sorted({repr(e.get("exception")) for e in target.loop_errors})
    assert errors == [], errors
