from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from simulators.price_server import PriceServer
from v2g_gateway.model import PriceSlot

FIXTURES = Path(__file__).parents[2] / "fixtures" / "prices"


class SqlitePriceCache:
    """The PriceCache protocol on a real SQLite file, as the store will provide it."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS price_slot (source TEXT, start TEXT, end TEXT,"
            " price REAL, currency TEXT, PRIMARY KEY (source, start))"
        )

    def save_price_slots(self, source: str, slots: Sequence[PriceSlot]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO price_slot VALUES (?, ?, ?, ?, ?)",
                [
                    (source, s.start.isoformat(), s.end.isoformat(), s.price, s.currency)
                    for s in slots
                ],
            )

    def load_price_slots(self, source: str, start: datetime, end: datetime) -> list[PriceSlot]:
        rows = self._db.execute(
            "SELECT start, end, price, currency FROM price_slot"
            " WHERE source = ? AND end > ? AND start < ? ORDER BY start",
            (source, start.isoformat(), end.isoformat()),
        ).fetchall()
        return [
            PriceSlot(datetime.fromisoformat(a), datetime.fromisoformat(b), p, c)
            for a, b, p, c in rows
        ]

    def close(self) -> None:
        self._db.close()


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
