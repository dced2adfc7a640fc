"""Energi Data Service (Energinet): DayAheadPrices / Elspotprices for DK1 and DK2.

Accepts the current REST `records` format and the old GraphQL `data.elspotprices` format.
Times come as naive UTC (`TimeUTC`/`HourUTC`); prices per MWh in EUR and DKK columns.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx

from v2g_gateway.errors import PriceParseError
from v2g_gateway.model import PriceSlot
from v2g_gateway.prices.common import (
    check_currency,
    close_by_step,
    guarded,
    load_json,
    need,
    number,
    utc_time,
)
from v2g_gateway.prices.http import get_checked

NAME = "energidataservice"
DEFAULT_URL = "https://api.energidataservice.dk"
_TIME_KEYS = ("TimeUTC", "HourUTC")


def _price_key(rec: dict[str, Any], currency: str) -> str | None:
    for key in (f"DayAheadPrice{currency}", f"SpotPrice{currency}"):
        if key in rec:
            return key
    return None


@guarded(NAME)
def parse_energidataservice(
    raw: bytes | str, area: str | None = None, currency: str = "EUR"
) -> list[PriceSlot]:
    doc = load_json(raw, NAME)
    if isinstance(doc, dict) and "records" in doc:
        records = need(doc, "records", list, NAME)
        default_step = timedelta(minutes=15 if doc.get("dataset") == "DayAheadPrices" else 60)
    elif isinstance(doc, dict) and isinstance(doc.get("data"), dict):
        records = need(doc["data"], "elspotprices", list, NAME)
        default_step = timedelta(hours=1)
    else:
        raise PriceParseError(f"{NAME}: expected 'records' (REST) or 'data.elspotprices' (GraphQL)")
    currency = currency.upper()
    starts: list[tuple[datetime, float]] = []
    for rec in records:
        if not isinstance(rec, dict):
            raise PriceParseError(f"{NAME}: record {rec!r:.60} is not an object")
        if area is not None and "PriceArea" in rec and rec["PriceArea"] != area:
            continue
        key = _price_key(rec, currency)
        if key is None:
            raise PriceParseError(f"{NAME}: no {currency} price column in record {rec!r:.80}")
        if rec[key] is None:
            continue
        tkey = next((k for k in _TIME_KEYS if k in rec), None)
        if tkey is None:
            raise PriceParseError(f"{NAME}: record without TimeUTC/HourUTC")
        t = utc_time(rec[tkey], NAME, naive_is_utc=True)
        starts.append((t, number(rec[key], NAME) / 1000.0))
    if not starts:
        return []
    return close_by_step(starts, currency, NAME, default_step)


class EnergiDataServiceSource:
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
        self._currency = currency.upper()
        self._url = (base_url or DEFAULT_URL).rstrip("/")

    async def fetch(self, start: datetime, end: datetime) -> list[PriceSlot]:
        params = {
            "start": start.strftime("%Y-%m-%dT%H:%M"),
            "end": end.strftime("%Y-%m-%dT%H:%M"),
            "timezone": "UTC",
            "filter": json.dumps({"PriceArea": [self._area]}),
            "sort": "TimeUTC asc",
            "limit": "0",
        }
        resp = await get_checked(self._http, NAME, f"{self._url}/dataset/DayAheadPrices", params)
        slots = parse_energidataservice(resp.content, self._area, self._currency)
        slots = [s for s in slots if s.end > start and s.start < end]
        return check_currency(slots, self._currency, NAME)
