"""kill -9 of the real `v2g-gateway run` process while a 2.1 charger discharges: the charger stops
discharging by itself once its profile's maxOfflineDuration has passed (OCPP 2.1's fail-safe, on
top of the profile's own expiry, which is a quarter of an hour away here)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from datetime import timedelta
from pathlib import Path

from daemon_support import Notify, start_daemon
from mosquitto import free_port

from simulators.battery import EvBattery
from simulators.charger import SimulatedCharger
from v2g_gateway.clock import SystemClock

PASSWORD = "daemon-test-password-21"
MAX_OFFLINE_S = 2
STEP_S = 0.25


def write_config(tmp: Path, ocpp_port: int) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(
        f"""
[gateway]
id = "proc21"
state_dir = "state"
timezone = "Europe/Berlin"
log_format = "json"
tick_seconds = 1
[ocpp]
host = "127.0.0.1"
port = {ocpp_port}
max_offline_s = {MAX_OFFLINE_S}
[[chargers]]
id = "garage"
password_file = "garage.secret"
ocpp_version = "2.1"
[[vehicles]]
id = "car"
battery_kwh = 10
reserve_soc_percent = 40
id_tokens = ["car-token"]
[prices]
source = "tariff"
[[prices.tariff]]
start = "00:00"
end = "00:00"
import_per_kwh = 0.45
export_per_kwh = 0.35
[preferences]
discharge_above_per_kwh = 0.30
[outage]
enabled = false
[mqtt]
host = "127.0.0.1"
port = {free_port()}
"""
    )
    (tmp / "garage.secret").write_text(PASSWORD + "\n")
    return path


async def until(sim: SimulatedCharger, check: object, what: str, within_s: float) -> None:
    """Follow the charger's physics (real time) until `check()` holds."""
    assert callable(check)
    deadline = sim.clock.now() + timedelta(seconds=within_s)
    at = sim.clock.now()
    while not check():
        assert at < deadline, what
        at += timedelta(seconds=STEP_S)
        await sim.settled(at)


async def test_kill_9_makes_the_2_1_charger_stop_discharging_by_itself(
    tmp_path: Path, notify: Notify
) -> None:
    port = free_port()
    proc = start_daemon(write_config(tmp_path, port), notify, tmp_path / "run.log")
    clock = SystemClock()
    sim = SimulatedCharger(
        f"ws://127.0.0.1:{port}",
        "garage",
        password=PASSWORD,
        clock=clock,
        dc=True,
        ocpp_version="2.1",
        step_s=STEP_S,
        meter_interval_s=5,
        reconnect_min_s=30,  # stays away once the gateway is gone
    )
    task: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(notify.wait_for, "READY=1")
        task = asyncio.create_task(sim.run())
        await asyncio.wait_for(sim.booted.wait(), 10)
        car = EvBattery(10, 70.0, max_charge_w=11000, max_discharge_w=7000, min_soc_percent=5)
        await sim.plug_in(car, id_token="car-token")
        await until(sim, lambda: sim.power_w() < 0, "never discharged", 30)
        profile = sim.installed[-1]
        assert profile.max_offline_s == MAX_OFFLINE_S and profile.invalid_after_offline
        assert profile.valid_to is not None and profile.valid_to > clock.now() + timedelta(
            minutes=5
        )  # its own expiry is far away: only the offline rule can stop it soon
        proc.kill()  # SIGKILL: no goodbye, no last profile
        await asyncio.to_thread(proc.wait, 10)
        await asyncio.wait_for(sim.disconnected.wait(), 10)
        gone = sim.book.offline_since
        assert gone is not None
        assert sim.power_w() < 0  # still discharging on the profile it holds
        await until(sim, lambda: sim.power_w() >= 0, "went on discharging", 4 * MAX_OFFLINE_S)
        stopped = clock.now()
        offline_s = (stopped - gone).total_seconds()
        assert MAX_OFFLINE_S - STEP_S <= offline_s <= MAX_OFFLINE_S + 4 * STEP_S, offline_s
        assert not any(p.invalid_after_offline for p in sim.installed)  # void for good
        assert car.soc_percent > 40.0
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
