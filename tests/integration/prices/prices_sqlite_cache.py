"""A SQLite-backed PriceCache for the price tests (the real store lives elsewhere)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from v2g_gateway.model import PriceSlot


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
