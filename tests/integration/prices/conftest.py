from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prices_sqlite_cache import SqlitePriceCache  # type: ignore[import-not-found]

from simulators.price_server import PriceServer

FIXTURES = Path(__file__).parents[2] / "fixtures" / "prices"


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[SqlitePriceCache]:
    c = SqlitePriceCache(tmp_path / "state.sqlite")
    yield c
    c.close()


@pytest.fixture
def server() -> Iterator[PriceServer]:
    with PriceServer(FIXTURES, token="good-token", page_size=20) as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client
