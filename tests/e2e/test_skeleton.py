"""The walking skeleton end to end: real websocket, real mosquitto, real SQLite, simulated charger.

A car plugs in during a tariff peak with SoC above its reserve: the gateway discharges it with a
negative-limit profile that expires on its own, the simulated SoC falls, state and events appear
on MQTT, and discharging stops at the reserve.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
from e2e_helpers import RESERVE, TZ, charger, running, simulating, skeleton_config, step_until

from simulators.battery import EvBattery
from v2g_gateway.app import Gateway
from v2g_gateway.clock import AcceleratedClock


async def test_peak_discharge_stops_at_reserve(tmp_path: Path, mosquitto: Any) -> None:
    start = datetime(2026, 1, 15, 17, 0, tzinfo=TZ)
    clock = AcceleratedClock(start, speed=360)
    cfg = skeleton_config(tmp_path / "state", mosquitto.port)
    received: list[aiomqtt.Message] = []
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as sub:
        await sub.subscribe("v2g/e2e/#")

        async def collect() -> None:
            async for m in sub.messages:
                received.append(m)

        collector = asyncio.create_task(collect())
        async with running(Gateway(cfg, clock)) as gw:
            async with simulating(charger(gw, clock)) as sim:
                ev = EvBattery(
                    10, 50.0, max_charge_w=11000, max_discharge_w=10000, min_soc_percent=5
                )
                await sim.plug_in(ev)
                await step_until(sim, lambda: sim.power_w() < 0, "discharge never started", 3600)
                socs = await step_until(
                    sim,
                    lambda: ev.soc_percent < RESERVE + 2 and sim.power_w() >= 0,
                    "discharge never stopped",
                    4 * 3600,
                )
                # Stays stopped for a few more meter intervals.
                t_end = clock.now() + timedelta(seconds=120)
                while clock.now() < t_end:
                    await sim.settled(clock.now() + timedelta(seconds=sim.step_s))
                    socs.append(ev.soc_percent)
                    assert sim.power_w() >= 0, "discharge resumed at the reserve"
                assert min(socs) >= RESERVE, f"SoC fell to {min(socs):.2f} % below the reserve"
                assert min(socs) < RESERVE + 2  # it did use what was above the reserve
            state = gw.store.snapshot(clock.now())
            assert state.vehicles["car"].soc_percent is not None
            log = gw.store.dispatch_log(200)
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await collector

    discharge = [
        p
        for p in sim.profiles
        if any(
            per["limit"] < 0
            for sched in p["chargingProfile"]["chargingSchedule"]
            for per in sched["chargingSchedulePeriod"]
        )
    ]
    assert discharge, "no negative-limit profile reached the charger"
    prof = discharge[0]["chargingProfile"]
    assert prof["chargingProfileKind"] == "Absolute"
    assert prof["chargingProfilePurpose"] in ("TxProfile", "TxDefaultProfile")
    sched = prof["chargingSchedule"][0]
    assert sched["chargingRateUnit"] == "W" and "startSchedule" in sched
    valid_from = datetime.fromisoformat(prof.get("validFrom", sched["startSchedule"]))
    valid_to = datetime.fromisoformat(prof["validTo"])
    assert timedelta(0) < valid_to - valid_from <= timedelta(minutes=15)
    assert any(e["limit_w"] is not None and e["limit_w"] < 0 for e in log)
    # The plan's slot boundary inside a profile's validity went to the charger as a later
    # period: it stopped discharging on time by itself.
    assert any(
        len(sched["chargingSchedulePeriod"]) > 1
        and sched["chargingSchedulePeriod"][0]["limit"]
        < 0
        <= sched["chargingSchedulePeriod"][-1]["limit"]
        for p in sim.profiles
        for sched in p["chargingProfile"]["chargingSchedule"]
    )

    by_topic: dict[str, list[bytes]] = {}
    for m in received:
        by_topic.setdefault(str(m.topic), []).append(bytes(m.payload))  # type: ignore[arg-type]
    assert by_topic["v2g/e2e/availability"][0] == b"online"
    vehicle = json.loads(by_topic["v2g/e2e/vehicle/car"][-1])
    assert 0 <= vehicle["soc_percent"] <= 100
    events = [json.loads(p)["kind"] for p in by_topic.get("v2g/e2e/events", [])]
    assert "dispatch_started" in events and "dispatch_stopped" in events, events
