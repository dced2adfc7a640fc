"""A price series the user's own system pushes (over MQTT): JSON [{start, end?, price}, ...].

This is the escape hatch for tariffs we do not fetch (e.g. US utilities), so it is strict:
aware ISO times, prices per kWh, and a slot without `end` lasts until the next start.
"""

from __future__ import annotations

from datetime import datetime

from v2g_gateway.errors import PriceParseError
from v2g_gateway.model import PriceSlot
from v2g_gateway.prices.common import guarded, load_json, need, normalise, number, utc_time

NAME = "mqtt"


@guarded(NAME)
def parse_pushed_series(raw: bytes | str, currency: str = "EUR") -> list[PriceSlot]:
    doc = load_json(raw, NAME)
    if isinstance(doc, dict):
        doc = need(doc, "prices", list, NAME)
    if not isinstance(doc, list):
        raise PriceParseError(f"{NAME}: expected a JSON list of {{start, end?, price}}")
    items: list[tuple[datetime, datetime | None, float]] = []
    for e in doc:
        start = utc_time(need(e, "start", str, NAME), NAME)
        end = utc_time(e["end"], NAME) if e.get("end") is not None else None
        items.append((start, end, number(need(e, "price", (int, float, str), NAME), NAME)))
    items.sort(key=lambda x: x[0])
    out: list[PriceSlot] = []
    for i, (start, end, price) in enumerate(items):
        if end is None:
            if i + 1 == len(items):
                raise PriceParseError(
                    f"{NAME}: the last entry ({start:%Y-%m-%dT%H:%MZ}) needs 'end'"
                )
            end = items[i + 1][0]
        if end <= start:
            raise PriceParseError(f"{NAME}: entry at {start:%Y-%m-%dT%H:%MZ} ends before it starts")
        out.append(PriceSlot(start, end, price, currency))
    return normalise(out)
