"""Numbers and times as a person reads them on a phone: '7.4 kW', 'Tue 18:30', '3 min ago'."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def local(dt: datetime | None, tz: ZoneInfo, now: datetime | None = None) -> str | None:
    """'18:30' today, 'Tue 18:30' within a week, else '2026-01-15 18:30'."""
    if dt is None:
        return None
    t = dt.astimezone(tz)
    if now is None:
        return f"{t:%a %H:%M}"
    n = now.astimezone(tz)
    if t.date() == n.date():
        return f"{t:%H:%M}"
    if abs((t.date() - n.date()).days) < 7:
        return f"{t:%a %H:%M}"
    return f"{t:%Y-%m-%d %H:%M}"


def power(w: float | None) -> str:
    if w is None:
        return "unknown"
    kw = abs(w) / 1000.0
    return f"{kw:.1f} kW" if kw >= 0.1 or w == 0 else f"{abs(w):.0f} W"


def age(since: datetime | None, now: datetime) -> str | None:
    if since is None:
        return None
    s = (now - since).total_seconds()
    if s < 60:
        return "just now"
    if s < 3600:
        return f"{s // 60:.0f} min ago"
    if s < 86400 * 2:
        return f"{s / 3600:.1f} h ago"
    return f"{s / 86400:.0f} days ago"


def duration(d: timedelta) -> str:
    m = max(0.0, d.total_seconds() / 60.0)
    if m < 90:
        return f"{m:.0f} min"
    return f"{m / 60:.1f} h"


def money(x: float | None, currency: str) -> str:
    return "unknown" if x is None else f"{x:.2f} {currency}"


def kwh(wh: float | None) -> str:
    return "unknown" if wh is None else f"{wh / 1000.0:.1f} kWh"
