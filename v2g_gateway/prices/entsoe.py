"""ENTSO-E Transparency Platform day-ahead prices (document type A44).

The API answers with one Publication_MarketDocument per request; a day may come as several
TimeSeries (e.g. an hourly and a 15-minute one, told apart by classificationSequence), and with
curveType A03 a position is omitted when its price equals the previous one.
"""

from __future__ import annotations

import bisect
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import httpx

from v2g_gateway.errors import PriceFetchError, PriceParseError
from v2g_gateway.model import PriceSlot
from v2g_gateway.prices.common import (
    as_text,
    check_currency,
    guarded,
    normalise,
    number,
    per_mwh_unit,
    utc_time,
)
from v2g_gateway.prices.http import get_checked

NAME = "entsoe"
DEFAULT_URL = "https://web-api.tp.entsoe.eu/api"

# EIC codes of the SDAC bidding zones (and Switzerland) under the names users know.
ZONES: dict[str, str] = {
    "AT": "10YAT-APG------L",
    "BE": "10YBE----------2",
    "BG": "10YCA-BULGARIA-R",
    "CH": "10YCH-SWISSGRIDZ",
    "CZ": "10YCZ-CEPS-----N",
    "DE-LU": "10Y1001A1001A82H",
    "DK1": "10YDK-1--------W",
    "DK2": "10YDK-2--------M",
    "EE": "10Y1001A1001A39I",
    "ES": "10YES-REE------0",
    "FI": "10YFI-1--------U",
    "FR": "10YFR-RTE------C",
    "GR": "10YGR-HTSO-----Y",
    "HR": "10YHR-HEP------M",
    "HU": "10YHU-MAVIR----U",
    "IE-SEM": "10Y1001A1001A59C",
    "IT-NORTH": "10Y1001A1001A73I",
    "IT-CENTRE-NORTH": "10Y1001A1001A70O",
    "IT-CENTRE-SOUTH": "10Y1001A1001A71M",
    "IT-SOUTH": "10Y1001A1001A788",
    "IT-CALABRIA": "10Y1001C--00096J",
    "IT-SICILY": "10Y1001A1001A75E",
    "IT-SARDINIA": "10Y1001A1001A74G",
    "LT": "10YLT-1001A0008Q",
    "LV": "10YLV-1001A00074",
    "NL": "10YNL----------L",
    "NO1": "10YNO-1--------2",
    "NO2": "10YNO-2--------T",
    "NO3": "10YNO-3--------J",
    "NO4": "10YNO-4--------9",
    "NO5": "10Y1001A1001A48H",
    "PL": "10YPL-AREA-----S",
    "PT": "10YPT-REN------W",
    "RO": "10YRO-TEL------P",
    "SE1": "10Y1001A1001A44P",
    "SE2": "10Y1001A1001A45N",
    "SE3": "10Y1001A1001A46L",
    "SE4": "10Y1001A1001A47J",
    "SI": "10YSI-ELES-----O",
    "SK": "10YSK-SEPS-----K",
}
_ALIASES = {"DE": "DE-LU", "LU": "DE-LU", "DE_LU": "DE-LU", "IE": "IE-SEM", "IE(SEM)": "IE-SEM"}
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def eic_code(area: str) -> str:
    """The EIC code for a friendly zone name (or an EIC code given directly)."""
    key = area.strip().upper().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key in ZONES:
        return ZONES[key]
    if area.strip() in ZONES.values():
        return area.strip()
    raise PriceParseError(f"{NAME}: unknown bidding zone {area!r} (known: {', '.join(ZONES)})")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _text(el: ET.Element, name: str) -> str | None:
    c = _child(el, name)
    return c.text.strip() if c is not None and c.text is not None else None


def _need_text(el: ET.Element, name: str) -> str:
    value = _text(el, name)
    if value is None:
        raise PriceParseError(f"{NAME}: <{name}> missing in <{_local(el.tag)}>")
    return value


def _resolution(value: str) -> timedelta:
    m = _DURATION.match(value)
    if not m or not any(m.groups()):
        raise PriceParseError(f"{NAME}: unsupported resolution {value!r}")
    d, h, mins = (int(g) if g else 0 for g in m.groups())
    step = timedelta(days=d, hours=h, minutes=mins)
    if step <= timedelta(0):
        raise PriceParseError(f"{NAME}: unsupported resolution {value!r}")
    return step


def _period_slots(period: ET.Element, curve: str, currency: str, div: float) -> list[PriceSlot]:
    interval = _child(period, "timeInterval")
    if interval is None:
        raise PriceParseError(f"{NAME}: <Period> without <timeInterval>")
    start = utc_time(_need_text(interval, "start"), NAME)
    end = utc_time(_need_text(interval, "end"), NAME)
    step = _resolution(_need_text(period, "resolution"))
    count = int((end - start) / step)
    if count <= 0 or count > 10_000:
        raise PriceParseError(f"{NAME}: period {start:%Y-%m-%dT%H:%MZ} has {count} slots")
    prices: dict[int, float] = {}
    for point in period:
        if _local(point.tag) != "Point":
            continue
        pos = int(_need_text(point, "position"))
        prices[pos] = number(_need_text(point, "price.amount"), NAME) / div
    if not prices:
        return []
    out: list[PriceSlot] = []
    last: float | None = None
    for pos in range(1, count + 1):
        value = prices.get(pos)
        if value is None and curve == "A03":
            value = last  # A03: an omitted position repeats the previous price
        if value is None:
            continue
        last = value
        t = start + step * (pos - 1)
        out.append(PriceSlot(t, t + step, value, currency))
    return out


def _finest_first(series: list[tuple[timedelta, list[PriceSlot]]]) -> list[PriceSlot]:
    """Where series overlap keep the finest resolution; coarser ones only fill what is left."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    chosen: list[PriceSlot] = []
    for _, slots in sorted(series, key=lambda s: s[0]):
        fresh: list[PriceSlot] = []
        for s in slots:
            i = bisect.bisect_right(starts, s.start)
            if i > 0 and ends[i - 1] > s.start:
                continue
            if i < len(starts) and starts[i] < s.end:
                continue
            fresh.append(s)
        chosen.extend(fresh)
        pairs = sorted(
            [(a, b) for a, b in zip(starts, ends, strict=True)] + [(s.start, s.end) for s in fresh]
        )
        starts = [a for a, _ in pairs]
        ends = [b for _, b in pairs]
    return normalise(chosen)


@guarded(NAME)
def parse_entsoe(raw: bytes | str) -> list[PriceSlot]:
    """Normalised slots of an A44 response; an Acknowledgement document is a PriceFetchError."""
    text = as_text(raw, NAME)
    if "<!DOCTYPE" in text[:2000].upper():
        raise PriceParseError(f"{NAME}: document type declarations are not accepted")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise PriceParseError(f"{NAME}: not XML ({exc})") from exc
    kind = _local(root.tag)
    if kind == "Acknowledgement_MarketDocument":
        reasons = [
            _text(r, "text") or _text(r, "code") or "?" for r in root if _local(r.tag) == "Reason"
        ]
        raise PriceFetchError(f"{NAME}: the API refused: {'; '.join(reasons) or 'no reason given'}")
    if kind != "Publication_MarketDocument":
        raise PriceParseError(f"{NAME}: unexpected document <{kind}>")
    series: list[tuple[timedelta, list[PriceSlot]]] = []
    for ts in root:
        if _local(ts.tag) != "TimeSeries":
            continue
        currency = _text(ts, "currency_Unit.name") or "EUR"
        unit = _text(ts, "price_Measure_Unit.name") or "MWH"
        div = per_mwh_unit(unit, NAME)
        curve = _text(ts, "curveType") or "A01"
        for period in ts:
            if _local(period.tag) != "Period":
                continue
            step = _resolution(_need_text(period, "resolution"))
            series.append((step, _period_slots(period, curve, currency, div)))
    if not series:
        raise PriceParseError(f"{NAME}: document holds no TimeSeries")
    return _finest_first(series)


def _stamp(t: datetime) -> str:
    return t.strftime("%Y%m%d%H%M")


class EntsoeSource:
    """Fetches one bidding zone; the token goes in the query as the API demands."""

    name = NAME

    def __init__(
        self,
        http: httpx.AsyncClient,
        area: str,
        token: str,
        currency: str = "EUR",
        base_url: str | None = None,
    ) -> None:
        self._http = http
        self._eic = eic_code(area)
        self._token = token
        self._currency = currency
        self._url = base_url or DEFAULT_URL

    async def fetch(self, start: datetime, end: datetime) -> list[PriceSlot]:
        params = {
            "securityToken": self._token,
            "documentType": "A44",
            "in_Domain": self._eic,
            "out_Domain": self._eic,
            "periodStart": _stamp(start),
            "periodEnd": _stamp(end),
        }
        # A44 "no data" comes as HTTP 200/400 with an acknowledgement body: parse it either way.
        resp = await get_checked(self._http, NAME, self._url, params, ok_statuses=(200, 400))
        slots = [s for s in parse_entsoe(resp.content) if s.end > start and s.start < end]
        return check_currency(slots, self._currency, NAME)
