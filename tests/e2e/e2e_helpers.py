"""Shared parts of the end-to-end tests: a gateway config, running it, following the simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from simulators.charger import SimulatedCharger
from v2g_gateway.app import Gateway
from v2g_gateway.config import Config, parse_config

PASSWORD = "e2e-skeleton-password"
TZ = ZoneInfo("Europe/Berlin")
RESERVE = 40.0


def skeleton_config(state_dir: Path, broker_port: int, **overrides: dict[str, Any]) -> Config:
    """One charger, one 10 kWh car, a 17:00-21:00 peak tariff; tables in `overrides` replace."""
    return parse_config(
        {
            "gateway": {
                "id": "e2e",
                "state_dir": str(state_dir),
                "timezone": "Europe/Berlin",
                "tick_seconds": 30,
            },
            "ocpp": {"host": "127.0.0.1", "port": 0},
            "chargers": [
                {
                    "id": "garage",
                    "password": PASSWORD,
                    "max_charge_w": 11000,
                    "max_discharge_w": 10000,
                }
            ],
            "vehicles": [{"id": "car", "battery_kwh": 10, "reserve_soc_percent": RESERVE}],
            "prices": {
                "tariff": [
                    {
                        "start": "17:00",
                        "end": "21:00",
                        "import_per_kwh": 0.45,
                        "export_per_kwh": 0.35,
                    },
                    {
                        "start": "21:00",
                        "end": "17:00",
                        "import_per_kwh": 0.20,
                        "export_per_kwh": 0.05,
                    },
                ]
            },
            "preferences": {"discharge_above_per_kwh": 0.30, "degradation_cost_per_kwh": 0.03},
            "outage": {"enabled": False},
            "mqtt": {"host": "127.0.0.1", "port": broker_port, "min_publish_interval_s": 0.0},
        }
        | overrides
    )


def charger(gw: Gateway, clock: Any, **kw: Any) -> SimulatedCharger:
    return SimulatedCharger(
        f"ws://127.0.0.1:{gw.csms.port}",
        "garage",
        password=PASSWORD,
        clock=clock,
        meter_interval_s=30,
        step_s=5,
        **kw,
    )


@contextlib.asynccontextmanager
async def simulating(sim: SimulatedCharger) -> AsyncIterator[SimulatedCharger]:
    task = asyncio.create_task(sim.run())
    try:
        await asyncio.wait_for(sim.booted.wait(), 10)
        yield sim
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def step_until(sim: SimulatedCharger, check: Any, what: str, within_s: float) -> list[float]:
    """Follow the simulator's physics step by step (clock time) until `check()`; returns the SoCs seen."""
    seen: list[float] = []
    at = sim.clock.now()
    deadline = at + timedelta(seconds=within_s)
    while not check():
        assert at < deadline, what
        at += timedelta(seconds=sim.step_s)
        await sim.settled(at)
        ev = sim.ev()
        if ev is not None:
            seen.append(ev.soc_percent)
    return seen


@contextlib.asynccontextmanager
async def running(gw: Gateway) -> AsyncIterator[Gateway]:
    task = asyncio.create_task(gw.run())
    await asyncio.wait_for(gw.ready.wait(), 10)
    try:
        yield gw
    finally:
        gw.stop.set()
        await asyncio.wait_for(task, 10)


async def follow(sim: SimulatedCharger, seconds: float) -> list[float]:
    """Let the simulator's physics run `seconds` of clock time; returns the SoCs seen."""
    seen: list[float] = []
    end = sim.clock.now() + timedelta(seconds=seconds)
    at = sim.clock.now()
    while at < end:
        at += timedelta(seconds=sim.step_s)
        await sim.settled(at)
        ev = sim.ev()
        if ev is not None:
            seen.append(ev.soc_percent)
    return seen
