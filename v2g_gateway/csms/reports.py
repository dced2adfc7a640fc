"""NotifyReport device-model entries -> the capabilities the planner and the user care about.

OCPP 2.0.1 has no standard variable for bidirectional power; vendors put it under a V2X or
Bidirectional component, so those names are matched loosely. A charger's answer to a negative
limit (commands.py) has the last word on discharge either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_TRUE = {"true", "1", "yes", "enabled"}


def _actual(entry: dict[str, Any]) -> str | None:
    for attr in entry.get("variableAttribute", ()):
        if attr.get("type", "Actual") == "Actual" and "value" in attr:
            return str(attr["value"])
    return None


def _as_bool(value: str | None) -> bool | None:
    return None if value is None else value.strip().lower() in _TRUE


def capabilities(report_data: list[dict[str, Any]]) -> Iterator[tuple[str, Any, str]]:
    """(name, value, detail) for each entry that says something we use."""
    for entry in report_data:
        component = str(entry["component"]["name"])
        variable = str(entry["variable"]["name"])
        value = _actual(entry)
        where = f"{component}.{variable}"
        lc = component.lower()
        if component == "SmartChargingCtrlr" and variable in ("Enabled", "Available"):
            yield "smart_charging", _as_bool(value), where
        elif component == "ISO15118Ctrlr" and variable in ("Enabled", "Available"):
            yield "iso15118", _as_bool(value), where
        elif ("v2x" in lc or "bidirectional" in lc) and variable in (
            "Enabled",
            "Available",
            "Supported",
        ):
            yield "discharge", _as_bool(value), f"{where} in the device model"
        elif variable == "SupplyPhases" and value is not None and value.isdigit():
            yield "phases", int(value), where
        elif variable == "Power" and component in ("EVSE", "ChargingStation"):
            chars = entry.get("variableCharacteristics") or {}
            if "maxLimit" in chars:
                scale = 1000.0 if str(chars.get("unit", "W")).lower() == "kw" else 1.0
                yield "max_power_w", float(chars["maxLimit"]) * scale, where
