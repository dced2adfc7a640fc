"""Grid simulator on a real mosquitto, the scenario runner and the fleet CLI on real websockets."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import aiomqtt
import pytest
from test_sim_charger import T0, csms_server, running

from simulators.charger import SimulatedCharger
from simulators.fleet import FleetError, main, run_fleet
from simulators.grid import GridSimulator
from simulators.scenario import load_scenario, run_scenario
from v2g_gateway.clock import ManualClock


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        pytest.skip("mosquitto not installed")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n", encoding="utf-8")
    proc = subprocess.Popen([exe, "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


async def connect_retry(port: int) -> aiomqtt.Client:
    for _ in range(100):
        client = aiomqtt.Client("127.0.0.1", port)
        try:
            await client.__aenter__()
            return client
        except aiomqtt.MqttError:
            await asyncio.sleep(0.05)  # the broker process is still starting
    raise AssertionError("broker did not start")


async def test_outage_on_mqtt_and_in_charger_voltage(broker: int) -> None:
    clock = ManualClock(T0)
    charger = SimulatedCharger("ws://127.0.0.1:1", "sim-0001", password=None, clock=clock)
    grid = GridSimulator(clock, mqtt_port=broker, grid_json=True, chargers=[charger], seed=2)
    sub = await connect_retry(broker)
    try:
        await sub.subscribe("home/#")
        task = asyncio.create_task(grid.run())
        got: list[tuple[str, str]] = []
        async with asyncio.timeout(10):
            async for msg in sub.messages:
                got.append((str(msg.topic), bytes(msg.payload).decode()))  # type: ignore[arg-type]
                topics = [t for t, _ in got]
                if "home/power" in topics and "home/grid" in topics and len(got) == 2:
                    grid.outage()
                    assert charger.grid_voltage == 0
                if any('"offline"' in p for _, p in got) and len(got) == 3:
                    grid.restore()
                if any('"online"' in p for _, p in got[3:]):
                    break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await sub.__aexit__(None, None, None)
    grid_msgs = [p for t, p in got if t == "home/grid"]
    assert grid_msgs == [
        '{"state": "online", "voltage": 230.0}',
        '{"state": "offline", "voltage": 0.0}',
        '{"state": "online", "voltage": 230.0}',
    ]
    power = [float(p) for t, p in got if t == "home/power"]
    assert power == [grid.home_w()]
    assert charger.grid_voltage == 230


async def test_grid_without_broker_keeps_going() -> None:
    clock = ManualClock(T0)
    charger = SimulatedCharger("ws://127.0.0.1:1", "sim-0001", password=None, clock=clock)
    grid = GridSimulator(clock, mqtt_port=free_port(), chargers=[charger])
    task = asyncio.create_task(grid.run())
    await asyncio.wait_for(grid.broker_down.wait(), 10)
    grid.outage()
    assert charger.grid_voltage == 0
    assert not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_scenario_runner_plugs_in_and_out_on_the_clock() -> None:
    sc = load_scenario("default")
    clock = ManualClock(sc.start_at.astimezone(UTC))
    async with csms_server() as csms:
        charger = SimulatedCharger(csms.url, "garage", password=None, clock=clock, dc=True)
        async with running(charger):
            events: list[str] = []
            runner = asyncio.create_task(
                run_scenario(sc, [charger], None, clock, on_event=lambda e: events.append(e.kind))
            )
            await clock.advance(0)
            await clock.set(sc.at(0, "17:30"))
            needs = await csms.next("NotifyEVChargingNeeds")
            assert needs["charging_needs"]["dc_charging_parameters"]["state_of_charge"] == 55
            assert needs["charging_needs"]["dc_charging_parameters"]["energy_amount"] == 15000
            assert needs["charging_needs"]["departure_time"] == "2024-10-07T05:30:00Z"
            assert charger.ev() is not None
            await clock.set(sc.at(1, "07:30"))
            ended = await csms.next("TransactionEvent")
            while ended["event_type"] != "Ended":
                ended = await csms.next("TransactionEvent")
            assert charger.ev() is None
            await clock.set(sc.end_at + timedelta(seconds=1))
            done = await asyncio.wait_for(runner, 10)
            assert [e.kind for e in done] == events == ["arrive", "depart"]


async def test_fleet_runs_chargers_and_reports() -> None:
    async with csms_server() as csms:
        report = await run_fleet(csms.url, 3, password="pw", meter_interval_s=1, duration_s=2)
    assert report.chargers == 3
    assert report.booted == 3
    assert report.messages >= 3 * 4  # boot, status, status Occupied, transaction started
    assert report.latency_p50_ms is not None and report.latency_p99_ms is not None
    assert report.latency_p50_ms <= report.latency_p99_ms
    assert sorted(a or "" for a in csms.auth)[0].startswith("Basic ")


def test_fleet_refuses_remote_and_unbounded(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "ws://10.1.2.3:9000", "--count", "1"]) == 2
    assert "this machine" in capsys.readouterr().err
    assert main(["--url", "ws://127.0.0.1:9000", "--count", "5000"]) == 2
    assert "--count" in capsys.readouterr().err
    with pytest.raises(FleetError, match="duration"):
        asyncio.run(run_fleet("ws://127.0.0.1:9", 1, password=None, duration_s=99999))
