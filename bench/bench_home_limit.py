"""Connection-limit reaction: a grid-meter message that breaches the import limit -> the reduced
SetChargingProfile at the charger.

    .venv/bin/python bench/bench_home_limit.py [--trials 200]

The whole gateway (Gateway: csms, store, controller, replanner, MQTT bridge, the home service)
on the system clock, a real mosquitto (tests/mosquitto.py) and a simulated charger on loopback
with a car charging at 11 kW under a 16 kW import limit. Each trial publishes a grid reading of
the car plus a house that jumped to 9 kW (a breach), and times until the charger receives a
profile that takes the car down; then a reading of the house back at 0.5 kW, and times until
the charger is allowed full power again (the normal, non-breach path, which waits for the
follow interval, here 0 s). The outage bench (bench_outage.py) measures the same path for a
grid outage; this one adds the home's measurements and the site caps. Target p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt
import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_outage import PASSWORD, ProfileWatch, pct  # noqa: E402
from mosquitto import Broker, start_broker  # noqa: E402

from simulators.battery import EvBattery  # noqa: E402
from simulators.charger import SimulatedCharger  # noqa: E402
from v2g_gateway.app import Gateway  # noqa: E402
from v2g_gateway.clock import SystemClock  # noqa: E402
from v2g_gateway.config import Config, parse_config  # noqa: E402

TOPIC = "home/meter/power"
LIMIT_W = 16000


def config(broker: Broker, state: Path) -> Config:
    return parse_config(
        {
            "gateway": {"id": "bench", "state_dir": str(state), "log_level": "warning"},
            "ocpp": {"host": "127.0.0.1", "port": 0},
            "chargers": [{"id": "garage", "password": PASSWORD, "max_discharge_w": 10000}],
            "vehicles": [{"id": "car", "battery_kwh": 100, "reserve_soc_percent": 20}],
            # cheap now: the plan charges at full power all along
            "prices": {
                "tariff": [
                    {
                        "start": "00:00",
                        "end": "00:00",
                        "import_per_kwh": -0.05,
                        "export_per_kwh": -0.1,
                    }
                ]
            },
            "outage": {"enabled": False},
            "home": {
                "grid_power_topic": TOPIC,
                "import_limit_w": LIMIT_W,
                "limit_margin_w": 200,
                "follow_min_interval_s": 0,
            },
            "mqtt": {"host": broker.host, "port": broker.port, "min_publish_interval_s": 0.0},
        }
    )


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
    breach_ms: list[float] = []
    back_ms: list[float] = []
    try:
        await asyncio.wait_for(sim.booted.wait(), 10)
        await sim.plug_in(EvBattery(100, 20.0, max_charge_w=11000, max_discharge_w=10000))
        await watch.first_after(0.0, lambda limit: limit >= 10000)  # charging at full power
        if gw.mqtt:
            await asyncio.wait_for(gw.mqtt.connected.wait(), 10)
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.publish(TOPIC, "11500", qos=1)
            await asyncio.sleep(0.2)
            for _ in range(trials):
                t0 = time.perf_counter()
                await client.publish(TOPIC, "20000", qos=0)  # 11 kW car + a 9 kW house
                got = await watch.first_after(t0, lambda limit: limit < 9000)
                breach_ms.append((got - t0) * 1000.0)
                reduced = watch.received[-1][1]
                await asyncio.sleep(0.01)
                t0 = time.perf_counter()
                await client.publish(TOPIC, f"{500 + reduced:.0f}", qos=0)  # the house is back
                got = await watch.first_after(t0, lambda limit: limit >= 10000)
                back_ms.append((got - t0) * 1000.0)
                await asyncio.sleep(0.01)
    finally:
        sim_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sim_task
        gw.stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gw_task, 10)
    return breach_ms, back_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--trials", type=int, default=200)
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    print(
        f"connection limit, grid meter on MQTT -> reduced profile at the charger ({args.trials} trials)"
    )
    for nodelay in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            broker = start_broker(Path(tmp) / "broker")
            if nodelay:
                broker.stop()
                with broker.config_file.open("a") as f:
                    f.write("set_tcp_nodelay true\n")
                broker.start()
            try:
                breach, back = asyncio.run(measure(broker, Path(tmp) / "state", args.trials))
            finally:
                broker.stop()
        print(f"mosquitto {'set_tcp_nodelay true' if nodelay else 'default config'}:")
        for name, xs in (("breach", breach), ("back", back)):
            print(
                f"  {name:7s} p50 {pct(xs, 0.5):6.1f} ms   p99 {pct(xs, 0.99):6.1f} ms   "
                f"max {max(xs):6.1f} ms   mean {statistics.fmean(xs):6.1f} ms"
            )
        verdict = "met" if pct(breach, 0.99) < 100 else "NOT met"
        print(f"  target breach p99 < 100 ms (and < 1 s): {verdict}")


if __name__ == "__main__":
    main()
