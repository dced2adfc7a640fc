"""kill -9 of the daemon while it discharges a car: the charger stops on its own, the restart resumes.

The daemon runs as a real process on the system clock; the charger runs on its own ManualClock
(started at the same instant) so the test can move the charger past the profile's validTo without
waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tomli_w
from fault_support import (
    PASSWORD,
    Notify,
    config_dict,
    free_port,
    integrity,
    start_daemon,
    until,
)

from simulators.battery import EvBattery
from simulators.charger import SimulatedCharger
from v2g_gateway.clock import ManualClock
from v2g_gateway.config import parse_config
from v2g_gateway.model import Override, OverrideKind
from v2g_gateway.store import Store


def composite_limit(sim: SimulatedCharger) -> float:
    schedule = sim.on_composite(60, 1, "W").schedule
    return float(schedule["chargingSchedulePeriod"][0]["limit"])


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def discharge_profiles(sim: SimulatedCharger) -> list[dict[str, Any]]:
    out = []
    for p in sim.profiles:
        periods = p["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
        if any(q["limit"] < 0 for q in periods):
            out.append(p["chargingProfile"])
    return out


async def test_kill9_while_discharging_profile_expires_and_restart_reapplies(
    tmp_path: Path, notify: Notify
) -> None:
    port = free_port()
    d = config_dict(
        tmp_path / "state",
        gateway={"tick_seconds": 1},
        ocpp={"port": port},
        preferences={"profile_validity_minutes": 1},
    )
    config = tmp_path / "gateway.toml"
    config.write_text(tomli_w.dumps(d))
    cfg = parse_config(d)
    # The user asked to discharge for an hour (an override that must survive the crash).
    now = datetime.now(UTC)
    seed = Store.open(tmp_path / "state" / "state.sqlite", cfg)
    seed.put_override(
        Override(
            "o-1",
            "car",
            OverrideKind.DISCHARGE_NOW,
            now - timedelta(minutes=1),
            now + timedelta(hours=1),
        )
    )
    seed.close()

    proc = start_daemon(config, notify, tmp_path / "daemon.log")
    clock = ManualClock(now)
    sim = SimulatedCharger(
        f"ws://127.0.0.1:{port}",
        "garage",
        password=PASSWORD,
        clock=clock,
        meter_interval_s=60,
        step_s=10,
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
    )
    sim_task = asyncio.create_task(sim.run())
    proc2 = None
    try:
        await asyncio.to_thread(notify.wait_for, "READY=1")
        await asyncio.wait_for(sim.booted.wait(), 20)
        await sim.plug_in(EvBattery(60, 80.0, max_charge_w=11000, max_discharge_w=10000))
        await until(lambda: bool(discharge_profiles(sim)), "a discharge profile", 20)
        first = discharge_profiles(sim)[-1]
        # The charger's clock catches up with the wall clock the daemon stamped the profile with.
        await clock.set(max(clock.now(), _ts(first["validFrom"])))
        assert composite_limit(sim) < 0  # the car is discharging
        valid_to = _ts(first["validTo"])
        assert valid_to - now <= timedelta(minutes=2)  # bounded, invariant 4

        proc.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(proc.wait, 10) == -signal.SIGKILL
        await asyncio.wait_for(sim.disconnected.wait(), 10)

        # Nobody renews the profile: on the charger's clock it lapses at validTo by itself.
        await clock.set(valid_to + timedelta(seconds=11))
        await sim.settled()
        assert composite_limit(sim) >= 0
        assert sim.power_w(1) >= 0
        assert integrity(tmp_path / "state" / "state.sqlite") == "ok"

        # Restart: state comes back from SQLite, the charger reconnects, the plan is re-applied.
        n_discharge = len(discharge_profiles(sim))
        await clock.set(datetime.now(UTC))
        notify.seen.clear()
        connects = sim.connects
        proc2 = start_daemon(config, notify, tmp_path / "daemon.log")
        await asyncio.to_thread(notify.wait_for, "READY=1")
        await until(lambda: sim.connects > connects, "the charger reconnecting", 30)
        # The simulator boots on every connect, so this is a new plug session for the gateway:
        # it discharges again on the first reading of it, not on the one from before the crash.
        for _ in range(20):  # a reading every minute of charger time, until one is taken
            if len(discharge_profiles(sim)) > n_discharge:
                break
            await clock.advance(61)
            await sim.settled()
            with contextlib.suppress(AssertionError):
                await until(lambda: len(discharge_profiles(sim)) > n_discharge, "a profile", 5)
        await until(lambda: len(discharge_profiles(sim)) > n_discharge, "a re-applied profile", 30)
        again = discharge_profiles(sim)[-1]
        assert again["validTo"] >= first["validTo"]  # a new request, as long-lived as the first
        await clock.set(_ts(again["validFrom"]))  # the charger's clock meets the gateway's
        installed = [(p.profile_id, p.purpose, [q.limit for q in p.periods]) for p in sim.installed]
        assert composite_limit(sim) < 0, (again, installed, sim.transaction_id(1))
        proc2.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc2.wait, 10) == 0
    finally:
        sim_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sim_task
        for p in (proc, proc2):
            if p is not None and p.poll() is None:
                p.kill()
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "state.sqlite")) as db:
        override = db.execute("SELECT cancelled_at FROM overrides WHERE override_id='o-1'")
        assert override.fetchone() == (None,)  # the user's instruction outlived the crash
        binding = db.execute(
            "SELECT charger_id, evse_id FROM plug_sessions WHERE vehicle_id='car' AND ended_at IS NULL"
        )
        assert binding.fetchone() == ("garage", 1)
    assert integrity(tmp_path / "state" / "state.sqlite") == "ok"
