"""Octopus Energy standard-unit-rates (Agile): p/kWh, newest first, paginated by `next`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from v2g_gateway.errors import PriceFetchError, PriceParseError
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

NAME = "octopus"
DEFAULT_URL = "https://api.octopus.energy/v1"
DEFAULT_PRODUCT = "AGILE-24-10-01"
_MAX_PAGES = 50


def _rates(doc: Any, inc_vat: bool) -> list[PriceSlot]:
    key = "value_inc_vat" if inc_vat else "value_exc_vat"
    out: list[PriceSlot] = []
    for r in need(doc, "results", list, NAME):
        start = utc_time(need(r, "valid_from", str, NAME), NAME)
        if r.get("valid_to") is None:
            continue  # an open-ended rate belongs to a fixed tariff, not a day-ahead series
        end = utc_time(r["valid_to"], NAME)
        out.append(PriceSlot(start, end, number(r.get(key), NAME) / 100.0, "GBP"))
    return out


@guarded(NAME)
def parse_octopus(raw: bytes | str, inc_vat: bool = False) -> list[PriceSlot]:
    """GBP per kWh; exc VAT by default so [prices] vat_percent applies it like elsewhere."""
    return normalise(_rates(load_json(raw, NAME), inc_vat))


@guarded(NAME)
def _page(raw: bytes, inc_vat: bool) -> tuple[list[PriceSlot], str | None]:
    doc = load_json(raw, NAME)
    nxt = doc.get("next") if isinstance(doc, dict) else None
    if nxt is not None and not isinstance(nxt, str):
        raise PriceParseError(f"{NAME}: 'next' is not a URL")
    return _rates(doc, inc_vat), nxt


class OctopusSource:
    name = NAME

    def __init__(
        self,
        http: httpx.AsyncClient,
        region: str,
        product: str | None = None,
        base_url: str | None = None,
        inc_vat: bool = False,
    ) -> None:
        region = region.strip().upper().removeprefix("_")
        if len(region) != 1 or not "A" <= region <= "P":
            raise PriceParseError(f"{NAME}: area must be a region letter A-P, got {region!r}")
        product = product or DEFAULT_PRODUCT
        base = (base_url or DEFAULT_URL).rstrip("/")
        self._url = (
            f"{base}/products/{product}/electricity-tariffs/"
            f"E-1R-{product}-{region}/standard-unit-rates/"
        )
        self._http = http
        self._inc_vat = inc_vat

    async def fetch(self, start: datetime, end: datetime) -> list[PriceSlot]:
        params: dict[str, str] | None = {
            "period_from": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "period_to": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        url: str | None = self._url
        out: list[PriceSlot] = []
        for _ in range(_MAX_PAGES):
            if url is None:
                break
            resp = await get_checked(self._http, NAME, url, params)
            slots, url = _page(resp.content, self._inc_vat)
            out.extend(slots)
            params = None  # `next` carries the query
        else:
            raise PriceFetchError(f"{NAME}: more than {_MAX_PAGES} pages; giving up")
        slots = [s for s in normalise(out) if s.end > start and s.start < end]
        return check_currency(slots, "GBP", NAME)
