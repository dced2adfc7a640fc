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


def rate_unit(value: str | None) -> str | None:
    """W when the charger takes it (the planner's unit), else A, from a RateUnit member list."""
    units = {u.strip().upper() for u in (value or "").split(",")}
    return "W" if "W" in units else "A" if "A" in units else None


def _values_list(entry: dict[str, Any]) -> tuple[str, ...] | None:
    chars = entry.get("variableCharacteristics") or {}
    values = chars.get("valuesList")
    if not isinstance(values, str) or not values.strip():
        return None
    return tuple(v.strip() for v in values.split(",") if v.strip())


def variable_capability(component: str, variable: str, value: str | None) -> tuple[str, Any] | None:
    """What one (component, variable, value) says, as (name, value); GetVariables answers and
    NotifyReport entries both come through here."""
    if component == "SmartChargingCtrlr":
        if variable == "Enabled":
            return "smart_charging_enabled", _as_bool(value)
        if variable == "Available":
            return "smart_charging_available", _as_bool(value)
        if variable == "RateUnit" and rate_unit(value):
            return "rate_unit_supported", rate_unit(value)
        if variable == "ProfileStackLevel" and value is not None and value.strip().isdigit():
            return "max_stack_level", int(value)
    if component == "V2XChargingCtrlr" and variable == "SupportedOperationModes":
        # OCPP 2.1: the operation modes the charger can run (a member list).
        return "operation_modes", tuple(m.strip() for m in (value or "").split(",") if m.strip())
    if variable == "SupplyPhases" and value is not None and value.strip() in ("1", "2", "3"):
        return "phases", int(value)
    return None


def capabilities(report_data: list[dict[str, Any]]) -> Iterator[tuple[str, Any, str]]:
    """(name, value, detail) for each entry that says something we use."""
    for entry in report_data:
        component = str(entry["component"]["name"])
        variable = str(entry["variable"]["name"])
        value = _actual(entry)
        where = f"{component}.{variable}"
        lc = component.lower()
        known = variable_capability(component, variable, value)
        if known is not None:
            yield known[0], known[1], where
        elif component == "SampledDataCtrlr" and variable == "TxUpdatedMeasurands":
            values = _values_list(entry)
            if values is not None:
                yield "measurands_supported", values, f"{where} valuesList"
        elif component == "ISO15118Ctrlr" and variable in ("Enabled", "Available"):
            yield "iso15118", _as_bool(value), where
        elif ("v2x" in lc or "bidirectional" in lc) and variable in (
            "Enabled",
            "Available",
            "Supported",
        ):
            yield "discharge", _as_bool(value), f"{where} in the device model"
        elif variable == "Power" and component in ("EVSE", "ChargingStation"):
            chars = entry.get("variableCharacteristics") or {}
            if "maxLimit" in chars:
                scale = 1000.0 if str(chars.get("unit", "W")).lower() == "kw" else 1.0
                yield "max_power_w", float(chars["maxLimit"]) * scale, where
