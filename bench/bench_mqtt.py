"""MQTT publish cost under many chargers' meter traffic: the coalescing bridge vs publishing
every change.

    .venv/bin/python bench/bench_mqtt.py [--chargers 100] [--rate 5] [--seconds 10]

A real mosquitto (tests/mosquitto.py) on a free loopback port and a real SQLite store. Each
charger sends `rate` meter values per second for `seconds`. Three runs in this process:
  store only   - no MQTT at all (the cost of storing the events; subtracted below)
  baseline     - every store change is rendered and published at once (QoS 1, retained)
  bridge       - MqttBridge with min_publish_interval_s = 1 (coalesced, rate-limited)
Printed: events/s in, messages/s out, MQTT CPU microseconds per event (process CPU minus the
store-only run) and bridge/baseline ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from mosquitto import Broker, start_broker  # noqa: E402

from v2g_gateway.bus import Changed  # noqa: E402
from v2g_gateway.clock import SystemClock  # noqa: E402
from v2g_gateway.config import Config, parse_config  # noqa: E402
from v2g_gateway.dispatch.policy import Policy  # noqa: E402
from v2g_gateway.model import ConnectorStatus, ConnectorStatusChanged, MeterSample  # noqa: E402
from v2g_gateway.mqtt.bridge import MqttBridge  # noqa: E402
from v2g_gateway.mqtt.payloads import encode  # noqa: E402
from v2g_gateway.store import Store  # noqa: E402


def config(broker: Broker, n: int, state: Path) -> Config:
    return parse_config(
        {
            "gateway": {"id": "bench", "state_dir": str(state)},
            "chargers": [{"id": f"c{i:03d}"} for i in range(n)],
            "vehicles": [
                {"id": f"v{i:03d}", "battery_kwh": 60, "charger": f"c{i:03d}"} for i in range(n)
            ],
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "min_publish_interval_s": 1.0,
                "homeassistant_discovery": False,
            },
        }
    )


async def feed(store: Store, n: int, rate: float, seconds: float) -> int:
    """Meter values from n chargers, `rate` per charger per second, paced on the wall clock."""
    t0 = datetime.now(UTC)
    for i in range(n):
        store.apply(ConnectorStatusChanged(f"c{i:03d}", 1, 1, ConnectorStatus.OCCUPIED, t0))
    events = 0
    rounds = int(rate * seconds)
    start = time.monotonic()
    for r in range(rounds):
        at = t0 + timedelta(seconds=r / rate)
        for i in range(n):
            store.apply(
                MeterSample(
                    f"c{i:03d}",
                    1,
                    at,
                    power_w=7000.0 + r,
                    energy_import_wh=1000.0 + r * 10,
                    soc_percent=min(100.0, 20 + r * 0.1),
                )
            )
            events += 1
        delay = start + (r + 1) / rate - time.monotonic()
        await asyncio.sleep(max(0.0, delay))
    return events


async def start_bridge(cfg: Config, store: Store, policy: Policy) -> None:
    bridge = MqttBridge(cfg, store, policy, SystemClock())
    task = asyncio.create_task(bridge.run())
    await asyncio.wait_for(bridge.connected.wait(), 10)
    await asyncio.sleep(0.5)  # the full state sent on connect is not part of the measurement
    before = bridge.published
    RUNNING["stop"] = lambda: _stop(task)
    RUNNING["count"] = lambda: bridge.published - before


async def _stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


RUNNING: dict[str, Any] = {}


async def baseline(cfg: Config, store: Store, policy: Policy, broker: Broker) -> None:
    """Publish every charger/vehicle change at once, rendered the same way the bridge does."""
    bridge = MqttBridge(cfg, store, policy, SystemClock())  # used only for render()
    client = aiomqtt.Client(broker.host, broker.port)
    client.pending_calls_threshold = 100_000
    count = 0
    q = store.changes.subscribe()

    async def pump() -> None:
        nonlocal count
        async with client:
            while True:
                c: Changed = await q.get()
                if c.kind not in ("charger", "vehicle") or c.key is None:
                    continue
                topic = (bridge.topics.charger if c.kind == "charger" else bridge.topics.vehicle)(
                    c.key
                )
                body = bridge.render(c.kind, c.key, store.snapshot(datetime.now(UTC)))
                await client.publish(topic, encode(body or {}), qos=1, retain=True)
                count += 1

    task = asyncio.create_task(pump())
    RUNNING["stop"] = lambda: _stop(task)
    RUNNING["count"] = lambda: count
    RUNNING["queue"] = q


async def measure(mode: str, n: int, rate: float, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_broker(Path(tmp) / "broker")
        try:
            cfg = config(broker, n, Path(tmp) / "state")
            store = Store.open(Path(tmp) / "s.sqlite", cfg)
            policy = Policy(cfg, store, SystemClock())
            RUNNING.clear()
            if mode == "bridge":
                await start_bridge(cfg, store, policy)
            elif mode == "baseline":
                await baseline(cfg, store, policy, broker)
            cpu0, wall0 = time.process_time(), time.monotonic()
            events = await feed(store, n, rate, seconds)
            feed_wall = time.monotonic() - wall0
            # Let the publisher catch up (bridge: one more interval; baseline: its queue).
            q = RUNNING.get("queue")
            while q is not None and not q.empty():  # noqa: ASYNC110 - a benchmark drain
                await asyncio.sleep(0.05)
            if mode == "bridge":
                await asyncio.sleep(1.2)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            out = RUNNING["count"]() if "count" in RUNNING else 0
            if "stop" in RUNNING:
                await RUNNING["stop"]()
            store.close()
        finally:
            broker.stop()
    return {"events": events, "out": out, "cpu": cpu, "wall": wall, "feed": feed_wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--chargers", type=int, default=100)
    ap.add_argument("--rate", type=float, default=5.0, help="meter values per charger per second")
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    res = {
        m: asyncio.run(measure(m, a.chargers, a.rate, a.seconds))
        for m in ("store only", "baseline", "bridge")
    }
    base_cpu = res["store only"]["cpu"]
    print(
        f"{a.chargers} chargers x {a.rate:g} meter values/s for {a.seconds:g} s "
        f"(real mosquitto, real SQLite)"
    )
    print(f"{'run':<12}{'events/s in':>13}{'msgs/s out':>12}{'CPU s':>8}{'MQTT us/event':>15}")
    for m, r in res.items():
        mqtt_us = max(0.0, r["cpu"] - base_cpu) / r["events"] * 1e6
        print(
            f"{m:<12}{r['events'] / r['feed']:>13.0f}{r['out'] / r['feed']:>12.0f}"
            f"{r['cpu']:>8.2f}{mqtt_us:>15.1f}"
        )
    b, c = res["baseline"], res["bridge"]
    mqtt_b = max(1e-9, b["cpu"] - base_cpu)
    mqtt_c = max(0.0, c["cpu"] - base_cpu)
    print(
        f"bridge/baseline: messages {c['out'] / max(1, b['out']):.3f}, "
        f"MQTT CPU {mqtt_c / mqtt_b:.3f}"
    )


if __name__ == "__main__":
    main()
