"""Is a charger's clock wrong? Compare its timestamps with the gateway's clock, on live messages.

Several chargers run without NTP, or send local wall time without a UTC offset (read as UTC, it
is off by whole hours). The store orders readings by receipt time, so a skewed clock changes no
decision; the user is still told once how to fix it. Offline replays are not evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

TOLERANCE_S = 300.0  # chargers without NTP drift by minutes; beyond this it is worth fixing
NEEDED = 3  # consecutive skewed (or in-sync) readings before the state changes
_OFFSET = re.compile(r"(Z|z|[+-]\d{2}:?\d{2})$")


def has_offset(raw: str) -> bool:
    """Whether an ISO 8601 date-time names its UTC offset (Z or +hh:mm)."""
    return "T" in raw.upper() and bool(_OFFSET.search(raw.strip()))


@dataclass(frozen=True, slots=True)
class SkewReport:
    skew_s: float  # charger minus gateway; positive = the charger is ahead
    offsetless: bool  # its timestamps carry no UTC offset


class SkewWatch:
    """observe() returns a SkewReport when the charger's clock becomes skewed, and a report
    with skew 0 when it is back in sync; None otherwise."""

    def __init__(self) -> None:
        self.skewed = False
        self._run = 0
        self._last: list[float] = []
        self._offsetless = False

    def observe(self, raw: str, ts: datetime, now: datetime) -> SkewReport | None:
        skew = (ts - now).total_seconds()
        off = abs(skew) > TOLERANCE_S
        self._offsetless = not has_offset(raw)
        if off != self.skewed:
            self._run += 1
            self._last.append(skew)
        else:
            self._run = 0
            self._last.clear()
        if self._run < NEEDED:
            return None
        self.skewed = off
        self._run = 0
        median = sorted(self._last)[len(self._last) // 2]
        self._last.clear()
        return SkewReport(round(median, 1) if off else 0.0, self._offsetless)


def describe(charger_id: str, report: SkewReport) -> str:
    """The sentence a user reads: how far off, and what to change on the charger."""
    skew = report.skew_s
    hours = round(skew / 3600)
    ahead = "ahead of" if skew > 0 else "behind"
    size = f"{abs(skew) / 3600:.1f} h" if abs(skew) >= 3600 else f"{abs(skew) / 60:.0f} min"
    text = f"charger {charger_id}'s clock is {size} {ahead} the gateway's"
    if report.offsetless and hours and abs(skew - hours * 3600) < TOLERANCE_S:
        text += (
            f"; it sends local time without a UTC offset (it looks like UTC{hours:+d}:00). "
            "Set the charger's time zone to UTC, or make it send times with an offset"
        )
    else:
        text += "; set its time (enable NTP on the charger)"
    return text + (
        ", or let it take the time from the gateway (OCPP ClockCtrlr.TimeSource = Heartbeat). "
        "The gateway orders its readings by when they arrive meanwhile."
    )
