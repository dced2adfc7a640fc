"""The price API failing for hours: old data kept, clear errors, backoff, no discharge without prices.

A real HTTP server on loopback answers 500, hangs, or returns garbage; the real PriceService
and Store run on a clock that jumps from one wake-up to the next, so a day passes in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from fault_support import PASSWORD, SteppingClock, make_config, running, until
from flaky_price_api import FlakyPriceApi

from simulators.battery import EvBattery
from simulators.charger import SimulatedCharger
from v2g_gateway.clock import ManualClock
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
    store = Store.open(tmp_path / "state" / "state.sqlite", cfg, clock)
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


def _discharges(sim: SimulatedCharger) -> int:
    return sum(
        any(
            q["limit"] < 0
            for q in p["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
        )
        for p in sim.profiles
    )


async def test_whole_gateway_never_discharges_while_prices_are_unknown(
    tmp_path: Path, api: FlakyPriceApi
) -> None:
    clock = ManualClock(START)
    api.now = clock.now
    cfg = make_config(
        tmp_path / "state",
        prices={"source": "awattar", "area": "DE", "base_url": api.url},
        preferences={"discharge_above_per_kwh": 0.01},  # any known export price is a "spike"
    )
    api.set_mode("500")
    async with running(cfg, clock) as gw:
        sim = SimulatedCharger(
            f"ws://127.0.0.1:{gw.csms.port}", "garage", password=PASSWORD, clock=clock
        )
        sim_task = asyncio.create_task(sim.run())
        try:
            await asyncio.wait_for(sim.booted.wait(), 10)
            await sim.plug_in(EvBattery(60, 80.0, max_charge_w=11000, max_discharge_w=10000))

            def last_reason() -> str:
                rows = gw.store.dispatch_log(1)
                return str(rows[0]["reason"]) if rows else ""

            await until(lambda: "prices unknown" in last_reason(), "a charge-only decision")
            assert _discharges(sim) == 0
            status = gw.health()["prices"]
            assert status["state"] == "missing" and "HTTP 500" in status["last_error"]

            # The API recovers; the next retry fetches and the car may discharge again.
            api.set_mode("ok")
            await clock.advance(1.2 * RETRY_FIRST_S + 1)
            await until(lambda: _discharges(sim) > 0, "a discharge once prices are known")

            # Garbage for the rest of the day and beyond: once the data runs out, no discharge.
            api.set_mode("garbage")
            before = _discharges(sim)
            await clock.set(DAY_END + timedelta(hours=2))
            gw.controller.wake()
            await until(lambda: "prices unknown" in last_reason(), "charge-only after data ran out")
            assert _discharges(sim) == before
            assert sim.installed == [] or all(
                q.limit >= 0 for p in sim.installed for q in p.periods
            )
            assert gw.health()["prices"]["state"] == "missing"
        finally:
            sim_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sim_task
