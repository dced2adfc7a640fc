"""Forecast.Solar (forecast.solar, public API without a key): its own PV model, one request per
array. `GET /estimate/{lat}/{lon}/{declination}/{azimuth}/{kwp}` answers `result.watts`, the
power at each time stamp (local time with an offset); its azimuth counts from south (-90 east,
90 west), ours from north (180 south). The power between two stamps is their mean.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import httpx

from v2g_gateway.errors import HomeError
from v2g_gateway.home.config import HomeSection, PvArray
from v2g_gateway.home.pv import PowerSlot

BASE_URL = "https://api.forecast.solar"


def their_azimuth(ours: float) -> float:
    """North-based degrees (180 = south) to Forecast.Solar's south-based (-180 .. 180)."""
    az = ours - 180.0
    return az - 360.0 if az > 180.0 else az + 360.0 if az < -180.0 else az


class ForecastSolar:
    name = "forecast.solar"

    def __init__(self, cfg: HomeSection) -> None:
        self._cfg = cfg
        self._base = (cfg.forecast_base_url or BASE_URL).rstrip("/")

    def url(self, a: PvArray) -> str:
        c = self._cfg
        return (
            f"{self._base}/estimate/{c.latitude:.4f}/{c.longitude:.4f}/{a.tilt:g}/"
            f"{their_azimuth(a.azimuth):g}/{a.kwp:g}"
        )

    async def fetch(self, http: httpx.AsyncClient, now: datetime) -> list[PowerSlot]:
        total: dict[tuple[datetime, datetime], float] = {}
        for a in self._cfg.pv:
            try:
                r = await http.get(self.url(a))
            except httpx.HTTPError as exc:
                raise HomeError(f"Forecast.Solar: {exc.__class__.__name__}: {exc}") from exc
            if r.status_code == 429:
                raise HomeError("Forecast.Solar: rate limit reached (12 requests an hour)")
            if r.status_code != 200:
                raise HomeError(f"Forecast.Solar: HTTP {r.status_code}: {r.text[:120]}")
            try:
                doc = r.json()
            except ValueError:
                raise HomeError("Forecast.Solar: the answer is not JSON") from None
            for s in parse(doc):
                key = (s.start, s.end)
                kw = s.kw if a.inverter_kw is None else min(s.kw, a.inverter_kw)
                total[key] = total.get(key, 0.0) + kw
        return [PowerSlot(k[0], k[1], v) for k, v in sorted(total.items())]


def parse(doc: Any) -> list[PowerSlot]:
    watts = doc.get("result", {}).get("watts") if isinstance(doc, dict) else None
    if not isinstance(watts, dict) or not watts:
        message = doc.get("message", {}).get("text") if isinstance(doc, dict) else None
        raise HomeError(f"Forecast.Solar: no result.watts in the answer ({message or 'empty'})")
    points: list[tuple[datetime, float]] = []
    for stamp, w in watts.items():
        try:
            t = datetime.fromisoformat(stamp)
        except ValueError:
            raise HomeError(f"Forecast.Solar: bad time {stamp!r}") from None
        if t.tzinfo is None:
            raise HomeError(f"Forecast.Solar: time {stamp!r} has no offset")
        if isinstance(w, bool) or not isinstance(w, int | float) or w < 0:
            raise HomeError(f"Forecast.Solar: bad power {w!r} at {stamp}")
        points.append((t, float(w)))
    points.sort()
    out: list[PowerSlot] = []
    for (t0, w0), (t1, w1) in itertools.pairwise(points):
        if (t1 - t0).total_seconds() > 3 * 3600:
            continue  # the night between two days: nothing
        out.append(PowerSlot(t0, t1, (w0 + w1) / 2000.0))
    return out
