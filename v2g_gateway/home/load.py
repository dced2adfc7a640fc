"""The house load forecast: learnt from what the meter measured, with a standard profile until
there is history.

Measurements are kept as 15-minute means. A slot's forecast is the mean of the same weekday and
time of day over the last `weeks` weeks that have a measurement; without any, the BDEW H25
standard household profile (by month and day type, with its dynamisation over the year) scaled
to the configured yearly energy.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

BUCKET_S = 900
WEEK_S = 7 * 86400
_MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
           "Oktober", "November", "Dezember")  # fmt: skip


@functools.cache
def _h25() -> dict[tuple[int, str, int], float]:
    """kWh per quarter hour for 1 GWh a year, keyed (month, WT/SA/FT, quarter of the day)."""
    text = resources.files("v2g_gateway.data").joinpath("home/bdew-h25.csv").read_text("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    out: dict[tuple[int, str, int], float] = {}
    for q, row in enumerate(rows[2:]):
        for j, value in enumerate(row[1:]):
            out[(_MONTHS.index(rows[0][j + 1]) + 1, rows[1][j + 1], q)] = float(value)
    return out


def standard_kw(local: datetime, annual_kwh: float) -> float:
    """The standard household's mean power (kW) at a local time, for `annual_kwh` a year."""
    kind = "FT" if local.weekday() == 6 else "SA" if local.weekday() == 5 else "WT"
    kwh = _h25()[(local.month, kind, (local.hour * 60 + local.minute) // 15)]
    t = float(local.timetuple().tm_yday)
    dyn = -3.92e-10 * t**4 + 3.2e-7 * t**3 - 7.02e-5 * t**2 + 0.0021 * t + 1.24
    return kwh * 4.0 * dyn * annual_kwh / 1e6


class LoadHistory:
    """15-minute means of the measured house load (W), for the last `weeks` weeks."""

    def __init__(self, tz: ZoneInfo, weeks: int = 4, annual_kwh: float = 4000.0) -> None:
        self._tz = tz
        self._weeks = weeks
        self._annual = annual_kwh
        self._sum: dict[int, float] = {}  # bucket start (epoch s) -> W * s
        self._seen: dict[int, float] = {}  # -> s

    def add(self, at: datetime, load_w: float, seconds: float) -> None:
        """`load_w` held for `seconds` up to `at` (split over the buckets it spans)."""
        end = at.timestamp()
        t = end - seconds
        while t < end - 1e-9:
            b = int(t // BUCKET_S) * BUCKET_S
            step = min(end, b + BUCKET_S) - t
            self._sum[b] = self._sum.get(b, 0.0) + load_w * step
            self._seen[b] = self._seen.get(b, 0.0) + step
            t += step
        keep = end - (self._weeks + 1) * WEEK_S
        for b in [b for b in self._sum if b < keep]:
            del self._sum[b], self._seen[b]

    def mean_w(self, bucket: int) -> float | None:
        seen = self._seen.get(bucket, 0.0)
        return self._sum[bucket] / seen if seen >= BUCKET_S / 3 else None

    def forecast_kw(self, slots: Sequence[tuple[datetime, datetime]]) -> list[float]:
        """Mean kW over each (start, end): learnt where history exists, else the standard."""
        out: list[float] = []
        for start, end in slots:
            t, total, span = start.timestamp(), 0.0, 0.0
            while t < end.timestamp() - 1e-9:
                b = int(t // BUCKET_S) * BUCKET_S
                step = min(end.timestamp(), b + BUCKET_S) - t
                total += self._bucket_kw(b) * step
                span += step
                t += step
            out.append(total / span if span > 0 else 0.0)
        return out

    def _bucket_kw(self, bucket: int) -> float:
        seen = [
            w
            for k in range(1, self._weeks + 1)
            if (w := self.mean_w(bucket - k * WEEK_S)) is not None
        ]
        if seen:
            return sum(seen) / len(seen) / 1000.0
        local = datetime.fromtimestamp(bucket, self._tz)
        return standard_kw(local, self._annual)

    def days_learnt(self, now: datetime) -> float:
        """How many days of the last weeks have measurements (for the status)."""
        since = (now - timedelta(weeks=self._weeks)).timestamp()
        return sum(s for b, s in self._seen.items() if b >= since) / 86400.0

    def to_json(self) -> dict[str, Any]:
        return {str(b): [round(self._sum[b], 1), round(self._seen[b], 1)] for b in self._sum}

    def load_json(self, doc: Any) -> None:
        """Restore what to_json() stored; anything malformed is skipped."""
        if not isinstance(doc, dict):
            return
        for k, v in doc.items():
            try:
                b, (s, n) = int(k), v
                self._sum[b], self._seen[b] = float(s), float(n)
            except (TypeError, ValueError):
                continue
