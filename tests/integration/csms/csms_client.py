"""A raw OCPP-J websocket client for tests: sends exactly the bytes a test wants, answers CSMS calls."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import ssl
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Payload = dict[str, Any]

DEFAULT_ANSWERS: dict[str, Payload] = {
    "SetVariables": {"setVariableResult": []},
    "GetBaseReport": {"status": "Accepted"},
    "SetChargingProfile": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Accepted"},
    "GetChargingProfiles": {"status": "Accepted"},
    "Reset": {"status": "Accepted"},
}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class RawCharger:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[list[Any]]] = {}
        self.unsolicited: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.calls: asyncio.Queue[list[Any]] = asyncio.Queue()  # CSMS -> charger CALLs
        self.answers: dict[str, Payload | Callable[[Payload], list[Any] | Payload]] = dict(
            DEFAULT_ANSWERS
        )
        self.silent = False
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls,
        url: str,
        headers: dict[str, str] | None = None,
        ssl_ctx: ssl.SSLContext | None = None,
        subprotocols: list[str] | None = None,
    ) -> RawCharger:
        ws = await connect(
            url,
            subprotocols=subprotocols if subprotocols is not None else ["ocpp2.0.1"],  # type: ignore[arg-type]
            additional_headers=headers or {},
            ssl=ssl_ctx,
            max_size=None,
        )
        return cls(ws)

    async def _read(self) -> None:
        try:
            await self._read_frames()
        except ConnectionClosed:
            pass
        finally:
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection closed before the answer"))

    async def _read_frames(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if msg[0] == 2:
                await self.calls.put(msg)
                if self.silent:
                    continue
                answer = self.answers.get(msg[2], {})
                if callable(answer):
                    answer = answer(msg[3])
                frame = answer if isinstance(answer, list) else [3, msg[1], answer]
                if isinstance(answer, list):
                    frame = [answer[0], msg[1], *answer[1:]]
                await self.ws.send(json.dumps(frame))
            elif msg[1] in self._waiting:
                self._waiting.pop(msg[1]).set_result(msg)
            else:
                await self.unsolicited.put(msg)

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def call(self, action: str, payload: Payload) -> list[Any]:
        """Send a CALL and return the whole answer frame ([3, id, payload] or [4, id, code, ...])."""
        uid = f"m{next(self._ids)}"
        return await self.call_raw(uid, json.dumps([2, uid, action, payload]))

    async def call_raw(self, uid: str, text: str) -> list[Any]:
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting[uid] = fut
        await self.ws.send(text)
        return await fut

    async def next_call(self, action: str) -> list[Any]:
        while True:
            msg = await self.calls.get()
            if msg[2] == action:
                return msg

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
