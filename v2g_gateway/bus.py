"""In-process fan-out of changes and notifications to any number of async subscribers.

Subscribers get a bounded queue each; a slow subscriber loses its oldest items rather than
blocking the writer (the store must never wait for the MQTT bridge).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Changed:
    """Something in the store changed: kind is 'charger', 'vehicle', 'prices', 'plan', ..."""

    kind: str
    key: str | None = None


class Bus(Generic[T]):
    def __init__(self, maxsize: int = 1000) -> None:
        self._subs: list[asyncio.Queue[T]] = []
        self._maxsize = maxsize

    def publish(self, item: T) -> None:
        for q in self._subs:
            if q.full():
                q.get_nowait()
            q.put_nowait(item)

    def subscribe(self) -> asyncio.Queue[T]:
        q: asyncio.Queue[T] = asyncio.Queue(self._maxsize)
        self._subs.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[T]) -> None:
        if q in self._subs:
            self._subs.remove(q)

    async def stream(self) -> AsyncIterator[T]:
        q = self.subscribe()
        try:
            while True:
                yield await q.get()
        finally:
            self.unsubscribe(q)
