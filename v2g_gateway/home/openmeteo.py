"""Open-Meteo (open-meteo.com, no key): an hourly irradiance forecast turned into PV with pvlib.

`GET /v1/forecast?latitude=..&longitude=..&hourly=shortwave_radiation,diffuse_radiation,
direct_normal_irradiance,temperature_2m,wind_speed_10m&forecast_days=3&timezone=GMT`. Radiation
values are the mean of the hour *before* their time stamp (Open-Meteo's documented convention),
times are GMT (`utc_offset_seconds` is honoured), wind is in km/h. Data: CC BY 4.0, Open-Meteo.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from v2g_gateway.errors import HomeError
from v2g_gateway.home.config import HomeSection
from v2g_gateway.home.pv import PowerSlot, modelled_kw

BASE_URL = "https://api.open-meteo.com"
VARIABLES = (
    "shortwave_radiation",
    "diffuse_radiation",
    "direct_normal_irradiance",
    "temperature_2m",
    "wind_speed_10m",
)


class OpenMeteo:
    name = "open-meteo"

    def __init__(self, cfg: HomeSection) -> None:
        assert cfg.latitude is not None and cfg.longitude is not None
        self._cfg = cfg
        self._base = (cfg.forecast_base_url or BASE_URL).rstrip("/")

    async def fetch(self, http: httpx.AsyncClient, now: datetime) -> list[PowerSlot]:
        params = {
            "latitude": f"{self._cfg.latitude:.4f}",
            "longitude": f"{self._cfg.longitude:.4f}",
            "hourly": ",".join(VARIABLES),
            "forecast_days": "3",
            "timezone": "GMT",
        }
        try:
            r = await http.get(f"{self._base}/v1/forecast", params=params)
        except httpx.HTTPError as exc:
            raise HomeError(f"Open-Meteo: {exc.__class__.__name__}: {exc}") from exc
        if r.status_code != 200:
            raise HomeError(f"Open-Meteo: HTTP {r.status_code}: {r.text[:120]}")
        try:
            doc = r.json()
        except ValueError:
            raise HomeError("Open-Meteo: the answer is not JSON") from None
        return self.parse(doc)

    def parse(self, doc: Any) -> list[PowerSlot]:
        if not isinstance(doc, dict) or not isinstance(doc.get("hourly"), dict):
            raise HomeError("Open-Meteo: no 'hourly' object in the answer")
        hourly = doc["hourly"]
        times = hourly.get("time")
        if not isinstance(times, list) or not times:
            raise HomeError("Open-Meteo: no hourly times")
        series: dict[str, list[float]] = {}
        for var in VARIABLES:
            values = hourly.get(var)
            if not isinstance(values, list) or len(values) != len(times):
                raise HomeError(f"Open-Meteo: hourly {var!r} missing or not as long as 'time'")
            series[var] = [_num(v) for v in values]
        offset = timedelta(seconds=_num(doc.get("utc_offset_seconds", 0)))
        ends: list[datetime] = []
        for t in times:
            try:
                ends.append(datetime.fromisoformat(str(t)).replace(tzinfo=UTC) - offset)
            except ValueError:
                raise HomeError(f"Open-Meteo: bad time {t!r}") from None
        starts = [e - timedelta(hours=1) for e in ends]  # each value is the hour before it
        cfg = self._cfg
        assert cfg.latitude is not None and cfg.longitude is not None
        kw = modelled_kw(
            starts,
            1.0,
            series["shortwave_radiation"],
            series["diffuse_radiation"],
            series["direct_normal_irradiance"],
            series["temperature_2m"],
            [w / 3.6 for w in series["wind_speed_10m"]],
            cfg.pv,
            cfg.latitude,
            cfg.longitude,
        )
        return [PowerSlot(s, s + timedelta(hours=1), p) for s, p in zip(starts, kw, strict=True)]


def _num(v: Any) -> float:
    """A forecast value; a missing one (null) counts as nothing."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return 0.0
    return float(v)
