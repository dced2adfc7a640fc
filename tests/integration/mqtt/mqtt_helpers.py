"""A subscriber that records what the bridge publishes, and the gateway parts it talks to."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ for the broker helper

from mosquitto import Broker, start_broker

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import Config, parse_config
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.mqtt.bridge import MqttBridge
from v2g_gateway.mqtt.connection import Backoff
from v2g_gateway.store import Store

T0 = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)
WAIT_S = 15.0
BASE = "v2g/home"
__all__ = ["Broker", "start_broker"]


def make_config(
    broker: Broker, state: Path, raw_extra: dict[str, Any] | None = None, **mqtt: Any
) -> Config:
    raw: dict[str, Any] = {
        "gateway": {"id": "home", "state_dir": str(state), "timezone": "Europe/Berlin"},
        "chargers": [{"id": "garage", "password": "a-long-random-secret"}],
        "vehicles": [
            {
                "id": "car",
                "battery_kwh": 60,
                "reserve_soc_percent": 40,
                "charger": "garage",
                "soc_topic": "cars/car/soc",
                "make": "Nissan",
                "model": "Leaf",
            },
            {"id": "van", "battery_kwh": 75, "reserve_soc_percent": 30},
        ],
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "min_publish_interval_s": 0,
            **mqtt,
        },
    }
    raw.update(raw_extra or {})
    return parse_config(raw)


async def eventually(pred: Callable[[], bool]) -> None:
    """Wait for state that another task changes and announces with no event (attempt counters,
    a cleared `connected`); bounded by WAIT_S."""
    async with asyncio.timeout(WAIT_S):
        while not pred():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@dataclass
class Seen:
    topic: str
    payload: bytes
    retain: bool
    properties: Any

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class Watcher:
    """Everything received on the subscribed filters, in order, with awaitable predicates."""

    client: aiomqtt.Client
    messages: list[Seen] = field(default_factory=list)
    _cond: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _pump(self) -> None:
        async for m in self.client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            async with self._cond:
                self.messages.append(Seen(m.topic.value, payload, m.retain, m.properties))
                self._cond.notify_all()

    async def wait_for(
        self, topic: str, pred: Callable[[Seen], bool] = lambda s: True, *, after: int = 0
    ) -> Seen:
        """The first message on `topic` (index >= after) that satisfies `pred`."""

        def find() -> Seen | None:
            return next((s for s in self.messages[after:] if s.topic == topic and pred(s)), None)

        async with asyncio.timeout(WAIT_S):
            async with self._cond:
                await self._cond.wait_for(lambda: find() is not None)
        found = find()
        assert found is not None
        return found

    def mark(self) -> int:
        return len(self.messages)

    def on(self, topic: str) -> list[Seen]:
        return [s for s in self.messages if s.topic == topic]


@asynccontextmanager
async def watching(broker: Broker, *filters: str, **client_kw: Any) -> AsyncIterator[Watcher]:
    async with aiomqtt.Client(broker.host, broker.port, **client_kw) as client:
        for f in filters:
            await client.subscribe(f, qos=1)
        w = Watcher(client)
        task = asyncio.create_task(w._pump())
        try:
            yield w
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@dataclass
class Rig:
    broker: Broker
    cfg: Config
    store: Store
    policy: Policy
    clock: ManualClock
    bridge: MqttBridge
    task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.bridge.run(), name="bridge-under-test")
        async with asyncio.timeout(WAIT_S):
            await self.bridge.connected.wait()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None


def make_rig(
    broker: Broker,
    tmp: Path,
    mqtt: dict[str, Any] | None = None,
    raw_extra: dict[str, Any] | None = None,
    **bridge_kw: Any,
) -> Rig:
    cfg = make_config(broker, tmp / "state", raw_extra, **(mqtt or {}))
    clock = ManualClock(T0)
    store = Store.open(tmp / "s.sqlite", cfg, clock)
    policy = Policy(cfg, store, clock)
    bridge_kw.setdefault("backoff", Backoff(first_s=0.05, max_s=0.2))
    bridge = MqttBridge(cfg, store, policy, clock, **bridge_kw)
    return Rig(broker, cfg, store, policy, clock, bridge)
