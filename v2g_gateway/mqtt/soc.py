"""A vehicle's SoC from its own MQTT topic (AC chargers cannot see it)."""

from __future__ import annotations

import json
import math


def parse_soc(payload: bytes) -> float:
    """A bare number or {"soc_percent": x}; ValueError naming what is wrong otherwise."""
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(
            f'expected a number or {{"soc_percent": x}}, got {payload[:40]!r}'
        ) from None
    if isinstance(value, dict):
        if "soc_percent" not in value:
            raise ValueError(f"JSON without 'soc_percent' (keys: {sorted(value)[:5]})")
        value = value["soc_percent"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"SoC must be a number, got {value!r}")
    soc = float(value)
    if not math.isfinite(soc) or not 0.0 <= soc <= 100.0:
        raise ValueError(f"SoC {soc:g} outside 0..100 %")
    return soc
