"""What the price service needs from the state store (the SQLite store implements it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from v2g_gateway.model import PriceSlot


class PriceCache(Protocol):
    def save_price_slots(self, source: str, slots: Sequence[PriceSlot]) -> None:
        """Insert or replace slots by (source, start)."""
        ...

    def load_price_slots(self, source: str, start: datetime, end: datetime) -> list[PriceSlot]:
        """Slots of `source` overlapping [start, end), sorted by start."""
        ...
