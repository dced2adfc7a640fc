"""Time-of-use tariffs from the config, expanded into UTC slots for any time range.

Periods are local wall-clock times, so a slot boundary in UTC moves with DST; expanding day by day
in local time and converting each boundary keeps 23- and 25-hour days right.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from v2g_gateway.config import WEEKDAYS, TariffPeriod
from v2g_gateway.errors import ConfigError
from v2g_gateway.model import UserPriceSlot

_SOURCE = "config"
_KEY = "prices.tariff"


@dataclass(frozen=True, slots=True)
class _Span:
    start: datetime
    end: datetime
    period: TariffPeriod


def _minutes(hhmm: str) -> int:
    hh, mm = hhmm.split(":")
    return int(hh) * 60 + int(mm)


def _local(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """Wall time on `day` (minutes may be 1440 = next midnight) as UTC; gaps map forward."""
    day = day + timedelta(days=minutes // 1440)
    minutes %= 1440
    wall = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz)
    return wall.astimezone(UTC)


def _applies(period: TariffPeriod, day: date) -> bool:
    return WEEKDAYS[day.weekday()] in period.days and day.month in period.months


def _spans_starting_on(periods: Sequence[TariffPeriod], day: date, tz: ZoneInfo) -> list[_Span]:
    """The UTC spans of every period whose local start falls on `day` (a wrap runs into day+1)."""
    out: list[_Span] = []
    for i, p in enumerate(periods):
        if not _applies(p, day):
            continue
        s, e = _minutes(p.start), _minutes(p.end)
        if s >= 1440:
            raise ConfigError(_SOURCE, f"{_KEY}[{i}].start", "start cannot be 24:00")
        if e <= s:
            e += 1440  # wraps past midnight; "00:00"-"00:00" is the whole day
        start, end = _local(day, s, tz), _local(day, e, tz)
        if end > start:
            out.append(_Span(start, end, p))
    return out


def tariff_prices(
    periods: Sequence[TariffPeriod], tz: ZoneInfo, start: datetime, end: datetime
) -> list[UserPriceSlot]:
    """Slots covering [start, end), cut at period boundaries and local midnights.

    Where periods overlap the first one listed wins. A time no period covers is a ConfigError
    naming the local time, since planning on an invented price would be worse than stopping.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return []
    slots: list[UserPriceSlot] = []
    day = start.astimezone(tz).date()
    last_day = (end - timedelta(microseconds=1)).astimezone(tz).date()
    previous = _spans_starting_on(periods, day - timedelta(days=1), tz)
    # Periods listed first win: keep config order, yesterday's wraps ranked with their period.
    order = {id(p): i for i, p in enumerate(periods)}
    while day <= last_day:
        today = _spans_starting_on(periods, day, tz)
        spans = sorted(previous + today, key=lambda s: order[id(s.period)])
        midnight, next_midnight = _local(day, 0, tz), _local(day, 1440, tz)
        lo, hi = max(start, midnight), min(end, next_midnight)
        cuts = {lo, hi}
        for sp in spans:
            cuts.update(t for t in (sp.start, sp.end) if lo < t < hi)
        edges = sorted(cuts)
        for a, b in itertools.pairwise(edges):
            hit = next((sp for sp in spans if sp.start <= a and b <= sp.end), None)
            if hit is None:
                la, lb = a.astimezone(tz), b.astimezone(tz)
                raise ConfigError(
                    _SOURCE,
                    _KEY,
                    f"no period covers {la:%a %Y-%m-%d %H:%M}-{lb:%H:%M} local time "
                    f"({tz.key}); add a period for it",
                )
            slots.append(UserPriceSlot(a, b, hit.period.import_per_kwh, hit.period.export_per_kwh))
        previous = today
        day += timedelta(days=1)
    return slots
