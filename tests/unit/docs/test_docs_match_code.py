"""The docs say what the code does: the event kinds sent, the shapes of the state topics, the
outage keys with their defaults."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from event_kinds import code_kinds

from v2g_gateway.app import Gateway
from v2g_gateway.clock import ManualClock
from v2g_gateway.config import OutageSection, parse_config
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.model import ChargerState, EvseState, Snapshot, VehicleState
from v2g_gateway.mqtt.payloads import charger_body, last_command_body, vehicle_body

DOCS = Path(__file__).resolve().parents[3] / "docs"
MQTT = (DOCS / "mqtt.md").read_text()
T0 = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


def documented_kinds() -> set[str]:
    part = MQTT[MQTT.index("| `kind` | when |") :]
    table = part[: part.index("\n\n")].splitlines()[2:]  # below the header and its rule
    return {m.group(1) for line in table if (m := re.match(r"^\| `([a-z_]+)` \|", line))}


def test_documented_event_kinds_are_the_ones_sent() -> None:
    sent, documented = code_kinds(), documented_kinds()
    assert len(sent) >= 20  # the scan finds them (it would find none if it broke)
    assert sent - documented == set(), "sent but not in docs/mqtt.md's kinds table"
    assert documented - sent == set(), "documented but never sent"
    events = MQTT[MQTT.index("### `v2g/home/events`") : MQTT.index("### `set/override`")]
    examples = set(re.findall(r'"kind": "([a-z_]+)"', events))
    assert {"dispatch_started", "command_accepted", "command_rejected"} <= examples
    assert examples <= sent, examples - sent


def section_json(heading: str) -> dict[str, Any]:
    part = MQTT[MQTT.index(f"### `{heading}`") :]
    block = part[part.index("```json\n") + 8 : part.index("```", part.index("```json\n") + 8)]
    body: dict[str, Any] = json.loads(block)
    return body


def test_state_topic_shapes_are_current(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "gateway": {"state_dir": str(tmp_path)},
            "chargers": [{"id": "garage", "password": "a-long-random-secret"}],
            "vehicles": [{"id": "car", "battery_kwh": 60}],
            "mqtt": {"enabled": False},
        }
    )
    gw = Gateway(cfg, ManualClock(T0), mqtt=False)
    try:
        policy = Policy(cfg, gw.store, ManualClock(T0))
        ch = ChargerState("garage", online=True, evses={1: EvseState("garage", 1)})
        snap = Snapshot(taken_at=T0, chargers={"garage": ch}, vehicles={})
        charger = charger_body(cfg, ch, False)
        vehicle = vehicle_body(cfg, policy, VehicleState("car"), snap, None)
        vehicle |= {"odometer_km": None, "range_km": None}  # the bridge adds these two
        health = gw.health()
        prices = {**gw._prices_view(), "updated_at": T0.isoformat()}
    finally:
        gw.store.close()
    doc_charger = section_json("v2g/home/charger/garage")
    assert set(doc_charger) == set(charger)
    assert set(doc_charger["evses"][0]) == set(charger["evses"][0])
    doc_vehicle = section_json("v2g/home/vehicle/car")
    assert set(doc_vehicle) == set(vehicle)
    assert set(doc_vehicle["next_action"]) == set(vehicle["next_action"])
    doc_gateway = section_json("v2g/home/gateway")
    assert set(doc_gateway["health"]) == set(health)
    assert set(doc_gateway["health"]["prices"]) == set(health["prices"])
    doc_prices = section_json("v2g/home/prices")
    assert set(doc_prices) == set(prices)
    assert set(doc_prices["status"]) == set(prices["status"])
    doc_last = section_json("v2g/home/last_command")
    assert set(doc_last) == set(last_command_body({"ok": False}))


def test_outage_block_holds_every_key_with_its_default() -> None:
    text = (DOCS / "outage.md").read_text()
    part = text[text.index("Every key with its default") :]
    block = part[part.index("```toml\n") + 8 : part.index("```", part.index("```toml\n") + 8)]
    values = tomllib.loads(block)["outage"]
    commented = set(re.findall(r"^# ([a-z_]+) = ", block, re.MULTILINE))
    defaults = {k: f.default for k, f in OutageSection.model_fields.items()}
    for key, value in values.items():
        assert key in defaults, f"{key}: not an [outage] key"
        assert value == defaults[key], f"{key} = {value!r}, but its default is {defaults[key]!r}"
    unset = {k for k, v in defaults.items() if v is None}
    assert set(values) == set(defaults) - unset  # every key with a default, set to it
    assert commented == unset  # the keys without one, shown commented out
