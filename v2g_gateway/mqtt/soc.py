"""A vehicle's own report on its MQTT topic (AC chargers cannot see the SoC).

A bare number, or JSON: `{"soc_percent": 55, "measured_at": "2026-12-01T18:30:00+01:00"}`
(`timestamp` works too, as ISO 8601 with an offset or as Unix seconds). The time lets a retained
message be used: without one a retained value is of unknown age and never used to discharge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from v2g_gateway import json_limits

# Optional fields a car integration (e.g. a vendor cloud bridge) may add next to the SoC.
EXTRA_FIELDS = ("odometer_km", "range_km")


TIME_FIELDS = ("measured_at", "timestamp")


@dataclass(frozen=True, slots=True)
class VehicleReport:
    soc_percent: float | None
    extra: dict[str, float]
    measured_at: datetime | None = None


def _time(key: str, value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or not 0 < value < 1e11:
            raise ValueError(f"{key} must be Unix seconds or ISO 8601, got {value!r}")
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        try:
            t = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{key} must be ISO 8601 with an offset, got {value[:40]!r}") from None
        if t.tzinfo is None:
            raise ValueError(f"{key} needs a time zone offset, got {value[:40]!r}")
        return t
    raise ValueError(f"{key} must be a time, got {value!r}")


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{key} must be finite, got {value!r}")
    return x


def parse_report(payload: bytes) -> VehicleReport:
    """A bare SoC number, or JSON with soc_percent and/or odometer_km, range_km."""
    try:
        value = json_limits.loads(payload)
    except ValueError:  # not UTF-8, not JSON, or nested too deep
        raise ValueError(
            f'expected a number or {{"soc_percent": x}}, got {payload[:40]!r}'
        ) from None
    extra: dict[str, float] = {}
    soc: float | None
    measured: datetime | None = None
    if isinstance(value, dict):
        for key in TIME_FIELDS:
            if value.get(key) is not None:
                measured = _time(key, value[key])
                break
        for key in EXTRA_FIELDS:
            if value.get(key) is not None:
                extra[key] = _number(key, value[key])
                if extra[key] < 0:
                    raise ValueError(f"{key} must not be negative, got {extra[key]:g}")
        if "soc_percent" not in value and not extra:
            raise ValueError(
                f"JSON without 'soc_percent' (or {', '.join(EXTRA_FIELDS)}); "
                f"keys: {sorted(value)[:5]}"
            )
        raw = value.get("soc_percent")
        soc = None if raw is None and extra else _number("SoC", raw)
    else:
        soc = _number("SoC", value)
    if soc is not None and not 0.0 <= soc <= 100.0:
        raise ValueError(f"SoC {soc:g} outside 0..100 %")
    return VehicleReport(soc, extra, measured)


def parse_soc(payload: bytes) -> float:
    """Only the SoC; ValueError when the payload has none."""
    report = parse_report(payload)
    if report.soc_percent is None:
        raise ValueError("no soc_percent in the payload")
    return report.soc_percent
