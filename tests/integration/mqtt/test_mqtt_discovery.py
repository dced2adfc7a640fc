"""Home Assistant discovery: what HA requires of each entity, that every command topic works,
and that entities of removed chargers/vehicles are deleted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mqtt_helpers import BASE, T0, Broker, Rig, Seen, make_config, watching
from test_mqtt_commands import send

from v2g_gateway.clock import ManualClock
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.mqtt.bridge import MqttBridge
from v2g_gateway.mqtt.connection import Backoff
from v2g_gateway.store import Store

HA = "homeassistant"
NEEDS_STATE = {"sensor", "binary_sensor", "select", "number", "text", "switch"}
NEEDS_COMMAND = {"select", "number", "text", "button", "switch"}


async def configs(rig: Rig) -> dict[str, dict[str, Any]]:
    async with watching(rig.broker, f"{HA}/#") as w:
        await w.wait_for(f"{HA}/text/v2g_home_vehicle_van_departure_time/config")
        await w.wait_for(f"{HA}/binary_sensor/v2g_home_grid_outage/config")
        return {m.topic: m.json() for m in w.messages if m.payload}


async def test_every_entity_has_what_home_assistant_requires(rig: Rig) -> None:
    found = await configs(rig)
    uids = [c["unique_id"] for c in found.values()]
    assert len(uids) == len(set(uids)), "unique_id must be unique"
    components = {t.split("/")[1] for t in found}
    assert components == {"sensor", "binary_sensor", "select", "number", "button", "text", "switch"}
    devices: dict[str, dict[str, Any]] = {}
    for topic, c in found.items():
        component = topic.split("/")[1]
        assert topic == f"{HA}/{component}/{c['unique_id']}/config"
        assert c["availability"] == [
            {
                "topic": f"{BASE}/availability",
                "payload_available": "online",
                "payload_not_available": "offline",
            }
        ]
        dev = c["device"]
        assert dev["identifiers"] and dev["name"]
        devices[dev["identifiers"][0]] = dev
        if component in NEEDS_STATE:
            assert c["state_topic"].startswith(f"{BASE}/"), topic
            assert "value_template" in c, topic
        if component in NEEDS_COMMAND:
            assert c["command_topic"].startswith(f"{BASE}/set/"), topic
        if component == "select":
            assert c["options"] == ["auto", "charge_now", "discharge_now", "hold", "release"]
        if component == "number" and c["unique_id"].endswith("reserve_soc_percent"):
            assert (c["min"], c["max"]) == (10, 100)  # what the gateway accepts for a reserve
        elif component == "number":
            assert (c["min"], c["max"]) == (0, 100)
        if component == "button":
            assert c["payload_press"]
    assert set(devices) == {
        "v2g_home_gateway",
        "v2g_home_charger_garage",
        "v2g_home_vehicle_car",
        "v2g_home_vehicle_van",
    }
    assert devices["v2g_home_vehicle_car"]["manufacturer"] == "Nissan"
    assert devices["v2g_home_vehicle_car"]["via_device"] == "v2g_home_gateway"
    names = {(c["device"]["identifiers"][0], c["name"]) for c in found.values()}
    for want in [
        ("v2g_home_vehicle_car", "State of charge"),
        ("v2g_home_vehicle_car", "Power"),
        ("v2g_home_vehicle_car", "Next action"),
        ("v2g_home_vehicle_car", "Plugged in"),
        ("v2g_home_vehicle_car", "Discharging"),
        ("v2g_home_vehicle_car", "Mode"),
        ("v2g_home_vehicle_car", "Reserve SoC"),
        ("v2g_home_vehicle_car", "Target SoC"),
        ("v2g_home_vehicle_car", "Charge now"),
        ("v2g_home_vehicle_car", "Discharge now"),
        ("v2g_home_vehicle_car", "Hold (pause)"),
        ("v2g_home_vehicle_car", "Resume"),
        ("v2g_home_vehicle_car", "Departure time"),
        ("v2g_home_charger_garage", "Energy import"),
        ("v2g_home_gateway", "Grid outage"),
        ("v2g_home_gateway", "Import price"),
    ]:
        assert want in names, want


_PATH = re.compile(r"value_json\.([a-z0-9_.]+)")


async def test_templates_name_fields_the_state_topics_carry(rig: Rig) -> None:
    found = await configs(rig)
    async with watching(rig.broker, f"{BASE}/#") as w:
        await send(w, "vehicle/car/mode", b"hold")  # so that last_command has a body
        await w.wait_for(f"{BASE}/last_command")
        await w.wait_for(f"{BASE}/vehicle/van")
        await w.wait_for(f"{BASE}/plan/van")
        await w.wait_for(f"{BASE}/gateway")
        state: dict[str, Any] = {m.topic: m.json() for m in w.messages if m.payload[:1] == b"{"}
    state[f"{BASE}/prices"] = {  # no prices_view in this rig: the shape the gateway publishes
        "status": {"state": "fresh", "source": "tariff:", "label": "Time-of-use tariff"},
        "current": {"import_price_per_kwh": 0.3, "export_price_per_kwh": 0.05},
    }
    for topic, c in found.items():
        for key in ("value_template", "json_attributes_template"):
            if key not in c:
                continue
            body = state.get(c.get("state_topic", ""))
            assert body is not None, f"{topic}: nothing published on {c.get('state_topic')}"
            for path in _PATH.findall(c[key]):
                node: Any = body
                for part in path.split("."):
                    assert isinstance(node, dict) and part in node, f"{topic}: {path}"
                    node = node[part]


async def test_every_command_topic_accepts_what_home_assistant_sends(rig: Rig) -> None:
    found = await configs(rig)
    async with watching(rig.broker, f"{BASE}/events") as w:
        for topic, c in sorted(found.items()):
            if "command_topic" not in c:
                continue
            sub = c["command_topic"][len(f"{BASE}/set/") :]
            component = topic.split("/")[1]
            payloads: list[bytes]
            if component == "button":
                payloads = [c["payload_press"].encode()]
            elif component == "select":
                payloads = [o.encode() for o in c["options"]]
            elif component == "number":
                payloads = [b"55.0"]
            elif component == "text":
                payloads = [b"06:45", b""]
            else:
                payloads = [c["payload_off"].encode(), c["payload_on"].encode()]
            for p in payloads:
                if "charging" in sub:
                    res = await send(w, sub, p)  # no charging control in this rig
                    assert "not available" in res["message"]
                    continue
                res = await send(w, sub, p)
                assert res["ok"], (topic, p, res["message"])


def _bridge(broker: Broker, tmp: Path, vehicles: list[dict[str, Any]], discovery: bool) -> Rig:
    cfg = make_config(
        broker, tmp / "state", {"vehicles": vehicles}, homeassistant_discovery=discovery
    )
    store = Store.open(tmp / "shared.sqlite", cfg)
    clock = ManualClock(T0)
    policy = Policy(cfg, store, clock)
    bridge = MqttBridge(cfg, store, policy, clock, backoff=Backoff(0.05, 0.2))
    return Rig(broker, cfg, store, policy, clock, bridge)


async def test_removed_vehicle_entities_are_deleted(broker: Broker, tmp_path: Path) -> None:
    both = [{"id": "car", "battery_kwh": 60}, {"id": "van", "battery_kwh": 75}]
    r = _bridge(broker, tmp_path, both, True)
    await r.start()
    van_soc = f"{HA}/sensor/v2g_home_vehicle_van_soc/config"
    async with watching(broker, f"{HA}/#") as w:
        await w.wait_for(van_soc)
    await r.stop()
    r.store.close()

    r = _bridge(broker, tmp_path, both[:1], True)  # the van left the config
    async with watching(broker, f"{HA}/#") as w:
        await r.start()
        await w.wait_for(van_soc, lambda m: m.payload == b"")
        await w.wait_for(f"{HA}/sensor/v2g_home_vehicle_car_soc/config")
    async with watching(broker, f"{HA}/#") as late:
        await late.wait_for(f"{HA}/sensor/v2g_home_vehicle_car_soc/config")
        assert not [m for m in late.messages if "vehicle_van" in m.topic]
    await r.stop()
    r.store.close()

    r = _bridge(broker, tmp_path, both[:1], False)  # discovery switched off: all deleted
    async with watching(broker, f"{HA}/#") as w:
        await r.start()
        await w.wait_for(f"{HA}/sensor/v2g_home_vehicle_car_soc/config", lambda m: m.payload == b"")
    assert r.store.kv_get("mqtt.discovery_topics") == []
    async with watching(broker, f"{HA}/#", f"{BASE}/availability") as late:
        await late.wait_for(f"{BASE}/availability")  # retained messages arrive before it
        assert _retained(late.messages) == [f"{BASE}/availability"]
    await r.stop()
    r.store.close()


def _retained(messages: list[Seen]) -> list[str]:
    return [m.topic for m in messages if m.retain and m.payload]
