"""A whole Gateway with its MQTT bridge on a real mosquitto, on a loop in a background thread.

Each fuzz example publishes one command, then proves the bridge still works by setting a
preference to a fresh value and waiting until the policy reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt

from v2g_gateway.app import Gateway
from v2g_gateway.clock import ManualClock
from v2g_gateway.config import parse_config

BASE = "v2g/fuzz"
T = TypeVar("T")


class MqttTarget:
    def __init__(self, state_dir: Path, host: str, port: int) -> None:
        self.cfg = parse_config(
            {
                "gateway": {"id": "fuzz", "state_dir": str(state_dir)},
                "ocpp": {"host": "127.0.0.1", "port": 0},
                "chargers": [{"id": "garage", "password": "fuzz-test-password-01234"}],
                "vehicles": [{"id": "car", "battery_kwh": 60, "reserve_soc_percent": 40}],
                "outage": {"enabled": False},
                "mqtt": {"host": host, "port": port, "min_publish_interval_s": 0},
            }
        )
        self.clock = ManualClock(datetime(2025, 6, 2, 10, tzinfo=UTC))
        self.loop_errors: list[dict[str, Any]] = []
        self.published = 0
        self.refused_by_broker = 0
        self._host, self._port = host, port
        self._probe = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(lambda _loop, ctx: self.loop_errors.append(ctx))
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.gw: Gateway = self._run(self._start())
        self.client: aiomqtt.Client = self._run(self._client(host, port))

    def _run(self, coro: Coroutine[Any, Any, T], limit_s: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(limit_s)

    async def _start(self) -> Gateway:
        gw = Gateway(self.cfg, self.clock)
        self._task = asyncio.create_task(gw.run(), name="gateway-under-fuzz")
        await asyncio.wait_for(gw.ready.wait(), 20)
        assert gw.mqtt is not None
        await asyncio.wait_for(gw.mqtt.connected.wait(), 20)
        return gw

    async def _client(self, host: str, port: int) -> aiomqtt.Client:
        client = aiomqtt.Client(host, port, identifier="fuzzer")
        await client.__aenter__()
        return client

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish; a topic the broker itself refuses (it drops the client) is counted, not sent."""

        async def go() -> None:
            try:
                await self.client.publish(topic, payload, qos=1)
                self.published += 1
            except aiomqtt.MqttError:
                self.refused_by_broker += 1  # the broker dropped us; start a new client
                self.client = await self._client(self._host, self._port)

        self._run(go())

    def probe(self) -> None:
        """A fresh preference value must reach the policy: the command path is alive."""
        n = next(self._probe)
        value = round(1.0 + n / 1000.0, 3)

        async def go() -> None:
            await self.client.publish(
                f"{BASE}/set/preference/discharge_above_per_kwh", str(value).encode(), qos=1
            )
            async with asyncio.timeout(10):
                while self.gw.policy.preference("discharge_above_per_kwh") != value:  # noqa: ASYNC110
                    await asyncio.sleep(0.002)  # the policy announces nothing we could await

        self._run(go())

    def close(self) -> None:
        async def shut() -> None:
            with contextlib.suppress(Exception):
                await self.client.__aexit__(None, None, None)
            self.gw.stop.set()
            await self._task

        self._run(shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
