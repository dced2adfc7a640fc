"""Prices beyond the published day-ahead, forecast from the price history, and the one thing
they are used for: the worth of a kWh left in the cars at the horizon's end.

The forecast is the mean of the same hour of the day over the last `days` days (day-ahead prices
follow the day's shape: cheap at night and at midday sun, dear in the evening). It never enters
the plan as a price: a kWh at the horizon's end is worth what refilling it later would cost,
from the forecast, but never less than today's known prices make it worth, so a forecast of
cheap prices tomorrow cannot justify a discharge today that today's known prices do not pay for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from v2g_gateway.model import UserPriceSlot

FORECAST_DAYS = 7
AFTER = timedelta(hours=24)  # the stretch after the horizon whose prices value its end


def forecast_prices(
    history: Sequence[UserPriceSlot],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    days: int = FORECAST_DAYS,
) -> list[UserPriceSlot]:
    """Hourly slots over [start, end): each the mean of that local hour over the last `days`
    days of history before `start` (empty without history)."""
    since = start - timedelta(days=days)
    by_hour: dict[int, list[tuple[float, float]]] = {}
    for p in history:
        if since <= p.start < start:
            by_hour.setdefault(p.start.astimezone(tz).hour, []).append(
                (p.import_per_kwh, p.export_per_kwh)
            )
    if not by_hour:
        return []
    out: list[UserPriceSlot] = []
    t = start
    while t < end:
        nxt = min(end, t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        hour = t.astimezone(tz).hour
        seen = by_hour.get(hour) or [x for xs in by_hour.values() for x in xs]
        out.append(
            UserPriceSlot(
                t, nxt, float(np.mean([x[0] for x in seen])), float(np.mean([x[1] for x in seen]))
            )
        )
        t = nxt
    return out


def end_value_per_kwh(
    known: Sequence[UserPriceSlot], forecast: Sequence[UserPriceSlot], eta_c: float
) -> float:
    """What a kWh stored at the horizon's end is worth: the median import price of the known
    horizon shaded by the charging loss (as without a forecast), raised to the forecast's
    median over the day after the horizon when that is dearer. Only raised, never lowered."""
    base = float(np.median([p.import_per_kwh for p in known])) * eta_c
    if not forecast:
        return base
    later = float(np.median([p.import_per_kwh for p in forecast])) * eta_c
    return max(base, later)
