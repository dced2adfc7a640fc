"""Price series in CSV: a simple `start,price` file and the ENTSO-E web-export variants.

ENTSO-E exports give local "dd.mm.yyyy HH:MM - dd.mm.yyyy HH:MM" intervals (CET/CEST): the
spring-forward hour appears blank (or, in older exports, with a value for an hour that never
existed) and the autumn hour twice. Local wall times are resolved here: the first of a repeated
hour is summer time, the second winter time, and a wall time that does not exist is dropped.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from v2g_gateway.errors import PriceParseError
from v2g_gateway.model import PriceSlot
from v2g_gateway.prices.common import (
    as_text,
    close_by_step,
    guarded,
    is_ambiguous,
    local_wall_to_utc,
    normalise,
    number,
)

NAME = "csv"
MARKET_TZ = ZoneInfo("Europe/Brussels")  # CET/CEST, the SDAC market time
_ZONES = {
    "CET/CEST": "Europe/Brussels",
    "EET/EEST": "Europe/Helsinki",
    "WET/WEST": "Europe/Lisbon",
    "GMT/BST": "Europe/London",
    "UTC": "UTC",
}
_MTU = re.compile(
    r"^(\d{2})\.(\d{2})\.(\d{4}) (\d{2}):(\d{2})(?::\d{2})?"
    r"(?: \([A-Z]+\))? - (\d{2})\.(\d{2})\.(\d{4}) (\d{2}):(\d{2})"
)
_STATA = re.compile(r"^(\d{2})([a-z]{3})(\d{4}) (\d{2}):(\d{2})(?::(\d{2}))?$")
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_BLANK = {"", "-", "n/e", "n/a", "na", "nan", "null"}
_UNIT = re.compile(r"\[\s*([A-Za-z]{3})\s*/\s*([kKmM][wW][hH])\s*\]")


def _rows(text: str) -> list[list[str]]:
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise PriceParseError(f"{NAME}: not a CSV file ({exc})") from None
    return [r for r in rows if r and any(c.strip() for c in r)]


class _WallClock:
    """Turns a sequence of local wall times into UTC, telling the repeated hour's two passes apart."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._seen: set[datetime] = set()

    def utc(self, wall: datetime) -> datetime | None:
        second = wall in self._seen and is_ambiguous(wall, self.tz)
        self._seen.add(wall)
        return local_wall_to_utc(wall, self.tz, second)


def _value(cell: str) -> float | None:
    cell = cell.strip()
    if cell.lower() in _BLANK:
        return None
    return number(cell, NAME)


def _zone_of(header: str) -> ZoneInfo:
    m = re.search(r"\(([A-Z/]+)\)", header)
    if not m:
        return MARKET_TZ
    key = m.group(1)
    if key not in _ZONES:
        raise PriceParseError(f"{NAME}: unknown time zone {key!r} in header {header!r}")
    return ZoneInfo(_ZONES[key])


def _parse_entsoe_export(rows: list[list[str]]) -> list[PriceSlot]:
    header = rows[0]
    clock = _WallClock(_zone_of(header[0]))
    unit = _UNIT.search(header[1]) if len(header) > 1 else None
    if unit is None:
        raise PriceParseError(f"{NAME}: no [CUR/MWh] unit in the header {header!r}")
    currency = unit.group(1).upper()
    div = 1000.0 if unit.group(2).lower() == "mwh" else 1.0
    out: list[PriceSlot] = []
    for n, row in enumerate(rows[1:], start=2):
        m = _MTU.match(row[0].strip())
        if m is None:
            raise PriceParseError(f"{NAME}: line {n}: cannot read interval {row[0]!r:.60}")
        d1, mo1, y1, h1, mi1, d2, mo2, y2, h2, mi2 = (int(g) for g in m.groups())
        wall = datetime(y1, mo1, d1, h1, mi1)
        length = datetime(y2, mo2, d2, h2, mi2) - wall
        start = clock.utc(wall)
        value = _value(row[1]) if len(row) > 1 else None
        if start is None or value is None or length <= timedelta(0):
            continue
        cur = row[2].strip().upper() if len(row) > 2 and row[2].strip() else currency
        out.append(PriceSlot(start, start + length, value / div, cur))
    return normalise(out)


def _parse_stata(rows: list[list[str]]) -> list[PriceSlot]:
    """The BE series re-saved by Stata: "01jan2022 00:00:00", EUR/kWh, local CET/CEST."""
    clock = _WallClock(MARKET_TZ)
    starts: list[tuple[datetime, float]] = []
    for n, row in enumerate(rows[1:], start=2):
        m = _STATA.match(row[0].strip())
        if m is None or m.group(2) not in _MONTHS:
            raise PriceParseError(f"{NAME}: line {n}: cannot read time {row[0]!r:.60}")
        wall = datetime(
            int(m.group(3)),
            _MONTHS.index(m.group(2)) + 1,
            int(m.group(1)),
            int(m.group(4)),
            int(m.group(5)),
        )
        start = clock.utc(wall)
        value = _value(row[1]) if len(row) > 1 else None
        if start is not None and value is not None:
            starts.append((start, value))
    return close_by_step(starts, "EUR", NAME, timedelta(hours=1)) if starts else []


def _parse_simple(rows: list[list[str]]) -> list[PriceSlot]:
    """`start[,end],price`: ISO times (naive = CET/CEST); unit from the header or the magnitude."""
    header = [c.strip().lower() for c in rows[0]]
    has_header = not _looks_like_time(rows[0][0])
    body = rows[1:] if has_header else rows
    end_col = header.index("end") if has_header and "end" in header else None
    price_col = len(rows[0]) - 1
    head_text = ",".join(rows[0]) if has_header else ""
    unit = _UNIT.search(head_text)
    currency = unit.group(1).upper() if unit else "EUR"
    clock = _WallClock(MARKET_TZ)
    starts: list[tuple[datetime, float]] = []
    ends: dict[datetime, datetime] = {}
    for n, row in enumerate(body, start=2 if has_header else 1):
        if len(row) <= price_col:
            raise PriceParseError(f"{NAME}: line {n}: expected {price_col + 1} columns")
        start = _time(row[0], clock, n)
        value = _value(row[price_col])
        if start is None or value is None:
            continue
        starts.append((start, value))
        if end_col is not None:
            end = _time(row[end_col], clock, n)
            if end is not None:
                ends[start] = end
    if not starts:
        return []
    lowered = head_text.lower()
    if "mwh" in lowered:
        div = 1000.0
    elif "kwh" in lowered:
        div = 1.0
    else:  # no unit given: no retail or spot price reaches 5 per kWh, but hourly MWh prices do
        div = 1000.0 if max(abs(v) for _, v in starts) > 5 else 1.0
    starts = [(t, v / div) for t, v in starts]
    if ends:
        return normalise(PriceSlot(t, ends.get(t, t), v, currency) for t, v in starts)
    return close_by_step(starts, currency, NAME)


def _looks_like_time(cell: str) -> bool:
    try:
        datetime.fromisoformat(cell.strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _time(cell: str, clock: _WallClock, n: int) -> datetime | None:
    try:
        t = datetime.fromisoformat(cell.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PriceParseError(f"{NAME}: line {n}: {cell!r:.40} is not an ISO-8601 time") from None
    if t.tzinfo is not None:
        return t.astimezone(UTC)
    return clock.utc(t)


VARIANTS = ("auto", "simple", "entsoe", "stata")


def detect_variant(rows: list[list[str]]) -> str:
    """Which CSV this is, from the file alone: the one rule the daemon and `prices load` share."""
    first = rows[0][0].strip()
    if first.upper().startswith("MTU"):
        return "entsoe"
    if len(rows) > 1 and _STATA.match(rows[1][0].strip()):
        return "stata"
    return "simple"


@guarded(NAME)
def parse_csv(raw: bytes | str, variant: str = "auto") -> list[PriceSlot]:
    """variant: auto (told apart by `detect_variant`), simple, entsoe (the ENTSO-E web export,
    with or without currency column) or stata (the re-saved BE series)."""
    if variant not in VARIANTS:
        raise PriceParseError(f"{NAME}: unknown CSV variant {variant!r} (known: {VARIANTS})")
    rows = _rows(as_text(raw, NAME))
    if not rows:
        raise PriceParseError(f"{NAME}: the file is empty")
    kind = detect_variant(rows) if variant == "auto" else variant
    if kind == "entsoe":
        return _parse_entsoe_export(rows)
    if kind == "stata":
        return _parse_stata(rows)
    return _parse_simple(rows)
