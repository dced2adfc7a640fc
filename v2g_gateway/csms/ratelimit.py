"""A token bucket per charger, on the injected clock so an accelerated demo is not throttled."""

from __future__ import annotations

from v2g_gateway.clock import Clock


class TokenBucket:
    """`per_minute` messages a minute with bursts up to the same number.

    take() returns the tokens left after taking one; negative means over the limit, and
    -capacity means the sender kept going long after being told (time to hang up).
    """

    def __init__(self, per_minute: int, clock: Clock) -> None:
        self.capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock.now()

    def take(self) -> float:
        now = self._clock.now()
        elapsed = max(0.0, (now - self._at).total_seconds())
        self._at = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self._rate) - 1.0
        return self._tokens

    def reset(self) -> None:
        """Full again (a new session starts without the last one's penalty)."""
        self._tokens = self.capacity
        self._at = self._clock.now()
