"""Every command under set/..., valid and invalid, through a real broker into a real Policy/Store."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from mqtt_helpers import BASE, T0, Broker, Rig, Watcher, make_rig, watching
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from v2g_gateway.model import CommandResult, CommandStatus, OverrideKind

EVENTS = f"{BASE}/events"


async def send(w: Watcher, sub: str, payload: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """Publish a command and return its result event."""
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    mark = w.mark()
    await w.client.publish(f"{BASE}/set/{sub}", payload, qos=1)
    ev = await w.wait_for(EVENTS, lambda m: m.json().get("command") == f"set/{sub}", after=mark)
    body: dict[str, Any] = ev.json()
    return body


def overrides(rig: Rig) -> list[tuple[str, OverrideKind]]:
    return [(o.vehicle_id, o.kind) for o in rig.store.snapshot(rig.clock.now()).overrides]


# ---------------------------------------------------------------------------- overrides


async def test_override_charge_now_then_cancel(rig: Rig) -> None:
    async with watching(rig.broker, f"{BASE}/#") as w:
        res = await send(
            w,
            "override",
            {
                "action": "charge_now",
                "vehicle": "car",
                "soc_percent": 80,
                "minutes": 60,
                "request_id": "r-1",
            },
        )
        assert res["kind"] == "command_accepted" and res["ok"] is True
        assert res["request_id"] == "r-1"
        assert res["data"]["expires_at"] == (T0 + timedelta(minutes=60)).isoformat()
        assert overrides(rig) == [("car", OverrideKind.CHARGE_NOW)]
        car = await w.wait_for(f"{BASE}/vehicle/car", lambda m: m.json()["mode"] == "charge_now")
        assert car.json()["override"]["soc_percent"] == 80
        policy_ev = await w.wait_for(EVENTS, lambda m: m.json()["kind"] == "override_accepted")
        assert policy_ev.json()["vehicle_id"] == "car"
        res = await send(w, "override", {"action": "cancel", "vehicle": "car"})
        assert res["ok"] and res["data"] == {"action": "cancel", "cancelled": 1}
        assert overrides(rig) == []
        await w.wait_for(f"{BASE}/vehicle/car", lambda m: m.json()["mode"] == "auto")


async def test_override_discharge_until_and_pause(rig: Rig) -> None:
    until = (T0 + timedelta(hours=2)).isoformat()
    async with watching(rig.broker, EVENTS) as w:
        res = await send(
            w,
            "override",
            {
                "action": "discharge_now",
                "vehicle": "van",
                "soc_percent": 50,
                "power_w": 5000,
                "until": until,
            },
        )
        assert res["ok"] and res["data"]["expires_at"] == until
        assert res["data"]["soc_percent"] == 50
        res = await send(w, "override", {"action": "pause", "vehicle": "car"})
        assert res["ok"]
        assert sorted(overrides(rig)) == [
            ("car", OverrideKind.HOLD),
            ("van", OverrideKind.DISCHARGE_NOW),
        ]


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"vehicle": "car"}', "'action' is required"),
        (b'{"action": "fly", "vehicle": "car"}', "unknown action 'fly'"),
        (b'{"action": "pause", "vehicle": "car", "colour": "red"}', "unknown field 'colour'"),
        (b'{"action": "charge_now", "vehicle": "car", "soc_percent": "80"}', "must be a number"),
        (b'{"action": "charge_now", "vehicle": "car", "soc_percent": 180}', "0..100"),
        (b'{"action": "pause", "vehicle": "car", "until": "tomorrow"}', "ISO 8601"),
        (b'{"action": "pause", "vehicle": "car", "until": "2025-06-02T12:00"}', "time zone"),
        (
            b'{"action": "pause", "vehicle": "car", "minutes": 5, "until": "2025-06-02T12:00Z"}',
            "either until or minutes",
        ),
        (b'{"action": "pause", "vehicle": "car", "minutes": -5}', "positive"),
        (b'{"action": "pause", "vehicle": "car", "until": "2025-06-01T12:00Z"}', "in the past"),
        (b'{"action": "pause", "vehicle": "car", "minutes": 20000}', "at most 7 days"),
        (b'{"action": "pause", "vehicle": "boat"}', "unknown vehicle 'boat'"),
        (b'{"action": "pause"}', "say which vehicle"),
        (b'{"action": "discharge_now", "vehicle": "car", "soc_percent": 20}', "reserve of 40"),
        (b'{"action": "charge_now", "vehicle": "car", "power_w": 0}', "power_w must be positive"),
    ],
)
async def test_invalid_override_is_rejected_and_changes_nothing(
    rig: Rig, payload: bytes, why: str
) -> None:
    async with watching(rig.broker, EVENTS) as w:
        res = await send(w, "override", payload)
    assert res["kind"] == "command_rejected" and res["ok"] is False and res["level"] == "error"
    assert why in res["message"], res["message"]
    assert overrides(rig) == []


# ---------------------------------------------------------------------------- preferences


async def test_preferences_json_and_plain_topics(rig: Rig) -> None:
    async with watching(rig.broker, f"{BASE}/#") as w:
        res = await send(
            w, "preference", {"key": "reserve_soc_percent", "value": 45, "vehicle": "car"}
        )
        assert res["ok"] and res["data"] == {
            "key": "reserve_soc_percent",
            "value": 45.0,
            "vehicle": "car",
        }
        await w.wait_for(f"{BASE}/vehicle/car", lambda m: m.json()["reserve_soc_percent"] == 45)
        res = await send(w, "preference", {"key": "discharge_above_per_kwh", "value": 0.35})
        assert res["ok"]
        res = await send(w, "preference/v2g_enabled", b"OFF")
        assert res["ok"] and res["data"]["value"] is False
        await w.wait_for(f"{BASE}/gateway", lambda m: m.json()["v2g_enabled"] is False)
        res = await send(w, "preference/discharge_above_per_kwh", b"none")
        assert res["ok"] and res["data"]["value"] is None
    prefs = rig.store.preferences()
    assert prefs["car.reserve_soc_percent"] == 45.0
    assert prefs["v2g_enabled"] is False and prefs["discharge_above_per_kwh"] is None


@pytest.mark.parametrize(
    ("sub", "payload", "why"),
    [
        ("preference", {"key": "colour", "value": 1}, "unknown preference 'colour'"),
        ("preference", {"key": "reserve_soc_percent", "vehicle": "car"}, "'value' is required"),
        (
            "preference",
            {"key": "reserve_soc_percent", "value": 5, "vehicle": "car"},
            "reserve must be between 10 and 100",
        ),
        ("preference", {"key": "v2g_enabled", "value": "yes"}, "expected true or false"),
        ("preference", {"key": 7, "value": 1}, "'key' must be a non-empty string"),
        ("preference/max_cycles_per_day", b"-1", "expected a positive number"),
        ("preference/reserve_soc_percent", b"50", "is per vehicle"),
        ("preference/nonsense", b"1", "unknown preference 'nonsense'"),
    ],
)
async def test_invalid_preferences_are_rejected(rig: Rig, sub: str, payload: Any, why: str) -> None:
    async with watching(rig.broker, EVENTS) as w:
        res = await send(w, sub, payload)
    assert res["kind"] == "command_rejected" and why in res["message"], res["message"]
    assert rig.store.preferences() == {}


# ---------------------------------------------------------------------------- per-vehicle topics


async def test_home_assistant_entity_topics(rig: Rig) -> None:
    async with watching(rig.broker, f"{BASE}/#") as w:
        assert (await send(w, "vehicle/car/mode", b"charge now"))["ok"]
        assert overrides(rig) == [("car", OverrideKind.CHARGE_NOW)]
        assert (await send(w, "vehicle/car/mode", b"discharge_now"))["ok"]
        assert overrides(rig) == [("car", OverrideKind.DISCHARGE_NOW)]
        assert (await send(w, "vehicle/car/mode", b"resume"))["ok"]
        assert overrides(rig) == []
        assert (await send(w, "vehicle/car/mode", b"pause"))["ok"]
        assert (await send(w, "vehicle/car/mode", b"auto"))["ok"]
        assert overrides(rig) == []
        assert (await send(w, "vehicle/car/reserve_soc_percent", b"45"))["ok"]
        assert (await send(w, "vehicle/car/target_soc_percent", b"85.0"))["ok"]
        assert (await send(w, "vehicle/car/departure_time", b"07:30"))["ok"]
        car = await w.wait_for(
            f"{BASE}/vehicle/car", lambda m: m.json()["departure_time"] == "07:30"
        )
        assert car.json()["target_soc_percent"] == 85 and car.json()["reserve_soc_percent"] == 45
        assert (await send(w, "vehicle/car/departure_time", b""))["ok"]
    assert rig.store.preferences()["car.departure_time"] is None


@pytest.mark.parametrize(
    ("sub", "payload", "why"),
    [
        ("vehicle/car/mode", b"turbo", "unknown mode 'turbo'"),
        ("vehicle/boat/mode", b"pause", "unknown vehicle 'boat'"),
        ("vehicle/car/colour", b"red", "unknown vehicle setting 'colour'"),
        ("vehicle/car/reserve_soc_percent", b"lots", "expected a percentage"),
        ("vehicle/car/target_soc_percent", b"101", "expected a percentage"),
        ("vehicle/car/departure_time", b"25:00", "HH:MM"),
        ("vehicle/car/departure_time", b"\xff\xfe", "not UTF-8"),
        ("teleport", b"{}", "unknown command topic set/teleport"),
    ],
)
async def test_invalid_entity_commands_are_rejected(
    rig: Rig, sub: str, payload: bytes, why: str
) -> None:
    async with watching(rig.broker, EVENTS) as w:
        res = await send(w, sub, payload)
    assert res["kind"] == "command_rejected" and why in res["message"], res["message"]
    assert rig.store.preferences() == {} and overrides(rig) == []


# ---------------------------------------------------------------------------- charging


class FakeCharging:
    """Below the OCPP transport: records what the bridge asked for."""

    def __init__(self, status: CommandStatus = CommandStatus.ACCEPTED) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.status = status

    async def __call__(self, charger_id: str, start: bool) -> CommandResult:
        self.calls.append((charger_id, start))
        return CommandResult(self.status, None if self.status == "Accepted" else "EV says no")


async def test_start_stop_charging(broker: Broker, tmp_path: Path) -> None:
    control = FakeCharging()
    r = make_rig(broker, tmp_path, charging_control=control)
    await r.start()
    try:
        async with watching(broker, EVENTS) as w:
            res = await send(w, "charging", {"charger": "garage", "action": "start"})
            assert res["ok"] and res["data"]["status"] == "Accepted"
            assert (await send(w, "charger/garage/charging", b"stop"))["ok"]
            assert (await send(w, "charging", {"action": "stop"}))["ok"]  # the only charger
            assert control.calls == [("garage", True), ("garage", False), ("garage", False)]
            for sub, payload, why in (
                ("charging", {"charger": "shed", "action": "start"}, "unknown charger 'shed'"),
                ("charging", {"charger": "garage", "action": "go"}, "unknown action 'go'"),
                ("charging", {"charger": "garage"}, "'action' is required"),
                ("charger/garage/charging", b"maybe", "unknown action 'maybe'"),
            ):
                res = await send(w, sub, payload)
                assert res["kind"] == "command_rejected" and why in res["message"]
            assert len(control.calls) == 3
            control.status = CommandStatus.REJECTED
            res = await send(w, "charging", {"charger": "garage", "action": "start"})
            assert not res["ok"] and "failed (Rejected): EV says no" in res["message"]
    finally:
        await r.stop()
        r.store.close()


async def test_charging_without_control_is_refused(rig: Rig) -> None:
    async with watching(rig.broker, EVENTS) as w:
        res = await send(w, "charging", {"charger": "garage", "action": "start"})
    assert not res["ok"] and "not available" in res["message"]


# ---------------------------------------------------------------------------- demand response


async def test_demand_response_is_stored_and_announced(rig: Rig) -> None:
    changes = rig.store.changes.subscribe()
    start, end = T0 + timedelta(hours=7), T0 + timedelta(hours=9)
    async with watching(rig.broker, EVENTS) as w:
        res = await send(
            w,
            "demand_response",
            {
                "event_id": "dr-42",
                "start": start.isoformat(),
                "end": end.isoformat(),
                "power_w": 3000,
                "request_id": "agg-7",
            },
        )
        assert res["ok"] and res["request_id"] == "agg-7"
        accepted = await w.wait_for(
            EVENTS, lambda m: m.json()["kind"] == "demand_response_accepted"
        )
        assert "dr-42" in accepted.json()["message"]
        res = await send(
            w,
            "demand_response",
            {
                "event_id": "dr-43",
                "start": start.isoformat(),
                "end": end.isoformat(),
                "price_bonus_per_kwh": 0.5,
            },
        )
        assert res["ok"]
        stored = rig.store.kv_get("demand_response")
        assert [(e["event_id"], e["power_w"], e["price_bonus_per_kwh"]) for e in stored] == [
            ("dr-42", 3000.0, None),
            ("dr-43", None, 0.5),
        ]
        assert stored[0]["start"] == start.isoformat()
        res = await send(w, "demand_response", {"event_id": "dr-42", "cancel": True})
        assert res["ok"]
        assert [e["event_id"] for e in rig.store.kv_get("demand_response")] == ["dr-43"]
    kinds = []
    while not changes.empty():
        c = changes.get_nowait()
        kinds.append((c.kind, c.key))
    assert kinds.count(("preferences", "demand_response")) == 3


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (
            {"start": "2025-06-02T17:00Z", "end": "2025-06-02T18:00Z", "power_w": 1},
            "'event_id' is required",
        ),
        ({"event_id": "x", "end": "2025-06-02T18:00Z", "power_w": 1}, "'start' is required"),
        (
            {
                "event_id": "x",
                "start": "2025-06-02T19:00Z",
                "end": "2025-06-02T18:00Z",
                "power_w": 1,
            },
            "must be after",
        ),
        (
            {
                "event_id": "x",
                "start": "2025-06-01T09:00Z",
                "end": "2025-06-01T10:00Z",
                "power_w": 1,
            },
            "in the past",
        ),
        (
            {
                "event_id": "x",
                "start": "2025-06-02T17:00Z",
                "end": "2025-06-05T17:00Z",
                "power_w": 1,
            },
            "at most 48 hours",
        ),
        (
            {"event_id": "x", "start": "2025-06-02T17:00Z", "end": "2025-06-02T18:00Z"},
            "give 'power_w' or 'price_bonus_per_kwh'",
        ),
        (
            {
                "event_id": "x",
                "start": "2025-06-02T17:00Z",
                "end": "2025-06-02T18:00Z",
                "power_w": -5,
            },
            "must be positive",
        ),
        (
            {
                "event_id": "x",
                "start": "2025-06-02T17:00Z",
                "end": "2025-06-02T18:00Z",
                "power_w": "3kW",
            },
            "must be a number",
        ),
        (
            {
                "event_id": "x",
                "start": "2025-06-02T17:00Z",
                "end": "2025-06-02T18:00Z",
                "price_bonus_per_kwh": 500,
            },
            "out of range",
        ),
        (
            {
                "event_id": "x",
                "start": "2025-06-02T17:00Z",
                "end": "2025-06-02T18:00Z",
                "power_w": 1,
                "cancel": "yes",
            },
            "'cancel' must be true or false",
        ),
        ({"event_id": "x", "start": "soon", "end": "2025-06-02T18:00Z", "power_w": 1}, "ISO 8601"),
    ],
)
async def test_invalid_demand_response_is_rejected(
    rig: Rig, body: dict[str, Any], why: str
) -> None:
    async with watching(rig.broker, EVENTS) as w:
        res = await send(w, "demand_response", body)
    assert res["kind"] == "command_rejected" and why in res["message"], res["message"]
    assert rig.store.kv_get("demand_response") is None


async def test_demand_response_limits_from_config(broker: Broker, tmp_path: Path) -> None:
    body = {"event_id": "x", "start": "2025-06-02T17:00Z", "end": "2025-06-02T18:00Z"}
    for prefs, extra, why in (
        ({"enabled": False}, {"power_w": 1000}, "demand response is disabled"),
        ({"max_power_w": 2000}, {"power_w": 3000}, "exceeds the allowed 2000 W"),
    ):
        r = make_rig(
            broker,
            tmp_path / why[:8].replace(" ", "_"),
            raw_extra={"preferences": {"demand_response": prefs}},
        )
        await r.start()
        try:
            async with watching(broker, EVENTS) as w:
                res = await send(w, "demand_response", {**body, **extra})
            assert res["kind"] == "command_rejected" and why in res["message"], res["message"]
        finally:
            await r.stop()
            r.store.close()


# ---------------------------------------------------------------------------- MQTT 5 replies


async def test_mqtt5_response_topic_and_correlation_data(rig: Rig) -> None:
    reply_topic = f"{BASE}/reply/dash-1"
    async with watching(rig.broker, reply_topic, EVENTS, protocol=aiomqtt.ProtocolVersion.V5) as w:
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = reply_topic
        props.CorrelationData = b"corr-99"
        await w.client.publish(
            f"{BASE}/set/override",
            json.dumps({"action": "pause", "vehicle": "car"}),
            qos=1,
            properties=props,
        )
        reply = await w.wait_for(reply_topic)
        assert reply.json()["ok"] is True and reply.json()["command"] == "set/override"
        assert reply.properties.CorrelationData == b"corr-99"
        ev = await w.wait_for(EVENTS, lambda m: m.json().get("command") == "set/override")
        assert ev.properties.CorrelationData == b"corr-99"
        props.CorrelationData = b"corr-100"
        await w.client.publish(f"{BASE}/set/override", b"{}", qos=1, properties=props)
        bad = await w.wait_for(reply_topic, lambda m: not m.json()["ok"])
        assert bad.properties.CorrelationData == b"corr-100"
        assert "'action' is required" in bad.json()["message"]


async def test_retained_commands_are_not_replayed(broker: Broker, tmp_path: Path) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as c:
        await c.publish(
            f"{BASE}/set/override",
            json.dumps({"action": "pause", "vehicle": "car"}),
            qos=1,
            retain=True,
        )
    r = make_rig(broker, tmp_path)
    await r.start()
    try:
        async with watching(broker, EVENTS) as w:
            res = await send(w, "override", {"action": "charge_now", "vehicle": "van"})
        assert res["ok"]
        assert overrides(r) == [("van", OverrideKind.CHARGE_NOW)]  # the retained pause was not run
    finally:
        await r.stop()
        r.store.close()
