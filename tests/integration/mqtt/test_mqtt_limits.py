"""Hostile input over a real broker: every refused command gets an answer naming the cause, and
nothing refused is stored (issue 19: input limits, Response Topic, command allow-list)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiomqtt
from mqtt_helpers import BASE, Broker, Rig, Watcher, make_rig, watching
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

EVENTS = f"{BASE}/events"
V5 = {"protocol": aiomqtt.ProtocolVersion.V5}
DR = {"event_id": "dr", "start": "2025-06-02T17:00Z", "end": "2025-06-02T18:00Z", "power_w": 1}


async def send(
    w: Watcher, sub: str, payload: bytes | str, props: Properties | None = None
) -> dict[str, Any]:
    mark = w.mark()
    await w.client.publish(f"{BASE}/set/{sub}", payload, qos=1, properties=props)
    ev = await w.wait_for(EVENTS, lambda m: m.json().get("command") == f"set/{sub}", after=mark)
    body: dict[str, Any] = ev.json()
    return body


def publish_props(**fields: Any) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for k, v in fields.items():
        setattr(props, k, v)
    return props


async def test_oversized_and_deep_commands_are_answered_and_change_nothing(rig: Rig) -> None:
    async with watching(rig.broker, EVENTS, **V5) as w:
        big = json.dumps({"key": "v2g_enabled", "value": False, "pad": "x" * 100_000})
        res = await send(w, "preference", big)
        assert not res["ok"] and "payload too large (100" in res["message"], res["message"]
        assert "at most 65536" in res["message"]
        # 10,000 levels: plain json.loads raises RecursionError here and the command got no reply.
        deep = "[" * 10_000 + "]" * 10_000
        res = await send(w, "preference", deep)
        assert not res["ok"] and "nested 10000 deep" in res["message"], res["message"]
        res = await send(w, "vehicle/car/reserve_soc_percent", "[" * 5_000 + "]" * 5_000)
        assert not res["ok"] and "nested 5000 deep" in res["message"], res["message"]
        # An integer of 400 digits: float() of it raises OverflowError ("internal error" before).
        res = await send(w, "vehicle/car/reserve_soc_percent", "1" + "0" * 400)
        assert not res["ok"] and "expected a percentage" in res["message"], res["message"]
        assert "internal error" not in res["message"]
        # The session survived all of it: a good command still works.
        res = await send(w, "vehicle/car/reserve_soc_percent", "45")
        assert res["ok"], res["message"]
    assert rig.policy.preference("v2g_enabled") is True
    assert rig.policy.reserve_percent("car") == 45


async def test_bad_demand_response_is_refused_before_storing(rig: Rig) -> None:
    bad = [
        ({**DR, "power_w": 1e308}, "at most 1e+06 W"),
        ({**DR, "power_w": int("9" * 400)}, "'power_w' must be"),
        ({**DR, "end": "9999-12-31T23:59:59-12:00"}, "out of range"),
        ({**DR, "start": "0001-01-01T00:00:00+14:00"}, "out of range"),
        ({**DR, "start": "2025-07-20T17:00Z", "end": "2025-07-20T18:00Z"}, "days ahead"),
        ({**DR, "event_id": "e" * 101}, "at most 100 characters"),
    ]
    async with watching(rig.broker, EVENTS) as w:
        for body, why in bad:
            res = await send(w, "demand_response", json.dumps(body))
            assert not res["ok"] and why in res["message"], (body, res["message"])
            assert "internal error" not in res["message"]
        assert rig.store.kv_get("demand_response") is None
        for i in range(32):
            res = await send(w, "demand_response", json.dumps({**DR, "event_id": f"e{i}"}))
            assert res["ok"], res["message"]
        res = await send(w, "demand_response", json.dumps({**DR, "event_id": "one-too-many"}))
        assert not res["ok"] and "at most 32" in res["message"], res["message"]
        res = await send(w, "demand_response", json.dumps({**DR, "event_id": "e3", "power_w": 2}))
        assert res["ok"], "replacing an event of the same id is not a new one"
    stored = rig.store.kv_get("demand_response")
    assert len(stored) == 32 and "one-too-many" not in {e["event_id"] for e in stored}


async def test_response_topic_only_under_the_gateway_reply_prefix(rig: Rig) -> None:
    own = f"{BASE}/reply/dash"
    watched = (EVENTS, own, f"{BASE}/availability", f"{BASE}/set/#", "elsewhere/#")
    async with watching(rig.broker, *watched, **V5) as w:
        for target in (f"{BASE}/availability", f"{BASE}/set/override", "elsewhere/x"):
            mark = w.mark()
            props = publish_props(ResponseTopic=target, CorrelationData=b"c1")
            res = await send(
                w, "override", json.dumps({"action": "pause", "vehicle": "car"}), props
            )
            assert f"response topic {target!r} not used" in res["message"], res["message"]
            assert f"answers go only under {BASE}/reply/" in res["message"]
            assert res["ok"], "the command itself still runs"
            # No answer went to the asked topic (on set/override only the command itself is seen).
            assert not [
                m for m in w.messages[mark:] if m.topic == target and b'"kind"' in m.payload
            ]
        res = await send(w, "override", b"{}", publish_props(ResponseTopic=own))
        answer = await w.wait_for(own)
        assert answer.json()["message"] == res["message"]
    assert [m.payload for m in w.on(f"{BASE}/availability")] == [b"online"]


async def test_command_clients_allow_list(broker: Broker, tmp_path: Path) -> None:
    r = make_rig(broker, tmp_path, mqtt={"command_clients": ["homeassistant"]})
    await r.start()
    try:
        async with watching(broker, EVENTS, **V5) as w:
            body = json.dumps({"action": "pause", "vehicle": "car"})
            res = await send(w, "override", body)
            assert not res["ok"] and "carries no client_id or username" in res["message"]
            props = publish_props(UserProperty=[("client_id", "intruder")])
            res = await send(w, "override", body, props)
            assert not res["ok"] and "'intruder' is not in [mqtt] command_clients" in res["message"]
            assert not r.store.snapshot(r.clock.now()).overrides
            props = publish_props(UserProperty=[("username", "homeassistant")])
            res = await send(w, "override", body, props)
            assert res["ok"], res["message"]
    finally:
        await r.stop()
        r.store.close()


async def test_oversized_listener_payload_is_dropped_unread(rig: Rig) -> None:
    async with watching(rig.broker, EVENTS, f"{BASE}/vehicle/car") as w:
        await w.client.publish("cars/car/soc", b"5" + b" " * 70_000, qos=1)
        await w.client.publish("cars/car/soc", b"57.5", qos=1)
        await w.wait_for(f"{BASE}/vehicle/car", lambda m: m.json()["soc_percent"] == 57.5)
    assert not [m for m in w.on(EVENTS) if m.json().get("kind") == "soc_rejected"]
