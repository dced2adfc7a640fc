"""Live updates: server-sent events from the store's change bus.

Changes are coalesced: a status is built at most once per `interval_s` however many meter values
arrive (a fleet sends hundreds a second) and only while a browser listens, then handed to every
listener; notifications go out as they happen. A slow listener loses its oldest messages, never
the gateway's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import structlog

from v2g_gateway.bus import Changed
from v2g_gateway.model import Notification
from v2g_gateway.store import Store

log = structlog.get_logger(__name__)

CLIENT_QUEUE = 16
MAX_CLIENTS = 32


def sse(event: str, data: Any) -> bytes:
    body = json.dumps(data, separators=(",", ":"), default=str, allow_nan=False)
    return f"event: {event}\ndata: {body}\n\n".encode()


class Live:
    def __init__(
        self,
        store: Store,
        build_status: Callable[[], dict[str, Any]],
        note_view: Callable[[Notification], dict[str, Any]],
        interval_s: float,
    ) -> None:
        self._store = store
        self._build = build_status
        self._note = note_view
        self._interval = interval_s
        self._clients: set[asyncio.Queue[bytes | None]] = set()
        self._dirty = asyncio.Event()
        self._plans: set[str] = set()
        self.sent = 0  # statuses built and sent (the benchmark reads it)

    def subscribe(self) -> asyncio.Queue[bytes | None] | None:
        if len(self._clients) >= MAX_CLIENTS:
            return None
        q: asyncio.Queue[bytes | None] = asyncio.Queue(CLIENT_QUEUE)
        self._clients.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[bytes | None]) -> None:
        self._clients.discard(q)

    def close(self) -> None:
        """Tell every stream to end (shutdown)."""
        for q in list(self._clients):
            self._put(q, None)

    @staticmethod
    def _put(q: asyncio.Queue[bytes | None], item: bytes | None) -> None:
        if q.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
        q.put_nowait(item)

    def broadcast(self, message: bytes) -> None:
        for q in list(self._clients):
            self._put(q, message)

    async def run(self) -> None:
        changes = self._store.changes.subscribe()
        notes = self._store.notifications.subscribe()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._follow_changes(changes), name="web-changes")
                tg.create_task(self._follow_notes(notes), name="web-notifications")
                tg.create_task(self._send_loop(), name="web-live")
        finally:
            self._store.changes.unsubscribe(changes)
            self._store.notifications.unsubscribe(notes)

    async def _follow_changes(self, q: asyncio.Queue[Changed]) -> None:
        while True:
            c = await q.get()
            if c.kind == "plan" and c.key is not None:
                self._plans.add(c.key)
            self._dirty.set()

    async def _follow_notes(self, q: asyncio.Queue[Notification]) -> None:
        while True:
            n = await q.get()
            if self._clients:
                self.broadcast(sse("notification", self._note(n)))
            self._dirty.set()

    async def _send_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self._clients:
                try:
                    status = self._build()
                except Exception:  # a broken view must not end live updates
                    log.exception("web.status_failed")
                else:
                    plans, self._plans = sorted(self._plans), set()
                    status["changed_plans"] = plans
                    self.broadcast(sse("status", status))
                    self.sent += 1
            else:
                self._plans.clear()
            await asyncio.sleep(self._interval)
