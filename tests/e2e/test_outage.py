"""Grid outage end to end: the real gateway, broker, store, simulated charger and grid.

Outage -> backup at the home's load -> restoration with the energy told; a flapping grid that
never trips; a silent meter that is unknown, not an outage; a car at the outage floor that is not
discharged; and a user override that still wins during an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
from e2e_helpers import TZ, charger, follow, running, simulating, skeleton_config, step_until

from simulators.battery import EvBattery
from simulators.charger import SimulatedCharger
from simulators.grid import GridSimulator
from v2g_gateway.app import Gateway
from v2g_gateway.clock import AcceleratedClock, Clock

NOON = datetime(2026, 1, 15, 12, 0, tzinfo=TZ)  # off-peak: the plan does not discharge by itself
OUTAGE = {
    "mqtt_topic": "home/grid",
    "payload_outage": "offline",
    "payload_normal": "online",
    "home_power_topic": "home/power",
    "debounce_s": 2,
    "restore_holdoff_s": 60,
    "silence_timeout_s": 120,
    "floor_soc_percent": 20,
    "fixed_backup_w": 2000,
}


def car(soc: float) -> EvBattery:
    return EvBattery(10, soc, max_charge_w=11000, max_discharge_w=10000, min_soc_percent=5)


def kinds(gw: Gateway) -> list[str]:
    return [n["kind"] for n in gw.store.recent_notifications(200)]


def note(gw: Gateway, kind: str) -> dict[str, Any]:
    return next(n for n in gw.store.recent_notifications(200) if n["kind"] == kind)


def limits(sim: SimulatedCharger) -> list[float]:
    """The limit each profile starts with: what the charger does at once (every profile ends
    with a non-negative tail)."""
    return [
        p["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"]
        for p in sim.profiles
    ]


def config(tmp_path: Path, port: int, **outage: Any) -> Any:
    return skeleton_config(tmp_path / "state", port, outage={**OUTAGE, **outage})


@contextlib.asynccontextmanager
async def grid_sim(
    clock: Clock, port: int, sim: SimulatedCharger, **kw: Any
) -> AsyncIterator[GridSimulator]:
    grid = GridSimulator(
        clock,
        mqtt_port=port,
        chargers=[sim],
        publish_interval_s=kw.pop("publish_interval_s", 30.0),
        **kw,
    )
    task = asyncio.create_task(grid.run())
    try:
        yield grid
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Any, what: str, sim: SimulatedCharger, within_s: float) -> None:
    await step_until(sim, check, what, within_s)


async def test_outage_backs_up_the_home_and_restores(tmp_path: Path, mosquitto: Any) -> None:
    clock = AcceleratedClock(NOON, speed=60)
    cfg = config(tmp_path, mosquitto.port)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock)) as sim,
        grid_sim(clock, mosquitto.port, sim) as grid,
    ):
        ev = car(70.0)
        await sim.plug_in(ev)
        await until(
            lambda: gw.grid.status()["home_w"] is not None, "home power never heard", sim, 300
        )
        await follow(sim, 30)
        assert sim.power_w() >= 0 and not gw.store.snapshot(clock.now()).grid_outage

        grid.outage()
        await until(lambda: sim.power_w() < 0, "backup never started", sim, 120)
        assert "grid_outage" in kinds(gw)
        assert gw.health()["grid"]["state"] == "outage"
        # Load following: the car covers the home's load (within the 200 W step).
        home = grid.home_w()
        assert abs(-limits(sim)[-1] - home) <= 250, (limits(sim)[-1], home)
        at_outage = ev.soc_percent  # (above 70 % when the car charged before it)
        await follow(sim, 600)
        assert sim.power_w() < 0 and ev.soc_percent < at_outage

        grid.restore()
        await follow(sim, 30)
        assert gw.store.snapshot(clock.now()).grid_outage  # still in the hold-off
        await until(lambda: "grid_restored" in kinds(gw), "never restored", sim, 300)
        await until(lambda: sim.power_w() >= 0, "still discharging after restore", sim, 120)
        restored = note(gw, "grid_restored")
        supplied = restored["data"]["energy_wh"]
        # ~11 minutes at a few hundred W to a couple of kW: tens to hundreds of Wh.
        assert 20 < supplied < 1000, restored
        assert "kWh to the home" in restored["message"]
        assert gw.health()["grid"]["state"] == "normal"


async def test_a_flapping_grid_is_debounced(tmp_path: Path, mosquitto: Any) -> None:
    clock = AcceleratedClock(NOON, speed=10)
    cfg = config(tmp_path, mosquitto.port, debounce_s=30)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock)) as sim,
        grid_sim(clock, mosquitto.port, sim) as grid,
    ):
        await sim.plug_in(car(70.0))
        await follow(sim, 10)
        for _ in range(6):  # out for one physics step (5-10 s), back for one: < 30 s debounce
            grid.outage()
            await follow(sim, 5)
            grid.restore()
            await follow(sim, 5)
        await follow(sim, 20)
        assert "grid_outage" not in kinds(gw)
        assert all(x >= 0 for x in limits(sim))
        # ...while an outage that holds is still declared.
        grid.outage()
        await until(lambda: "grid_outage" in kinds(gw), "held outage not declared", sim, 60)


async def test_a_silent_meter_is_unknown_not_an_outage(tmp_path: Path, mosquitto: Any) -> None:
    clock = AcceleratedClock(NOON, speed=60)
    cfg = config(
        tmp_path,
        mosquitto.port,
        mqtt_topic="home/meter",
        json_path="em:0.a_voltage",
        voltage_below_v=180,
        silence_timeout_s=60,
        home_power_topic=None,
    )
    async with running(Gateway(cfg, clock)) as gw, simulating(charger(gw, clock)) as sim:
        await sim.plug_in(car(70.0))
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            for _ in range(3):
                body = {"em:0": {"a_voltage": 231.5, "a_freq": 50.0}}
                await client.publish("home/meter", json.dumps(body))
                await follow(sim, 10)
        await until(
            lambda: "mqtt:home/meter" in gw.grid.status()["sources"], "meter not heard", sim, 60
        )
        # The meter stops (its Wi-Fi dropped): after the timeout the state is unknown.
        await until(lambda: "grid_unknown" in kinds(gw), "silence never noticed", sim, 300)
        st = gw.health()["grid"]
        assert st["state"] == "unknown" and st["unknown_sources"] == ["mqtt:home/meter"]
        await follow(sim, 300)
        assert not gw.store.snapshot(clock.now()).grid_outage
        assert "grid_outage" not in kinds(gw)
        assert all(x >= 0 for x in limits(sim))


async def test_outage_with_the_car_at_the_floor_does_not_discharge(
    tmp_path: Path, mosquitto: Any
) -> None:
    clock = AcceleratedClock(NOON, speed=60)
    cfg = config(tmp_path, mosquitto.port, floor_soc_percent=30)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock)) as sim,
        grid_sim(clock, mosquitto.port, sim) as grid,
    ):
        grid.outage()  # the grid is already down when the car at the floor arrives
        await until(lambda: "grid_outage" in kinds(gw), "outage not declared", sim, 60)
        ev = car(30.0)
        await sim.plug_in(ev)
        await until(lambda: len(sim.profiles) > 0, "no profile for the car", sim, 120)
        await follow(sim, 600)
        assert limits(sim) and all(x >= 0 for x in limits(sim))  # never a discharge
        assert limits(sim)[-1] == 0  # hold: nothing from the grid, nothing from the car
        assert ev.soc_percent >= 30.0 - 0.01
        log = gw.store.dispatch_log(5)
        assert any("outage floor 30 %" in row["reason"] for row in log), log


async def test_a_user_override_wins_during_an_outage(tmp_path: Path, mosquitto: Any) -> None:
    clock = AcceleratedClock(NOON, speed=60)
    cfg = config(tmp_path, mosquitto.port)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock)) as sim,
        grid_sim(clock, mosquitto.port, sim) as grid,
        aiomqtt.Client("127.0.0.1", mosquitto.port) as client,
    ):
        ev = car(70.0)
        await sim.plug_in(ev)
        await client.subscribe("v2g/e2e/events")

        async def command(body: dict[str, Any], want: str) -> None:
            await client.publish("v2g/e2e/set/override", json.dumps(body))
            async for m in client.messages:
                kind = json.loads(bytes(m.payload))["kind"]  # type: ignore[arg-type]
                if kind in (want, "command_failed", "command_error"):
                    assert kind == want
                    return

        await command({"action": "pause", "vehicle": "car", "minutes": 60}, "override_accepted")
        await follow(sim, 10)
        grid.outage()
        await until(lambda: "grid_outage" in kinds(gw), "outage not declared", sim, 60)
        await follow(sim, 300)
        # Paused (held at 0 W) by the user: no backup profile while the hold lasts.
        assert all(x >= 0 for x in limits(sim))
        assert gw.store.dispatch_log(1)[0]["reason"] == "held at 0 W by the user (pause)"
        await command({"action": "cancel", "vehicle": "car"}, "override_cancelled")
        await until(lambda: sim.power_w() < 0, "backup never started after cancel", sim, 120)
        assert gw.store.snapshot(clock.now()).grid_outage
