"""aWATTar market data (DE and AT): `data` entries with millisecond timestamps, Eur/MWh."""

from __future__ import annotations

from datetime import UTC, datetime

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
    per_mwh_unit,
)
from v2g_gateway.prices.http import get_checked

NAME = "awattar"
URLS = {"DE": "https://api.awattar.de/v1", "AT": "https://api.awattar.at/v1"}


def _ms(value: object) -> datetime:
    ms = number(value, NAME, "timestamp")
    if not 0 <= ms < 1e14:
        raise PriceParseError(f"{NAME}: timestamp {value!r} out of range")
    return datetime.fromtimestamp(ms / 1000.0, UTC)


@guarded(NAME)
def parse_awattar(raw: bytes | str) -> list[PriceSlot]:
    doc = load_json(raw, NAME)
    out: list[PriceSlot] = []
    for e in need(doc, "data", list, NAME):
        unit = e.get("unit", "Eur/MWh") if isinstance(e, dict) else "Eur/MWh"
        if not isinstance(unit, str):
            raise PriceParseError(f"{NAME}: unit {unit!r} is not text")
        currency = unit.split("/")[0].strip().upper() or "EUR"
        div = per_mwh_unit(unit, NAME)
        start = _ms(need(e, "start_timestamp", (int, float), NAME))
        end = _ms(need(e, "end_timestamp", (int, float), NAME))
        out.append(PriceSlot(start, end, number(e.get("marketprice"), NAME) / div, currency))
    return normalise(out)


class AwattarSource:
    name = NAME

    def __init__(
        self, http: httpx.AsyncClient, area: str | None, base_url: str | None = None
    ) -> None:
        country = (area or "DE").upper().split("-")[0]
        if country not in URLS:
            raise PriceParseError(f"{NAME}: area must be DE or AT, got {area!r}")
        self._http = http
        self._url = (base_url or URLS[country]).rstrip("/")

    async def fetch(self, start: datetime, end: datetime) -> list[PriceSlot]:
        params = {
            "start": str(int(start.timestamp() * 1000)),
            "end": str(int(end.timestamp() * 1000)),
        }
        resp = await get_checked(self._http, NAME, f"{self._url}/marketdata", params)
        return check_currency(parse_awattar(resp.content), "EUR", NAME)
