"""The one source of time: injected everywhere so tests and the demo can run a day in seconds.

Two readings: `now()` is the wall clock (UTC), which NTP or a user may step; `monotonic()` only
ever moves forward with time itself, so ages measured on it (how old a SoC reading is) are not
changed by a step of the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never steps (same rate as `now()`, arbitrary origin)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of this clock's time."""
        ...

    @property
    def speed(self) -> float:
        """Clock seconds per wall second (1 for real time)."""
        ...


class SystemClock:
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class AcceleratedClock:
    """Runs `speed` times faster than the wall clock from `start` (the demo's day in a minute)."""

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._start = start.astimezone(UTC)
        self._wall0 = time.monotonic()
        self.speed = float(speed)

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.monotonic())

    def monotonic(self) -> float:
        return (time.monotonic() - self._wall0) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class ManualClock:
    """A clock that moves only when a test says so; sleepers wake when their time is reached."""

    speed = 1.0

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._mono = 0.0
        self._changed = asyncio.Condition()

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        until = self._now + timedelta(seconds=max(0.0, seconds))
        async with self._changed:
            await self._changed.wait_for(lambda: self._now >= until)

    async def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += max(0.0, seconds)
        async with self._changed:
            self._changed.notify_all()
        await asyncio.sleep(0)

    async def set(self, when: datetime) -> None:
        """Step the wall clock (NTP correction, DST tests); may go backwards. The monotonic
        reading does not move: a step is not time passing."""
        self._now = when.astimezone(UTC)
        async with self._changed:
            self._changed.notify_all()
        await asyncio.sleep(0)
