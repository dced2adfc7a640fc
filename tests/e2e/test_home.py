"""The whole home end to end: the real gateway, broker, store, two simulated chargers with cars
and a simulated home (grid meter, PV) on MQTT. The connection's limit holds for both cars when
the house load jumps; PV surplus goes into a car in "PV only"; a silent meter is unknown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
from e2e_helpers import PASSWORD, TZ, running, simulating, skeleton_config

from simulators.battery import EvBattery
from simulators.charger import SimulatedCharger
from simulators.home import HomeSimulator
from v2g_gateway.app import Gateway
from v2g_gateway.clock import AcceleratedClock, Clock

NOON = datetime(2026, 6, 15, 12, 0, tzinfo=TZ)
LIMIT_W = 16000.0
FLAT = {
    "tariff": [{"start": "00:00", "end": "00:00", "import_per_kwh": 0.30, "export_per_kwh": 0.08}]
}


def config(tmp: Path, port: int, **home: Any) -> Any:
    leave = (NOON + timedelta(hours=3)).strftime("%H:%M")
    return skeleton_config(
        tmp / "state",
        port,
        chargers=[
            {"id": cid, "password": PASSWORD, "max_charge_w": 11000, "max_discharge_w": 10000}
            for cid in ("garage", "carport")
        ],
        vehicles=[
            {"id": "car", "battery_kwh": 60, "reserve_soc_percent": 20, "charger": "garage"},
            {"id": "van", "battery_kwh": 60, "reserve_soc_percent": 20, "charger": "carport"},
        ],
        prices=FLAT,
        preferences={
            "degradation_cost_per_kwh": 0.03,
            "departures": [{"time": leave, "target_soc_percent": 80}],
        },
        home={
            "grid_power_topic": "home/meter/power",
            "pv_power_topic": "home/pv/power",
            "import_limit_w": LIMIT_W,
            "limit_margin_w": 200,
            "follow_min_interval_s": 5,
            "follow_step_w": 200,
            **home,
        },
    )


def sim(gw: Gateway, clock: Clock, cid: str) -> SimulatedCharger:
    return SimulatedCharger(
        f"ws://127.0.0.1:{gw.csms.port}",
        cid,
        password=PASSWORD,
        clock=clock,
        meter_interval_s=10,
        step_s=2,
    )


def car(soc: float) -> EvBattery:
    return EvBattery(60, soc, max_charge_w=11000, max_discharge_w=10000)


@contextlib.asynccontextmanager
async def home_sim(
    clock: Clock, port: int, chargers: list[SimulatedCharger], **kw: Any
) -> AsyncIterator[HomeSimulator]:
    home = HomeSimulator(clock, mqtt_port=port, chargers=chargers, publish_interval_s=2.0, **kw)
    task = asyncio.create_task(home.run())
    try:
        await asyncio.wait_for(home.connected.wait(), 10)
        yield home
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def first_limit(s: SimulatedCharger) -> float:
    p = s.profiles[-1]["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
    return float(p["limit"])


async def wait_for(check: Any, what: str, clock: Clock, within_s: float) -> None:
    deadline = clock.now() + timedelta(seconds=within_s)
    while not check():
        assert clock.now() < deadline, what
        await asyncio.sleep(0.02)


async def test_the_fuse_holds_for_two_cars_when_the_house_load_jumps(
    tmp_path: Path, mosquitto: Any
) -> None:
    clock = AcceleratedClock(NOON, speed=10)
    async with running(Gateway(config(tmp_path, mosquitto.port), clock)) as gw:
        a, b = sim(gw, clock, "garage"), sim(gw, clock, "carport")
        async with (
            simulating(a),
            simulating(b),
            home_sim(clock, mosquitto.port, [a, b], pv_kwp=0) as home,
        ):
            home.set_load(800.0)
            await a.plug_in(car(30.0))
            await b.plug_in(car(30.0))
            # both need about full power for their departure: the plan shares the connection
            await wait_for(
                lambda: a.power_w() > 1000 and b.power_w() > 1000, "no charging", clock, 300
            )
            await wait_for(lambda: a.profiles and b.profiles, "no profiles", clock, 60)
            await asyncio.sleep(1.0)
            assert first_limit(a) + first_limit(b) + 800.0 <= LIMIT_W + 100.0
            assert home.grid_w() <= LIMIT_W + 100.0
            # the oven and the heat pump: 9 kW more in the house
            before = len(a.profiles) + len(b.profiles)
            home.set_load(9800.0)
            jumped = clock.now()
            await wait_for(
                lambda: (
                    len(a.profiles) + len(b.profiles) > before
                    and first_limit(a) + first_limit(b) + 9800.0 <= LIMIT_W + 100.0
                ),
                "the cars were not reduced",
                clock,
                30,
            )
            reacted = (clock.now() - jumped).total_seconds()
            assert reacted < 10.0, reacted  # clock seconds (10x): well within a second of wall time
            await wait_for(
                lambda: home.grid_w() <= LIMIT_W + 100.0, "the fuse is exceeded", clock, 30
            )
            status = gw.health()["home"]
            assert status["import_limit_w"] == LIMIT_W and status["grid_w"] is not None


async def test_pv_surplus_goes_into_the_car(tmp_path: Path, mosquitto: Any) -> None:
    clock = AcceleratedClock(NOON, speed=10)
    cfg = config(tmp_path, mosquitto.port)
    async with running(Gateway(cfg, clock)) as gw:
        a = sim(gw, clock, "garage")
        async with simulating(a), home_sim(clock, mosquitto.port, [a]) as home:
            home.set_pv(6000.0)
            home.set_load(500.0)
            async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
                await client.publish("v2g/e2e/set/vehicle/car/mode", "pv_only", qos=1)
            await wait_for(
                lambda: gw.policy.preference("charge_mode", "car") == "pv_only",
                "mode not set",
                clock,
                30,
            )
            await a.plug_in(car(50.0))
            await wait_for(
                lambda: abs(a.power_w() - 5500.0) < 400.0, "surplus not followed", clock, 120
            )
            assert home.grid_w() < 400.0  # next to nothing exported or imported
            plan = gw.store.load_plan("car")
            assert plan is not None and plan["slots"][0]["reason"].startswith("PV only")
            # a cloud: the car follows the PV down, it does not charge from the grid
            home.set_pv(2500.0)
            await wait_for(lambda: a.power_w() < 2400.0, "did not follow the cloud", clock, 120)
            assert home.grid_w() < 400.0


async def test_a_silent_meter_falls_back_to_a_fair_share(tmp_path: Path, mosquitto: Any) -> None:
    clock = AcceleratedClock(NOON, speed=10)
    async with running(
        Gateway(config(tmp_path, mosquitto.port, silence_timeout_s=20), clock)
    ) as gw:
        a, b = sim(gw, clock, "garage"), sim(gw, clock, "carport")
        async with (
            simulating(a),
            simulating(b),
            home_sim(clock, mosquitto.port, [a, b], pv_kwp=0) as home,
        ):
            home.set_load(600.0)
            await a.plug_in(car(30.0))
            await b.plug_in(car(30.0))
            await wait_for(lambda: a.profiles and b.profiles, "no profiles", clock, 120)
            home.silent = True  # the meter stops: unknown, not zero
            await wait_for(lambda: gw.home.now().grid_w is None, "silence not noticed", clock, 60)
            await asyncio.sleep(2.0)
            await wait_for(
                lambda: (
                    first_limit(a) <= (LIMIT_W - 200) / 2 + 1
                    and first_limit(b) <= (LIMIT_W - 200) / 2 + 1
                ),
                "no fair share without the meter",
                clock,
                120,
            )
