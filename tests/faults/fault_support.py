"""Helpers for the fault tests: configs, a daemon process with sd_notify, in-process gateways.

Fault tests provoke one failure each against real parts (process, websocket, SQLite file, HTTP
server, broker) and check the gateway's promise for that failure; these helpers keep the setup
out of the way so each test reads as the fault and the promise.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from daemon_support import Notify, start_daemon  # noqa: F401  (re-exported for the fault tests)
from mosquitto import free_port
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from v2g_gateway.app import STATE_FILE, Gateway
from v2g_gateway.clock import Clock, ManualClock
from v2g_gateway.config import Config, parse_config

PASSWORD = "fault-test-password-0123"
BOOT = {"reason": "PowerUp", "chargingStation": {"model": "Flaky", "vendorName": "Acme"}}


def closed_port() -> int:
    """A loopback port nothing listens on: the 'broker is down' address."""
    return free_port()


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def config_dict(state_dir: Path, **extra: Any) -> dict[str, Any]:
    """One charger, one car, flat tariff, MQTT on a closed port unless a test says otherwise."""
    base: dict[str, Any] = {
        "gateway": {
            "id": "faults",
            "state_dir": str(state_dir),
            "timezone": "Europe/Berlin",
            "tick_seconds": 60,
            "log_format": "json",
        },
        "ocpp": {"host": "127.0.0.1", "port": 0, "heartbeat_interval_s": 3600},
        "chargers": [{"id": "garage", "password": PASSWORD}],
        "vehicles": [
            {"id": "car", "battery_kwh": 60, "reserve_soc_percent": 40, "id_tokens": ["car-token"]}
        ],
        "prices": {
            "source": "tariff",
            "tariff": [
                {"start": "00:00", "end": "00:00", "import_per_kwh": 0.30, "export_per_kwh": 0.05}
            ],
        },
        "preferences": {"profile_validity_minutes": 5},
        "outage": {"enabled": False},
        "mqtt": {"enabled": False, "host": "127.0.0.1", "port": closed_port()},
    }
    return merge(base, extra)


def make_config(state_dir: Path, **extra: Any) -> Config:
    return parse_config(config_dict(state_dir, **extra), "<fault test>")


@contextlib.asynccontextmanager
async def running(cfg: Config, clock: Clock) -> AsyncIterator[Gateway]:
    """A whole gateway in this process; stopped and awaited on exit (its errors surface)."""
    gw = Gateway(cfg, clock)
    task = asyncio.create_task(gw.run(), name="gateway-under-test")
    ready = asyncio.create_task(gw.ready.wait())
    await asyncio.wait({task, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if not gw.ready.is_set():
        ready.cancel()
        await task  # raises what stopped it
        raise AssertionError("gateway never became ready")
    try:
        yield gw
    finally:
        gw.stop.set()
        await asyncio.wait_for(task, 15)


async def until(pred: Callable[[], bool], what: str, limit_s: float = 15.0) -> None:
    """Poll a condition that another process or task makes true (not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def state_file(cfg: Config) -> Path:
    return cfg.gateway.state_dir / STATE_FILE


def now_floor(clock: Clock) -> datetime:
    return clock.now().replace(microsecond=0)


class SteppingClock(ManualClock):
    """A ManualClock that knows who sleeps until when, so a test can jump to the next wake-up.

    Hours of simulated time then pass in as many steps as there are wake-ups, and each step
    waits for the sleeper to go back to sleep: event-driven, no wall-clock guessing.
    """

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.wakeups: list[datetime] = []
        self.slept: list[tuple[datetime, float]] = []  # (when, seconds asked)
        self._asleep = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        until_t = self.now() + timedelta(seconds=max(0.0, seconds))
        self.slept.append((self.now(), seconds))
        self.wakeups.append(until_t)
        self._asleep.set()
        try:
            await super().sleep(seconds)
        finally:
            self.wakeups.remove(until_t)

    async def next_wakeup(self, limit_s: float = 10.0) -> datetime:
        """Wait until someone sleeps again, then move the clock to the earliest wake-up."""
        await asyncio.wait_for(self._asleep.wait(), limit_s)
        self._asleep.clear()
        when = min(self.wakeups)
        # Time passing (wall and monotonic), not a step of the wall clock.
        await self.advance(max(0.0, (when - self.now()).total_seconds()))
        return when


class Link:
    """One raw charger connection that answers whatever the gateway asks with Accepted."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.answers: dict[str, asyncio.Future[list[Any]]] = {}
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, port: int) -> Link:
        token = base64.b64encode(f"garage:{PASSWORD}".encode()).decode()
        ws = await connect(
            f"ws://127.0.0.1:{port}/garage",
            subprotocols=[Subprotocol("ocpp2.0.1")],
            additional_headers={"Authorization": f"Basic {token}"},
        )
        return cls(ws)

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                msg = json.loads(raw)
                if msg[0] == 2:
                    await self.ws.send(json.dumps([3, msg[1], {"status": "Accepted"}]))
                elif msg[1] in self.answers:
                    self.answers.pop(msg[1]).set_result(msg)

    async def call(self, uid: str, action: str, payload: dict[str, Any]) -> list[Any]:
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.answers[uid] = fut
        await self.ws.send(json.dumps([2, uid, action, payload]))
        return await asyncio.wait_for(fut, 10)

    async def close(self) -> None:
        await self.ws.close()
        await self.reader
