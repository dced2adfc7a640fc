"""A real CsmsServer + Store on a loop in a background thread, driven frame by frame from Hypothesis.

Hypothesis wants a plain function per example; the server wants one long-lived event loop. The
target runs the loop in a thread and exposes blocking calls: send a frame, then prove the server
is alive by getting a Heartbeat answered on the same connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import parse_config
from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.store import Store

PASSWORD = "fuzz-test-password-01234"
T = TypeVar("T")


class OcppTarget:
    def __init__(self, state_dir: Path) -> None:
        self.cfg = parse_config(
            {
                "gateway": {"state_dir": str(state_dir)},
                # Keepalive pings draw from the global `random` in this background thread, which
                # Hypothesis would see as its strategies using `random`; a fuzz run needs none.
                "ocpp": {
                    "host": "127.0.0.1",
                    "port": 0,
                    "max_messages_per_minute": 10**9,
                    "ping_interval_s": 86400,
                },
                "chargers": [{"id": "fuzz", "password": PASSWORD}],
                "vehicles": [{"id": "car", "battery_kwh": 60}],
            }
        )
        self.clock = ManualClock(datetime(2025, 1, 15, 12, tzinfo=UTC))
        self.loop_errors: list[dict[str, Any]] = []
        self.reconnects = 0
        self.internal_errors = 0  # CALLERROR InternalError: a handler raised
        self.close_codes: list[int] = []  # 1011 would mean the session itself failed
        self.sent = 0
        self._ids = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(lambda _loop, ctx: self.loop_errors.append(ctx))
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.store = Store.open(state_dir / "state.sqlite", self.cfg)
        self.server = CsmsServer(self.cfg, self.store.apply, self.clock)
        self._ws: ClientConnection | None = None
        self._waiting: dict[str, asyncio.Future[list[Any]]] = {}
        self._run(self.server.start())

    def _run(self, coro: Coroutine[Any, Any, T], limit_s: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(limit_s)

    async def _connect(self) -> ClientConnection:
        if self._ws is None or self._ws.close_code is not None:
            if self._ws is not None:
                self.reconnects += 1
            token = base64.b64encode(f"fuzz:{PASSWORD}".encode()).decode()
            self._ws = await connect(
                f"ws://127.0.0.1:{self.server.port}/fuzz",
                subprotocols=[Subprotocol("ocpp2.0.1")],
                additional_headers={"Authorization": f"Basic {token}"},
                max_size=None,
                ping_interval=None,
            )
            asyncio.get_running_loop().create_task(self._read(self._ws))
        return self._ws

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg[0] == 2:  # the CSMS asks something (after boot): say yes at once
                    await ws.send(json.dumps([3, msg[1], {"status": "Accepted"}]))
                elif msg[1] in self._waiting:
                    self._waiting.pop(msg[1]).set_result(msg)
                if msg[0] == 4 and msg[2] == "InternalError":
                    self.internal_errors += 1
        except ConnectionClosed:
            pass
        if ws.close_code is not None:
            self.close_codes.append(ws.close_code)

    async def _send(self, frame: str | bytes) -> None:
        ws = await self._connect()
        with contextlib.suppress(ConnectionClosed):
            await ws.send(frame)
        self.sent += 1

    async def _heartbeat(self) -> list[Any]:
        ws = await self._connect()
        uid = f"probe-{next(self._ids)}"
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting[uid] = fut
        try:
            await ws.send(json.dumps([2, uid, "Heartbeat", {}]))
        except ConnectionClosed:  # the fuzz frame got the socket closed: reconnect once
            self._waiting.pop(uid, None)
            return await self._heartbeat()
        try:
            return await asyncio.wait_for(fut, 10)
        except TimeoutError:
            if ws.close_code is not None:
                return await self._heartbeat()
            raise

    def send(self, frame: str | bytes) -> None:
        self._run(self._send(frame))

    def heartbeat(self) -> list[Any]:
        return self._run(self._heartbeat())

    def close(self) -> None:
        async def shut() -> None:
            if self._ws is not None:
                await self._ws.close()
            await self.server.close()

        self._run(shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self.store.close()
