"""Helpers every parser shares: strict value checks that turn bad payloads into PriceParseError.

Parsers must never leak KeyError/TypeError/... to the service: a malformed response is an
ordinary event (keep old data, tell the user), so `guarded` converts whatever slips through.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar
from xml.etree.ElementTree import ParseError as XmlParseError
from zoneinfo import ZoneInfo

from v2g_gateway import json_limits
from v2g_gateway.errors import PriceError, PriceParseError
from v2g_gateway.model import PriceSlot

P = ParamSpec("P")
R = TypeVar("R")

_SLIPS = (
    KeyError,
    TypeError,
    ValueError,
    IndexError,
    AttributeError,
    OverflowError,
    ArithmeticError,
    XmlParseError,
    RecursionError,
)


def guarded(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Wrap a parse function so only PriceError subclasses can come out of it."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except PriceError:
                raise
            except _SLIPS as exc:
                raise PriceParseError(f"{name}: malformed payload ({exc!r:.200})") from exc

        return inner

    return wrap


def as_text(raw: bytes | str, name: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PriceParseError(f"{name}: payload is not UTF-8 text") from exc


def load_json(raw: bytes | str, name: str) -> Any:
    text = as_text(raw, name)
    try:
        return json_limits.loads(text)
    except json_limits.JsonTooDeep as exc:
        raise PriceParseError(f"{name}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise PriceParseError(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def need(obj: Any, key: str, kind: type | tuple[type, ...], name: str) -> Any:
    """obj[key] checked for type, with a message naming the missing/odd field."""
    if not isinstance(obj, dict):
        raise PriceParseError(f"{name}: expected a JSON object holding {key!r}")
    if key not in obj:
        raise PriceParseError(f"{name}: field {key!r} is missing")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PriceParseError(f"{name}: field {key!r} has unexpected value {value!r:.60}")
    return value


def number(value: Any, name: str, what: str = "price") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PriceParseError(f"{name}: {what} {value!r:.60} is not a number")
    try:
        out = float(value)
    except ValueError:
        raise PriceParseError(f"{name}: {what} {value!r:.60} is not a number") from None
    if not math.isfinite(out):
        raise PriceParseError(f"{name}: {what} {value!r:.60} is not finite")
    return out


def utc_time(value: Any, name: str, naive_is_utc: bool = False) -> datetime:
    """An ISO-8601 time as aware UTC; naive only where the API documents UTC."""
    if not isinstance(value, str):
        raise PriceParseError(f"{name}: time {value!r:.60} is not a string")
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PriceParseError(f"{name}: time {value!r:.60} is not ISO-8601") from None
    if t.tzinfo is None:
        if not naive_is_utc:
            raise PriceParseError(f"{name}: time {value!r:.60} has no UTC offset")
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def per_mwh_unit(unit: str, name: str) -> float:
    """Divisor to get per kWh from a unit string like 'EUR/MWh' or 'MWH'."""
    u = unit.strip().lower().replace(" ", "")
    if u.endswith("mwh"):
        return 1000.0
    if u.endswith("kwh"):
        return 1.0
    raise PriceParseError(f"{name}: unexpected price unit {unit!r} (expected per MWh or kWh)")


def local_wall_to_utc(wall: datetime, tz: ZoneInfo, second: bool) -> datetime | None:
    """A naive local time as UTC: `second` picks the repeated autumn hour; None = no such time."""
    aware = wall.replace(tzinfo=tz, fold=1 if second else 0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != wall:
        return None  # inside the spring-forward gap
    return utc


def is_ambiguous(wall: datetime, tz: ZoneInfo) -> bool:
    a = wall.replace(tzinfo=tz, fold=0).utcoffset()
    b = wall.replace(tzinfo=tz, fold=1).utcoffset()
    return a != b and local_wall_to_utc(wall, tz, False) is not None


def normalise(slots: Iterable[PriceSlot]) -> list[PriceSlot]:
    """Sorted by start with duplicates and overlaps dropped (first one wins)."""
    out: list[PriceSlot] = []
    for s in sorted(slots, key=lambda s: s.start):
        if s.end <= s.start:
            continue
        if out and s.start < out[-1].end:
            continue
        out.append(s)
    return out


def close_by_step(
    starts: list[tuple[datetime, float]], currency: str, name: str, default: timedelta | None = None
) -> list[PriceSlot]:
    """Slots from start times only: every slot is as long as the series' smallest step."""
    times = sorted({t for t, _ in starts})
    steps = [b - a for a, b in itertools.pairwise(times) if b > a]
    step = min(steps) if steps else default
    if step is None:
        raise PriceParseError(f"{name}: cannot tell the slot length from a single time")
    return normalise(PriceSlot(t, t + step, p, currency) for t, p in starts)


def check_currency(slots: list[PriceSlot], expected: str, name: str) -> list[PriceSlot]:
    odd = {s.currency for s in slots if s.currency.upper() != expected.upper()}
    if odd:
        raise PriceParseError(
            f"{name}: prices are in {', '.join(sorted(odd))} but the config says {expected}"
        )
    return slots
