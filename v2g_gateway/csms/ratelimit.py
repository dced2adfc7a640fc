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


class Backoff:
    """Failed logins per key (an identity, an address): after `free` failures in a row, the key
    is refused for `base_s` * 2^k seconds (k = failures beyond `free`), at most `max_s`.

    While refused, a try is answered at once without checking anything (no scrypt cost, no
    guess counted). A success forgets the key. Keys untouched for `forget_s` are dropped, and
    at most `max_keys` are kept (the stalest go first), so a scan of many addresses cannot
    grow memory without bound. On the clock's monotonic reading: wall clock steps do not matter.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        free: int = 3,
        base_s: float = 1.0,
        max_s: float = 60.0,
        forget_s: float = 600.0,
        max_keys: int = 4096,
    ) -> None:
        self._clock = clock
        self.free = free
        self.base_s = base_s
        self.max_s = max_s
        self.forget_s = max(forget_s, max_s)
        self.max_keys = max_keys
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, last failure)

    def wait_s(self, key: str) -> float:
        """Seconds until `key` may try again; 0.0 when it may now."""
        entry = self._failures.get(key)
        if entry is None:
            return 0.0
        count, last = entry
        now = self._clock.monotonic()
        if now - last >= self.forget_s:
            del self._failures[key]
            return 0.0
        if count < self.free:
            return 0.0
        delay = min(self.max_s, self.base_s * 2.0 ** (count - self.free))
        return max(0.0, last + delay - now)

    def failed(self, key: str) -> None:
        now = self._clock.monotonic()
        count, last = self._failures.pop(key, (0, now))
        if now - last >= self.forget_s:
            count = 0
        self._failures[key] = (count + 1, now)  # re-inserted: dict order is staleness order
        while len(self._failures) > self.max_keys:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        entry = self._failures.get(key)
        return 0 if entry is None else entry[0]
