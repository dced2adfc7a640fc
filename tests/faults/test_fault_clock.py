"""The clock steps (NTP corrections both ways) and DST changes while the car is discharging.

A gateway keeps running on a ManualClock shared with the simulated charger; after each step
the charger must again receive a bounded profile that starts at the new "now", and the plan
must be made again for the new time.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fault_support import PASSWORD, integrity, make_config, running, state_file, until

from simulators.battery import EvBattery
from simulators.charger import SimulatedCharger
from v2g_gateway.clock import ManualClock

VALIDITY_MIN = 5


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def bounded(p: dict[str, Any]) -> bool:
    """Invariant 4: validTo and a duration, within the configured validity."""
    sched = p["chargingSchedule"][0]
    span = _ts(p["validTo"]) - _ts(p["validFrom"])
    return (
        "validTo" in p
        and timedelta(0) < span <= timedelta(minutes=VALIDITY_MIN)
        and 0 < sched["duration"] <= VALIDITY_MIN * 60
        and sched["startSchedule"] == p["validFrom"]
    )


@pytest.mark.parametrize(
    "start",
    [
        datetime(2025, 3, 30, 0, 40, tzinfo=UTC),  # 01:40 CET, then clocks spring forward
        datetime(2025, 10, 26, 0, 40, tzinfo=UTC),  # 02:40 CEST, then the hour repeats
    ],
    ids=["dst-spring", "dst-autumn"],
)
async def test_clock_steps_and_dst_reissue_bounded_profiles_and_replan(
    tmp_path: Path, start: datetime
) -> None:
    clock = ManualClock(start)
    cfg = make_config(
        tmp_path / "state",
        preferences={
            "discharge_above_per_kwh": 0.01,
            "profile_validity_minutes": VALIDITY_MIN,
            "departures": [{"time": "07:30", "target_soc_percent": 60}],
        },
        prices={
            "tariff": [
                {"start": "17:00", "end": "21:00", "import_per_kwh": 0.45, "export_per_kwh": 0.4},
                {"start": "21:00", "end": "17:00", "import_per_kwh": 0.2, "export_per_kwh": 0.05},
            ]
        },
    )
    async with running(cfg, clock) as gw:
        sim = SimulatedCharger(
            f"ws://127.0.0.1:{gw.csms.port}", "garage", password=PASSWORD, clock=clock
        )
        sim_task = asyncio.create_task(sim.run())
        try:
            await asyncio.wait_for(sim.booted.wait(), 10)
            await sim.plug_in(EvBattery(60, 90.0, max_charge_w=11000, max_discharge_w=10000))

            async def step_and_check(to: datetime, what: str) -> None:
                solves, seen = gw.replanner.solves, len(sim.profiles)
                await clock.set(to)
                gw.controller.wake()

                def fresh_profile() -> bool:
                    return any(
                        to.replace(microsecond=0)
                        <= _ts(p["chargingProfile"]["validFrom"])
                        < to + timedelta(minutes=1)
                        for p in sim.profiles[seen:]
                    )

                await until(fresh_profile, f"a profile starting at the new time after {what}")
                await until(lambda: gw.replanner.solves > solves, f"a new plan after {what}")
                assert not gw_task_failed(gw)

            await until(lambda: bool(sim.profiles), "the first profile")
            await step_and_check(start + timedelta(minutes=40), "the DST change")
            await step_and_check(clock.now() + timedelta(hours=6), "an NTP step forward")
            await step_and_check(clock.now() - timedelta(hours=4), "an NTP step backward")
        finally:
            sim_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sim_task
        profiles = [p["chargingProfile"] for p in sim.profiles]
        assert profiles and all(bounded(p) for p in profiles), profiles
    assert integrity(state_file(cfg)) == "ok"


def gw_task_failed(gw: Any) -> bool:
    return any(
        t.done() and not t.cancelled() and t.exception() is not None
        for t in asyncio.all_tasks()
        if t.get_name() in ("gateway-under-test", "dispatch", "prices")
    )
