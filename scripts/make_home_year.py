"""Make the shipped PV household year (v2g_gateway/data/home/de-potsdam-pv-household-2024.csv).

    .venv/bin/pip download --no-deps demandlib==0.2.2 -d /tmp/dl
    .venv/bin/python scripts/make_home_year.py /tmp/dl/demandlib-0.2.2-py3-none-any.whl

Inputs (both inside the demandlib wheel, MIT; see v2g_gateway/data/home/SOURCES.md):
- the DWD test reference year TRY2010 region 4 (Potsdam, measured weather 1988-2007 arranged
  into an average year: hourly direct and diffuse irradiance, air temperature, wind);
- the BDEW 2025 standard household load profile H25 (15 minutes, by month and day type) with
  its dynamisation over the year, scaled to 4,000 kWh a year.
PV: 8 kWp facing south at 35 degrees in Potsdam, modelled with pvlib (Perez transposition,
Faiman cell temperature, PVWatts DC with -0.37 %/K, 14 % system losses, 96 % inverter).
The weather year is laid onto the calendar of 2024 (29 February repeats the 28th), so it
lines up with the 2024 price histories in tests/fixtures/prices/csv.
"""

from __future__ import annotations

import csv
import io
import sys
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pvlib

OUT = Path(__file__).resolve().parents[1] / "v2g_gateway/data/home/de-potsdam-pv-household-2024.csv"
LAT, LON, ALT = 52.38, 13.07, 81.0
KWP, TILT, AZIMUTH = 8.0, 35.0, 180.0
ANNUAL_KWH = 4000.0
BERLIN = ZoneInfo("Europe/Berlin")
# Brandenburg's public holidays in 2024 (counted as Sundays by the BDEW profiles)
HOLIDAYS = {
    date(2024, 1, 1), date(2024, 3, 29), date(2024, 4, 1), date(2024, 5, 1), date(2024, 5, 9),
    date(2024, 5, 20), date(2024, 10, 3), date(2024, 10, 31), date(2024, 12, 25),
    date(2024, 12, 26),
}  # fmt: skip
MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
          "Oktober", "November", "Dezember")  # fmt: skip


def read_try(text: str) -> pd.DataFrame:
    rows = []
    body = text.split("***", 1)[1].splitlines()
    for line in body:
        f = line.split()
        if len(f) < 17:
            continue
        rows.append(
            {
                "month": int(f[2]),
                "day": int(f[3]),
                "hour": int(f[4]),
                "wind": float(f[7]),
                "temp": float(f[8]),
                "b": float(f[13]),
                "d": float(f[14]),
            }
        )
    return pd.DataFrame(rows)


def pv_kw(weather: pd.DataFrame) -> dict[tuple[int, int, int], float]:
    """PV power (kW, AC) per TRY hour, keyed (month, day, hour ending in MEZ)."""
    # MEZ = UTC+1 all year; the value of hour HH covers (HH-1, HH]: its middle for the sun
    times = pd.DatetimeIndex(
        [
            datetime(2023, m, d, tzinfo=UTC) + timedelta(hours=h - 1 - 1, minutes=30)
            for m, d, h in zip(weather.month, weather.day, weather.hour, strict=True)
        ]
    )
    sun = pvlib.solarposition.get_solarposition(times, LAT, LON, ALT)
    ghi = (weather.b + weather.d).to_numpy()
    dhi = weather.d.to_numpy()
    cosz = np.cos(np.radians(sun.apparent_zenith.to_numpy()))
    dni = np.where(cosz > 0.05, weather.b.to_numpy() / np.maximum(cosz, 0.05), 0.0)
    dni_extra = pvlib.irradiance.get_extra_radiation(times).to_numpy()
    poa = pvlib.irradiance.get_total_irradiance(
        TILT,
        AZIMUTH,
        sun.apparent_zenith,
        sun.azimuth,
        dni,
        ghi,
        dhi,
        dni_extra=dni_extra,
        model="perez",
        airmass=pvlib.atmosphere.get_relative_airmass(sun.apparent_zenith).fillna(40.0),
    )
    poa_global = poa["poa_global"].fillna(0.0).clip(lower=0.0)
    cell = pvlib.temperature.faiman(poa_global, weather.temp.to_numpy(), weather.wind.to_numpy())
    dc = pvlib.pvsystem.pvwatts_dc(poa_global, cell, KWP * 1000.0, -0.0037)
    ac = np.clip(np.asarray(dc) * 0.86 * 0.96, 0.0, KWP * 1000.0 * 0.96) / 1000.0
    ac = np.where(sun.apparent_zenith.to_numpy() < 90.0, ac, 0.0)
    return {
        (int(m), int(d), int(h)): float(x)
        for m, d, h, x in zip(weather.month, weather.day, weather.hour, ac, strict=True)
    }


def read_h25(text: str) -> dict[tuple[int, str, str], float]:
    """kWh per quarter hour for 1 GWh a year, keyed (month, day type, 'HH:MM')."""
    rows = list(csv.reader(io.StringIO(text)))
    months, kinds = rows[0][1:], rows[1][1:]
    out: dict[tuple[int, str, str], float] = {}
    for row in rows[2:]:
        hhmm = row[0][:5]
        for j, value in enumerate(row[1:]):
            out[(MONTHS.index(months[j]) + 1, kinds[j], hhmm)] = float(value)
    return out


def dynamisation(day_of_year: int) -> float:
    t = float(day_of_year)
    return -3.92e-10 * t**4 + 3.2e-7 * t**3 - 7.02e-5 * t**2 + 0.0021 * t + 1.24


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        weather = read_try(
            z.read("demandlib/vdi/resources_weather/TRY2010_04_Jahr.dat").decode("latin-1")
        )
        h25 = read_h25(z.read("demandlib/bdew/bdew_data/h25.csv").decode("utf-8"))
    pv = pv_kw(weather)
    t = datetime(2024, 1, 1, tzinfo=BERLIN).astimezone(UTC)
    end = datetime(2025, 1, 1, tzinfo=BERLIN).astimezone(UTC)
    rows: list[tuple[datetime, float, float]] = []
    while t < end:
        local = t.astimezone(BERLIN)
        day = local.date()
        kind = (
            "FT" if day.weekday() == 6 or day in HOLIDAYS else "SA" if day.weekday() == 5 else "WT"
        )
        kwh = h25[(local.month, kind, f"{local.hour:02d}:{local.minute // 15 * 15:02d}")]
        load_w = kwh * 4.0 * dynamisation(local.timetuple().tm_yday)  # W for 1 GWh/yr / 1000
        mez = t + timedelta(hours=1)
        m, d = mez.month, min(mez.day, 28) if (mez.month, mez.day) == (2, 29) else mez.day
        pv_w = pv[(m, d, mez.hour + 1)] * 1000.0
        rows.append((t, load_w, pv_w))
        t += timedelta(minutes=15)
    scale = ANNUAL_KWH / (sum(r[1] for r in rows) / 4000.0)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8", newline="") as f:
        f.write("start,load_w,pv_w\n")
        for when, load_w, pv_w in rows:
            f.write(f"{when:%Y-%m-%dT%H:%MZ},{load_w * scale:.0f},{pv_w:.0f}\n")
    load_kwh = sum(r[1] for r in rows) * scale / 4000.0
    pv_kwh = sum(r[2] for r in rows) / 4000.0
    print(f"{OUT}: {len(rows)} slots, load {load_kwh:.0f} kWh, PV {pv_kwh:.0f} kWh")


if __name__ == "__main__":
    main(sys.argv[1])
