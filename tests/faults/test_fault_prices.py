"""The price API failing for hours: old data kept, clear errors, backoff, no discharge without prices.

A real HTTP server on loopback answers 500, hangs, or returns garbage; the real PriceService
and Store run on a clock that jumps from one wake-up to the next, so a day passes in seconds.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from fault_support import SteppingClock, make_config
from flaky_price_api import FlakyPriceApi

from v2g_gateway.model import Notification
from v2g_gateway.prices.service import RETRY_FIRST_S, RETRY_MAX_S, PriceService
from v2g_gateway.store import Store

START = datetime(2024, 10, 6, 8, tzinfo=UTC)  # 10:00 in Berlin, before day-ahead publication
DAY_END = datetime(2024, 10, 6, 22, tzinfo=UTC)  # midnight in Berlin: today's prices run out


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(START)


@pytest.fixture
def api(clock: SteppingClock) -> Iterator[FlakyPriceApi]:
    a = FlakyPriceApi(clock.now)
    yield a
    a.close()


async def test_hours_of_failures_keep_old_prices_back_off_and_report(
    tmp_path: Path, clock: SteppingClock, api: FlakyPriceApi
) -> None:
    cfg = make_config(
        tmp_path / "state", prices={"source": "awattar", "area": "DE", "base_url": api.url}
    )
    store = Store.open(tmp_path / "state" / "state.sqlite", cfg)
    told: list[Notification] = []
    async with httpx.AsyncClient(timeout=0.3) as http:
        svc = PriceService(cfg, store, clock, http, told.append, rng=random.Random(7))
        assert await svc.refresh()  # today's prices arrive
        today = svc.user_prices(START, DAY_END)
        assert len(today) == 14

        # From publication on, the API fails in every way for 20 hours of clock time.
        errors: dict[str, set[str]] = {}
        run = asyncio.create_task(svc.run())
        modes = ["500", "timeout", "garbage", "wrong"]
        while clock.now() < START + timedelta(hours=22):
            hour = int((clock.now() - START).total_seconds() // 3600)
            api.set_mode(modes[(hour // 3) % len(modes)])
            await clock.next_wakeup()
            st = svc.status()
            if st.last_error:
                errors.setdefault(api.mode, set()).add(st.last_error)
            if clock.now() < DAY_END:  # the last good data stays in use
                assert len(svc.user_prices(clock.now(), DAY_END)) >= 1
        failed = [t for t, mode in api.requests if mode != "ok"]
        assert len(failed) >= 8
        gaps = [(b - a).total_seconds() for a, b in pairwise(failed)]
        assert min(gaps) >= 0.8 * RETRY_FIRST_S  # never hammering the API
        assert max(gaps) <= 1.2 * RETRY_MAX_S + 1  # but never giving up for long
        assert gaps[:4] == sorted(gaps[:4])  # exponential at first
        # Clear errors naming the source and what went wrong.
        msgs = {m for ms in errors.values() for m in ms}
        assert any("HTTP 500" in m for m in msgs), msgs
        assert any("timed out" in m for m in msgs), msgs
        assert all(m.startswith("awattar") for m in msgs), msgs
        # Loud once, then quiet: one notification for the whole outage.
        assert [n.kind for n in told].count("prices_failed") == 1
        # Once the known prices run out there are none: dispatch sees unknown prices.
        assert svc.status().state == "missing"
        assert svc.user_prices(clock.now(), clock.now() + timedelta(hours=1)) == []

        # The API comes back: the next retry succeeds and the gateway says so.
        api.set_mode("ok")
        while not any(n.kind == "prices_recovered" for n in told):
            await clock.next_wakeup()
        run.cancel()
        assert svc.status().state == "fresh"
    store.close()
