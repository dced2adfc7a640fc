"""Nord Pool data portal: DayAheadPrices and DayAheadPriceIndices (prices per MWh)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from v2g_gateway.errors import PriceParseError
from v2g_gateway.model import PriceSlot
from v2g_gateway.prices.common import (
    check_currency,
    guarded,
    load_json,
    need,
    normalise,
    number,
    utc_time,
)
from v2g_gateway.prices.http import get_checked

NAME = "nordpool"
DEFAULT_URL = "https://dataportal-api.nordpoolgroup.com/api"
_CET = ZoneInfo("Europe/Oslo")  # delivery dates are CET/CEST days


@guarded(NAME)
def parse_nordpool(raw: bytes | str, area: str | None = None) -> list[PriceSlot]:
    """Slots of one area from a DayAheadPrices or price-indices response."""
    doc = load_json(raw, NAME)
    if not isinstance(doc, dict):
        raise PriceParseError(f"{NAME}: expected a JSON object")
    currency = need(doc, "currency", str, NAME)
    if "multiIndexEntries" in doc:
        entries = need(doc, "multiIndexEntries", list, NAME)
        areas: list[Any] = doc.get("indexNames") or []
    else:
        entries = need(doc, "multiAreaEntries", list, NAME)
        areas = doc.get("deliveryAreas") or []
    if area is None:
        if len(areas) != 1:
            raise PriceParseError(f"{NAME}: the response holds areas {areas}; name one")
        area = str(areas[0])
    if areas and area not in areas:
        raise PriceParseError(f"{NAME}: area {area!r} not in the response (it has {areas})")
    out: list[PriceSlot] = []
    for e in entries:
        per_area = need(e, "entryPerArea", dict, NAME)
        if per_area.get(area) is None:
            continue
        start = utc_time(need(e, "deliveryStart", str, NAME), NAME)
        end = utc_time(need(e, "deliveryEnd", str, NAME), NAME)
        out.append(PriceSlot(start, end, number(per_area[area], NAME) / 1000.0, currency))
    return normalise(out)


class NordpoolSource:
    name = NAME

    def __init__(
        self,
        http: httpx.AsyncClient,
        area: str,
        currency: str = "EUR",
        base_url: str | None = None,
    ) -> None:
        self._http = http
        self._area = area.upper()
        self._currency = currency
        self._url = (base_url or DEFAULT_URL).rstrip("/")

    async def fetch(self, start: datetime, end: datetime) -> list[PriceSlot]:
        out: list[PriceSlot] = []
        day = start.astimezone(_CET).date()
        while day <= (end - timedelta(seconds=1)).astimezone(_CET).date():
            params = {
                "date": day.isoformat(),
                "market": "DayAhead",
                "deliveryArea": self._area,
                "currency": self._currency,
            }
            resp = await get_checked(
                self._http, NAME, f"{self._url}/DayAheadPrices", params, ok_statuses=(200, 204)
            )
            if resp.status_code == 200 and resp.content.strip():
                out.extend(parse_nordpool(resp.content, self._area))
            day += timedelta(days=1)
        slots = [s for s in normalise(out) if s.end > start and s.start < end]
        return check_currency(slots, self._currency, NAME)
