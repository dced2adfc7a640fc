"""What Home Assistant is told over a real broker: a refused command is visible (retained
`last_command`), a charger's device gets its BootNotification identity, a removed vehicle's
retained state topics are deleted with its entities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mqtt_helpers import BASE, T0, Broker, Rig, make_config, watching
from test_mqtt_commands import send

from v2g_gateway.clock import ManualClock
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.model import ChargerBooted
from v2g_gateway.mqtt.bridge import MqttBridge
from v2g_gateway.mqtt.connection import Backoff
from v2g_gateway.store import Store

HA = "homeassistant"


async def test_a_refused_command_is_retained_with_its_reason(rig: Rig) -> None:
    async with watching(rig.broker, f"{BASE}/#") as w:
        res = await send(w, "vehicle/car/reserve_soc_percent", b"5")
        assert res["ok"] is False
        got = await w.wait_for(f"{BASE}/last_command", lambda m: m.json()["ok"] is False)
        body = got.json()
        assert body["outcome"] == "refused"
        assert body["command"] == "set/vehicle/car/reserve_soc_percent"
        assert "reserve must be between 10 and 100 %, got 5" in body["message"]
        await send(w, "vehicle/car/mode", b"hold")
        ok = await w.wait_for(f"{BASE}/last_command", lambda m: m.json()["ok"] is True)
        assert ok.json()["outcome"] == "accepted"
    async with watching(rig.broker, f"{BASE}/last_command") as late:  # a dashboard opened later
        seen = await late.wait_for(f"{BASE}/last_command")
        assert seen.retain and seen.json()["command"] == "set/vehicle/car/mode"


async def test_boot_notification_names_the_charger_device(rig: Rig) -> None:
    topic = f"{HA}/sensor/v2g_home_charger_garage_power/config"
    async with watching(rig.broker, f"{HA}/#") as w:
        first = await w.wait_for(topic)
        assert first.json()["device"]["manufacturer"] == "OCPP 2.0.1 charger"
        rig.store.apply(
            ChargerBooted(
                "garage", T0, vendor="Acme", model="Bidi 11", serial="SN-7", firmware="1.2.3"
            )
        )
        dev = (
            await w.wait_for(topic, lambda m: m.json()["device"]["manufacturer"] == "Acme")
        ).json()["device"]
        assert (dev["model"], dev["serial_number"], dev["sw_version"]) == (
            "Bidi 11",
            "SN-7",
            "1.2.3",
        )


def _bridge(broker: Broker, tmp: Path, vehicles: list[dict[str, Any]]) -> Rig:
    cfg = make_config(broker, tmp / "state", {"vehicles": vehicles})
    store = Store.open(tmp / "shared.sqlite", cfg)
    clock = ManualClock(T0)
    policy = Policy(cfg, store, clock)
    return Rig(
        broker,
        cfg,
        store,
        policy,
        clock,
        MqttBridge(cfg, store, policy, clock, backoff=Backoff(0.05, 0.2)),
    )


async def test_a_removed_vehicle_leaves_no_retained_state(broker: Broker, tmp_path: Path) -> None:
    both = [{"id": "car", "battery_kwh": 60}, {"id": "van", "battery_kwh": 75}]
    r = _bridge(broker, tmp_path, both)
    async with watching(broker, f"{BASE}/#") as w:
        await r.start()
        await w.wait_for(f"{BASE}/vehicle/van")
        await w.wait_for(f"{BASE}/plan/van")
    await r.stop()
    r.store.close()

    r = _bridge(broker, tmp_path, both[:1])  # the van left the config
    async with watching(broker, f"{BASE}/#") as w:
        await r.start()
        await w.wait_for(f"{BASE}/vehicle/van", lambda m: m.payload == b"")
        await w.wait_for(f"{BASE}/plan/van", lambda m: m.payload == b"")
        await w.wait_for(f"{BASE}/vehicle/car")
    async with watching(broker, f"{BASE}/#", f"{BASE}/availability") as late:
        await late.wait_for(f"{BASE}/availability")
        await late.wait_for(f"{BASE}/vehicle/car")
        retained = {m.topic for m in late.messages if m.retain and m.payload}
        assert not [t for t in retained if "/van" in t], retained
        assert f"{BASE}/vehicle/car" in retained
    await r.stop()
    r.store.close()
