"""Outage reaction time: a grid-meter message on MQTT -> the SetChargingProfile at the charger.

    .venv/bin/python bench/bench_outage.py [--trials 200]

The whole gateway (Gateway: csms, store, controller, MQTT bridge, outage detector) on the system
clock, a real mosquitto (tests/mosquitto.py) and the simulated charger on loopback with a plugged
car. Each trial publishes "offline" on the grid topic and times until the simulated charger
receives the backup (negative) profile, then publishes "online" and times until it receives the
normal profile again. `debounce_s` and `restore_holdoff_s` are 0 here: the figures are the
gateway's own reaction time; a real install adds its debounce and hold-off on purpose.
Printed: p50 / p99 / max in milliseconds for outage and restoration. Target p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from mosquitto import Broker, start_broker  # noqa: E402

from simulators.battery import EvBattery  # noqa: E402
from simulators.charger import SimulatedCharger  # noqa: E402
from v2g_gateway.app import Gateway  # noqa: E402
from v2g_gateway.clock import SystemClock  # noqa: E402
from v2g_gateway.config import Config, parse_config  # noqa: E402

PASSWORD = "bench-outage-password"
TOPIC = "home/grid"
BACKUP_W = 2000


def config(broker: Broker, state: Path) -> Config:
    return parse_config(
        {
            "gateway": {"id": "bench", "state_dir": str(state), "log_level": "warning"},
            "ocpp": {"host": "127.0.0.1", "port": 0},
            "chargers": [{"id": "garage", "password": PASSWORD, "max_discharge_w": 10000}],
            "vehicles": [{"id": "car", "battery_kwh": 60, "reserve_soc_percent": 40}],
            # Flat prices, low export: the plan itself never discharges, so every negative
            # profile the charger sees is the outage's.
            "prices": {
                "tariff": [
                    {
                        "start": "00:00",
                        "end": "00:00",
                        "import_per_kwh": 0.3,
                        "export_per_kwh": 0.05,
                    }
                ]
            },
            "outage": {
                "mqtt_topic": TOPIC,
                "debounce_s": 0,
                "restore_holdoff_s": 0,
                "charger_voltage_below_v": None,
                "fixed_backup_w": BACKUP_W,
            },
            "mqtt": {"host": broker.host, "port": broker.port, "min_publish_interval_s": 0.0},
        }
    )


class ProfileWatch:
    """Timestamps every SetChargingProfile as the simulated charger receives it."""

    def __init__(self, sim: SimulatedCharger) -> None:
        self.received: list[tuple[float, float]] = []  # (perf_counter, first limit W)
        self.arrived = asyncio.Event()
        original: Callable[[int, dict[str, Any]], Any] = sim.book.set

        def hooked(evse_id: int, raw: dict[str, Any]) -> Any:
            at = time.perf_counter()
            limit = raw["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"]
            self.received.append((at, float(limit)))
            self.arrived.set()
            return original(evse_id, raw)

        sim.book.set = hooked  # type: ignore[method-assign]

    async def first_after(self, t0: float, wanted: Callable[[float], bool]) -> float:
        while True:
            for at, limit in self.received:
                if at >= t0 and wanted(limit):
                    return at
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 5.0)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


async def measure(broker: Broker, state: Path, trials: int) -> tuple[list[float], list[float]]:
    clock = SystemClock()
    gw = Gateway(config(broker, state), clock)
    gw_task = asyncio.create_task(gw.run())
    await asyncio.wait_for(gw.ready.wait(), 10)
    sim = SimulatedCharger(
        f"ws://127.0.0.1:{gw.csms.port}",
        "garage",
        password=PASSWORD,
        clock=clock,
        meter_interval_s=30,
        step_s=5,
    )
    watch = ProfileWatch(sim)
    sim_task = asyncio.create_task(sim.run())
    outage_ms: list[float] = []
    restore_ms: list[float] = []
    try:
        await asyncio.wait_for(sim.booted.wait(), 10)
        await sim.plug_in(EvBattery(60, 70.0, max_charge_w=11000, max_discharge_w=10000))
        await watch.first_after(0.0, lambda limit: limit >= 0)  # the normal plan is in place
        await asyncio.wait_for(gw.mqtt.connected.wait(), 10) if gw.mqtt else None
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.publish(TOPIC, "online", qos=1)
            for _ in range(trials):
                t0 = time.perf_counter()
                await client.publish(TOPIC, "offline", qos=0)
                got = await watch.first_after(t0, lambda limit: limit == -BACKUP_W)
                outage_ms.append((got - t0) * 1000.0)
                t0 = time.perf_counter()
                await client.publish(TOPIC, "online", qos=0)
                got = await watch.first_after(t0, lambda limit: limit >= 0)
                restore_ms.append((got - t0) * 1000.0)
    finally:
        sim_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sim_task
        gw.stop.set()
        await asyncio.wait_for(gw_task, 10)
    return outage_ms, restore_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--trials", type=int, default=200)
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    print(
        f"outage reaction, MQTT publish -> SetChargingProfile at the charger ({args.trials} trials)"
    )
    for nodelay in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            broker = start_broker(Path(tmp) / "broker")
            if nodelay:
                # mosquitto leaves Nagle on by default: a small PUBLISH can wait for the
                # subscriber's delayed ACK (~40 ms on Linux). One line in mosquitto.conf.
                broker.stop()
                with broker.config_file.open("a") as f:
                    f.write("set_tcp_nodelay true\n")
                broker.start()
            try:
                outage_ms, restore_ms = asyncio.run(
                    measure(broker, Path(tmp) / "state", args.trials)
                )
            finally:
                broker.stop()
        print(f"mosquitto {'set_tcp_nodelay true' if nodelay else 'default config'}:")
        for name, xs in (("outage", outage_ms), ("restore", restore_ms)):
            print(
                f"  {name:8s} p50 {pct(xs, 0.5):6.1f} ms   p99 {pct(xs, 0.99):6.1f} ms   "
                f"max {max(xs):6.1f} ms   mean {statistics.fmean(xs):6.1f} ms"
            )
        worst = max(pct(outage_ms, 0.99), pct(restore_ms, 0.99))
        verdict = "met" if worst < 100 else "NOT met"
        print(f"  target p99 < 100 ms: {verdict} (worst p99 {worst:.1f} ms)")


if __name__ == "__main__":
    main()
