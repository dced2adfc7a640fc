"""The MQTT broker killed (SIGKILL) and restarted while the gateway discharges a car.

Dispatch must not notice: profiles keep being renewed while the broker is gone. When it comes
back empty (no persistence, so every retained message is lost), the gateway must reconnect by
itself and publish its state again.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
from fault_support import PASSWORD, make_config, running, until

from simulators.battery import EvBattery
from simulators.charger import SimulatedCharger
from v2g_gateway.clock import ManualClock

BASE = "v2g/faults"


async def retained(host: str, port: int, topic: str) -> dict[str, bytes]:
    """What a fresh subscriber gets from the broker for `topic` (retained messages)."""
    got: dict[str, bytes] = {}
    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(topic)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                async for m in client.messages:
                    got[m.topic.value] = bytes(m.payload)  # type: ignore[arg-type]
    return got


def discharges(sim: SimulatedCharger) -> int:
    return sum(
        any(
            q["limit"] < 0
            for q in p["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
        )
        for p in sim.profiles
    )


async def test_broker_killed_and_restarted(tmp_path: Path, mosquitto: Any) -> None:
    clock = ManualClock(datetime(2025, 1, 15, 16, tzinfo=UTC))
    cfg = make_config(
        tmp_path / "state",
        preferences={"discharge_above_per_kwh": 0.01, "profile_validity_minutes": 3},
        mqtt={"enabled": True, "host": mosquitto.host, "port": mosquitto.port},
    )
    async with running(cfg, clock) as gw:
        assert gw.mqtt is not None
        await asyncio.wait_for(gw.mqtt.connected.wait(), 15)
        sim = SimulatedCharger(
            f"ws://127.0.0.1:{gw.csms.port}", "garage", password=PASSWORD, clock=clock
        )
        sim_task = asyncio.create_task(sim.run())
        try:
            await asyncio.wait_for(sim.booted.wait(), 10)
            await sim.plug_in(EvBattery(60, 85.0, max_charge_w=11000, max_discharge_w=10000))
            await until(lambda: discharges(sim) > 0, "discharging")
            before = await retained(mosquitto.host, mosquitto.port, f"{BASE}/#")
            assert before.get(f"{BASE}/availability") == b"online"

            # SIGKILL: no goodbye to anyone, retained state gone with the process.
            assert mosquitto.process is not None
            mosquitto.process.kill()
            mosquitto.process.wait(5)
            if mosquitto.process.stderr is not None:
                mosquitto.process.stderr.close()
            mosquitto.process = None
            await until(lambda: not gw.mqtt.connected.is_set(), "the bridge to notice")
            assert gw.health()["mqtt"] == "disconnected"

            # Dispatch goes on: the profile is renewed before it runs out.
            sent = discharges(sim)
            for _ in range(3):
                await clock.advance(150)
                gw.controller.wake()
                await until(
                    lambda n=sent: discharges(sim) > n, "a renewal while the broker is down"
                )
                sent = discharges(sim)
            assert all(not t.done() for t in asyncio.all_tasks() if t.get_name() == "dispatch")

            await asyncio.to_thread(mosquitto.start)  # back, empty
            await until(gw.mqtt.connected.is_set, "the bridge to reconnect", 30)
            after: dict[str, bytes] = {}

            async def republished() -> None:
                nonlocal after
                while not (
                    after.get(f"{BASE}/availability") == b"online"
                    and f"{BASE}/charger/garage" in after
                    and f"{BASE}/vehicle/car" in after
                ):
                    after = await retained(mosquitto.host, mosquitto.port, f"{BASE}/#")

            await asyncio.wait_for(republished(), 30)
            assert gw.health()["mqtt"] == "connected"
            await clock.advance(150)
            gw.controller.wake()
            await until(lambda: discharges(sim) > sent, "dispatch after the broker is back")
        finally:
            sim_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sim_task
