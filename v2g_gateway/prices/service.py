"""The background task that keeps today's and tomorrow's prices in the store.

Day-ahead results appear around 12:45-13:00 CET; before that "tomorrow" simply does not exist,
so the service asks for it only after publication and then retries with jittered backoff. A failed
fetch never removes what is already cached: dispatch keeps planning on the last good data and
sees `status()` turn stale or missing when that runs out.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import httpx
import structlog

from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.errors import PriceError, PriceParseError
from v2g_gateway.model import Notification, PriceSlot, UserPriceSlot
from v2g_gateway.prices.cache import PriceCache
from v2g_gateway.prices.common import normalise
from v2g_gateway.prices.compose import compose
from v2g_gateway.prices.source import PriceSource, cache_key, make_source
from v2g_gateway.prices.tariff import tariff_prices

log = structlog.get_logger(__name__)

PUBLICATION = time(13, 0)
MARKET_TZ = ZoneInfo("Europe/Brussels")
RETRY_FIRST_S = 120.0
RETRY_MAX_S = 1800.0
COVERED_FRACTION = 0.9  # Octopus publishes to 23:00 UK time, an hour short of a CET day

State = Literal["fresh", "stale", "missing"]


@dataclass(frozen=True, slots=True)
class PriceStatus:
    state: State
    source: str
    covered_until: datetime | None
    last_success: datetime | None
    last_error: str | None


class PriceService:
    def __init__(
        self,
        cfg: Config,
        store: PriceCache,
        clock: Clock,
        http: httpx.AsyncClient,
        notify: Callable[[Notification], None],
        rng: random.Random | None = None,
    ) -> None:
        self._cfg = cfg
        self._prices = cfg.prices
        self._tz = cfg.gateway.tz
        self._store = store
        self._clock = clock
        self._notify = notify
        self._rng = rng or random.Random()
        self._key = cache_key(cfg.prices)
        self._source: PriceSource | None = make_source(cfg.prices, http)
        self._last_success: datetime | None = None
        self._last_error: str | None = None
        self._failures = 0
        # Dispatch asks for the same window once per vehicle and tick; this service is the only
        # writer of its prices, so a write (new version) is what makes an answer stale.
        self._version = 0
        self._memo: dict[tuple[datetime, datetime, int], list[UserPriceSlot]] = {}

    # ---------------------------------------------------------------- reading

    def user_prices(self, start: datetime, end: datetime) -> list[UserPriceSlot]:
        """What dispatch plans with; an empty list where no price is known."""
        key = (start, end, self._version)
        slots = self._memo.get(key)
        if slots is None:
            if self._prices.source == "tariff":
                slots = tariff_prices(self._prices.tariff, self._tz, start, end)
            else:
                spot = self._store.load_price_slots(self._key, start, end)
                slots = compose(spot, self._prices, self._tz)
            if len(self._memo) >= 8:
                self._memo.clear()
            self._memo[key] = slots
        return list(slots)

    def status(self) -> PriceStatus:
        now = self._clock.now()
        if self._prices.source == "tariff":
            return PriceStatus("fresh", self._key, None, now, None)
        ahead = self._store.load_price_slots(self._key, now, now + timedelta(days=3))
        current = [s for s in ahead if s.start <= now < s.end]
        until = _contiguous_until(ahead, now) if current else None
        if not current:
            state: State = "missing"
        elif self._source is None:  # pushed series: fresh while it covers now
            state = "fresh"
        elif self._last_success is None or now - self._last_success > timedelta(
            hours=self._prices.max_age_hours
        ):
            state = "stale"
        else:
            state = "fresh"
        return PriceStatus(state, self._key, until, self._last_success, self._last_error)

    # ---------------------------------------------------------------- writing

    def accept_pushed(self, slots: list[PriceSlot]) -> None:
        """A series the user's system pushed (mqtt source): stored like a fetch."""
        if slots:
            self._store.save_price_slots(self._key, normalise(slots))
            self._version += 1
            self._last_success = self._clock.now()

    async def refresh(self) -> bool:
        """Fetch what is missing now; True when nothing is missing afterwards."""
        if self._source is None:
            return True
        wanted = self._missing_range()
        if wanted is None:
            return True
        start, end = wanted
        try:
            slots = await self._source.fetch(start, end)
            if not slots:
                raise PriceParseError(
                    f"{self._source.name}: no prices for {start:%Y-%m-%d %H:%M}Z on"
                )
        except PriceError as exc:
            self._on_failure(str(exc))
            return False
        self._store.save_price_slots(self._key, slots)
        self._version += 1
        recovered = self._failures > 0
        self._failures = 0
        self._last_error = None
        self._last_success = self._clock.now()
        log.info("prices.fetched", source=self._key, slots=len(slots), first=str(slots[0].start))
        if recovered:
            self._notify(
                Notification(
                    "prices_recovered", "Prices are being fetched again.", self._clock.now()
                )
            )
        return self._missing_range() is None

    async def run(self) -> None:
        """Fetch at start, then after each publication; retry with jittered backoff."""
        if self._source is None:
            return
        while True:
            done = await self.refresh()
            if done:
                await self._clock.sleep(self._seconds_to_next_check())
            else:
                base = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** max(0, self._failures - 1))
                delay = base * self._rng.uniform(0.8, 1.2)
                if self._failures == 0:  # fetched something, but tomorrow is not out yet
                    delay = min(delay, self._seconds_to_next_check())
                await self._clock.sleep(delay)

    # ---------------------------------------------------------------- internals

    def _on_failure(self, message: str) -> None:
        self._failures += 1
        self._last_error = message
        first = self._failures == 1
        log.warning("prices.fetch_failed", source=self._key, error=message, attempt=self._failures)
        if first:  # loud once; later failures keep the last good data quietly
            self._notify(
                Notification(
                    "prices_failed",
                    f"Could not fetch prices ({message}); keeping the last known prices.",
                    self._clock.now(),
                    level="warning",
                    data={"source": self._key},
                )
            )

    def _day_bounds(self, offset_days: int) -> tuple[datetime, datetime]:
        local_today = self._clock.now().astimezone(self._tz).date()
        day = local_today + timedelta(days=offset_days)
        start = datetime.combine(day, time(0), tzinfo=self._tz).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self._tz).astimezone(UTC)
        return start, end

    def _published(self) -> datetime:
        now = self._clock.now()
        day = now.astimezone(MARKET_TZ).date()
        return datetime.combine(day, PUBLICATION, tzinfo=MARKET_TZ).astimezone(UTC)

    def _covered(self, start: datetime, end: datetime) -> bool:
        slots = self._store.load_price_slots(self._key, start, end)
        seconds = sum(
            (min(s.end, end) - max(s.start, start)).total_seconds()
            for s in slots
            if s.end > start and s.start < end
        )
        return seconds >= COVERED_FRACTION * (end - start).total_seconds()

    def _missing_range(self) -> tuple[datetime, datetime] | None:
        today = self._day_bounds(0)
        tomorrow = self._day_bounds(1)
        want_tomorrow = self._clock.now() >= self._published()
        need_today = not self._covered(*today)
        need_tomorrow = want_tomorrow and not self._covered(*tomorrow)
        if need_today:
            return today[0], (tomorrow[1] if want_tomorrow else today[1])
        if need_tomorrow:
            return tomorrow
        return None

    def _seconds_to_next_check(self) -> float:
        now = self._clock.now()
        nxt = self._published()
        if nxt <= now:
            nxt += timedelta(days=1)
        midnight = self._day_bounds(1)[0] + timedelta(minutes=1)
        return max(1.0, (min(nxt, midnight) - now).total_seconds())


def _contiguous_until(slots: list[PriceSlot], now: datetime) -> datetime | None:
    until: datetime | None = None
    for s in sorted(slots, key=lambda s: s.start):
        if until is None:
            if s.start <= now < s.end:
                until = s.end
        elif s.start <= until:
            until = max(until, s.end)
        else:
            break
    return until
