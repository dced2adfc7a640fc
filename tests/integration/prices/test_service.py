"""PriceService against the price simulator, a real SQLite cache and a manual clock."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import httpx
from prices_sqlite_cache import SqlitePriceCache  # type: ignore[import-not-found]

from simulators.price_server import PriceServer
from v2g_gateway.clock import ManualClock
from v2g_gateway.config import Config, parse_config
from v2g_gateway.model import Notification
from v2g_gateway.prices.service import PriceService

BEFORE_PUBLICATION = datetime(2024, 10, 6, 8, tzinfo=UTC)  # 10:00 Berlin
AFTER_PUBLICATION = datetime(2024, 10, 6, 11, 30, tzinfo=UTC)  # 13:30 Berlin


def config(url: str, **prices: object) -> Config:
    return parse_config(
        {
            "gateway": {"timezone": "Europe/Berlin"},
            "prices": {
                "source": "entsoe",
                "area": "DE-LU",
                "token": "good-token",
                "base_url": f"{url}/api",
                "vat_percent": 19,
                "grid_fee_per_kwh": 0.10,
                "export_fixed_per_kwh": 0.08,
                **prices,
            },
        }
    )


class Events:
    def __init__(self) -> None:
        self.items: list[Notification] = []
        self.changed = asyncio.Event()

    def __call__(self, n: Notification) -> None:
        self.items.append(n)
        self.changed.set()

    async def wait_for(self, kind: str) -> Notification:
        while True:
            found = [n for n in self.items if n.kind == kind]
            if found:
                return found[-1]
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), timeout=5)


def service(
    srv: PriceServer,
    cache: SqlitePriceCache,
    clock: ManualClock,
    http: httpx.AsyncClient,
    events: Events,
    **prices: object,
) -> PriceService:
    return PriceService(config(srv.url, **prices), cache, clock, http, events, rng=random.Random(1))


async def test_today_then_tomorrow_after_publication(
    server: PriceServer, cache: SqlitePriceCache, http: httpx.AsyncClient
) -> None:
    server.use("entsoe", "DE_60M_15M_overlap.xml")
    clock, events = ManualClock(BEFORE_PUBLICATION), Events()
    svc = service(server, cache, clock, http, events)
    assert svc.status().state == "missing"
    assert await svc.refresh()
    day = svc.user_prices(
        datetime(2024, 10, 5, 22, tzinfo=UTC), datetime(2024, 10, 6, 22, tzinfo=UTC)
    )
    assert len(day) == 96 and all(s.hours == 0.25 for s in day)
    spot0 = cache.load_price_slots("entsoe:DE-LU", day[0].start, day[0].end)[0].price
    assert day[0].import_per_kwh == spot0 * 1.19 + 0.10 and day[0].export_per_kwh == 0.08
    assert svc.status().state == "fresh"
    assert not cache.load_price_slots(
        "entsoe:DE-LU", datetime(2024, 10, 7, tzinfo=UTC), datetime(2024, 10, 8, tzinfo=UTC)
    )
    await clock.set(AFTER_PUBLICATION)
    assert await svc.refresh()
    assert (
        len(
            cache.load_price_slots(
                "entsoe:DE-LU",
                datetime(2024, 10, 6, 22, tzinfo=UTC),
                datetime(2024, 10, 7, 22, tzinfo=UTC),
            )
        )
        == 96
    )
    assert svc.status().covered_until == datetime(2024, 10, 7, 22, tzinfo=UTC)
    assert events.items == []


async def test_failures_keep_old_data_loud_once_then_recover(
    server: PriceServer, cache: SqlitePriceCache, http: httpx.AsyncClient
) -> None:
    server.use("entsoe", "DE_60M_15M_overlap.xml")
    clock, events = ManualClock(BEFORE_PUBLICATION), Events()
    svc = service(server, cache, clock, http, events)
    assert await svc.refresh()
    await clock.set(AFTER_PUBLICATION)
    server.fail_next(503, times=2)
    assert not await svc.refresh()
    assert not await svc.refresh()
    failed = [n for n in events.items if n.kind == "prices_failed"]
    assert len(failed) == 1 and "HTTP 503" in failed[0].message and failed[0].level == "warning"
    assert svc.status().last_error is not None and "HTTP 503" in svc.status().last_error  # type: ignore[operator]
    assert len(svc.user_prices(clock.now(), clock.now() + timedelta(hours=1))) == 4  # old data kept
    assert await svc.refresh()
    assert events.items[-1].kind == "prices_recovered"
    assert svc.status().last_error is None


async def test_stale_and_missing(
    server: PriceServer, cache: SqlitePriceCache, http: httpx.AsyncClient
) -> None:
    server.use("entsoe", "DE_60M_15M_overlap.xml")
    clock, events = ManualClock(AFTER_PUBLICATION), Events()
    svc = service(server, cache, clock, http, events, max_age_hours=6)
    assert await svc.refresh()
    server.fail_next(500, times=100)
    await clock.set(AFTER_PUBLICATION + timedelta(hours=7))
    assert svc.status().state == "stale"
    await clock.set(datetime(2024, 10, 7, 22, 30, tzinfo=UTC))
    assert svc.status().state == "missing"
    assert svc.user_prices(clock.now(), clock.now() + timedelta(hours=1)) == []


async def test_cached_prices_survive_a_restart_as_stale(
    server: PriceServer, cache: SqlitePriceCache, http: httpx.AsyncClient
) -> None:
    server.use("entsoe", "DE_60M_15M_overlap.xml")
    clock, events = ManualClock(AFTER_PUBLICATION), Events()
    assert await service(server, cache, clock, http, events).refresh()
    restarted = service(server, cache, clock, http, events)
    assert restarted.status().state == "stale"  # known prices, not yet confirmed by a fetch
    assert len(restarted.user_prices(clock.now(), clock.now() + timedelta(hours=2))) == 8


async def test_run_retries_with_backoff_until_tomorrow_appears(
    server: PriceServer, cache: SqlitePriceCache, http: httpx.AsyncClient
) -> None:
    server.use("entsoe", "DE_60M_15M_overlap.xml")
    clock, events = ManualClock(AFTER_PUBLICATION), Events()
    server.fail_next(502)
    svc = service(server, cache, clock, http, events)
    task = asyncio.create_task(svc.run())
    try:
        await events.wait_for("prices_failed")
        assert svc.status().state == "missing"
        await clock.advance(1800)  # beyond the longest first backoff
        await events.wait_for("prices_recovered")
        assert svc.status().state == "fresh"
    finally:
        task.cancel()


async def test_tariff_source_is_always_fresh(
    cache: SqlitePriceCache, http: httpx.AsyncClient
) -> None:
    clock, events = ManualClock(datetime(2024, 3, 30, 23, tzinfo=UTC)), Events()
    cfg = Config()
    svc = PriceService(cfg, cache, clock, http, events)
    berlin = cfg.gateway.tz
    day = datetime(2024, 3, 31, tzinfo=berlin), datetime(2024, 4, 1, tzinfo=berlin)
    slots = svc.user_prices(*day)
    assert sum(s.hours for s in slots) == 23  # the Berlin spring-forward day
    assert slots[0].start == clock.now() and slots[-1].end == datetime(2024, 3, 31, 22, tzinfo=UTC)
    assert svc.status().state == "fresh"
    await svc.run()  # nothing to fetch: returns at once


async def test_unknown_zone_is_a_config_error(
    cache: SqlitePriceCache, http: httpx.AsyncClient
) -> None:
    import pytest

    from v2g_gateway.errors import ConfigError

    with pytest.raises(ConfigError, match=r"prices\.area: entsoe: unknown bidding zone 'XX'"):
        PriceService(
            config("http://127.0.0.1:9", area="XX"),
            cache,
            ManualClock(AFTER_PUBLICATION),
            http,
            Events(),
        )
