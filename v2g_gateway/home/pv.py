"""PV forecasts: one provider per module behind a small protocol, and the pvlib model that turns
an irradiance forecast into the user's arrays' power.

The model is the field's: the sun's position, Perez transposition onto each array's plane,
Faiman cell temperature, PVWatts DC (-0.37 %/K) with the array's losses, clipped at its inverter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import httpx

from v2g_gateway.home.config import PvArray


@dataclass(frozen=True, slots=True)
class PowerSlot:
    """Mean PV power (kW, AC, all arrays) over [start, end)."""

    start: datetime
    end: datetime
    kw: float


class PvForecaster(Protocol):
    name: str

    async def fetch(self, http: httpx.AsyncClient, now: datetime) -> list[PowerSlot]: ...


def modelled_kw(
    starts: Sequence[datetime],
    hours: float,
    ghi: Sequence[float],
    dhi: Sequence[float],
    dni: Sequence[float],
    temp_c: Sequence[float],
    wind_ms: Sequence[float],
    arrays: Sequence[PvArray],
    latitude: float,
    longitude: float,
) -> list[float]:
    """AC power (kW) of all arrays for irradiance means over [start, start + hours)."""
    import numpy as np
    import pandas as pd
    import pvlib

    mid = pd.DatetimeIndex([s + timedelta(hours=hours / 2) for s in starts])
    sun = pvlib.solarposition.get_solarposition(mid, latitude, longitude)
    zenith = sun.apparent_zenith
    airmass = pvlib.atmosphere.get_relative_airmass(zenith).fillna(40.0)
    extra = pvlib.irradiance.get_extra_radiation(mid)
    ghi_a, dhi_a, dni_a = (
        np.clip(np.asarray(x, dtype=float), 0.0, 1500.0) for x in (ghi, dhi, dni)
    )
    total = np.zeros(len(starts))
    for a in arrays:
        poa = pvlib.irradiance.get_total_irradiance(
            a.tilt,
            a.azimuth,
            zenith,
            sun.azimuth,
            dni_a,
            ghi_a,
            dhi_a,
            dni_extra=extra,
            airmass=airmass,
            model="perez",
        )
        g = np.nan_to_num(np.asarray(poa["poa_global"], dtype=float)).clip(min=0.0)
        cell = pvlib.temperature.faiman(g, np.asarray(temp_c, dtype=float), np.asarray(wind_ms))
        dc = np.asarray(pvlib.pvsystem.pvwatts_dc(g, cell, a.kwp, -0.0037), dtype=float)
        ac = dc * (1.0 - a.losses_percent / 100.0)
        if a.inverter_kw is not None:
            ac = np.minimum(ac, a.inverter_kw)
        total += np.where(np.asarray(zenith) < 90.0, ac.clip(min=0.0), 0.0)
    return [round(float(x), 4) if math.isfinite(x) else 0.0 for x in total]
