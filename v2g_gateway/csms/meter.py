"""MeterValue objects -> MeterSample: units, multipliers, phases and the power sign convention.

Chargers report the same quantity in many shapes (total or per phase, W or kW, Wh or kWh, with a
power-of-ten multiplier); the store only ever sees W, Wh, V, A and a signed power.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from typing import Any

from v2g_gateway.csms.frames import FrameError
from v2g_gateway.csms.timestamps import parse_ts
from v2g_gateway.model import MeterSample

_DEFAULT_MEASURAND = "Energy.Active.Import.Register"
_KILO = {"kW": 1000.0, "kWh": 1000.0, "kvar": 1000.0, "kVA": 1000.0, "kvarh": 1000.0}
_REGISTERS = {"Energy.Active.Import.Register", "Energy.Active.Export.Register"}
_PHASE_VOLTAGES = ("L1-N", "L2-N", "L3-N", "L1", "L2", "L3")


def _scaled(sv: dict[str, Any]) -> float:
    unit = sv.get("unitOfMeasure") or {}
    multiplier = int(unit.get("multiplier", 0))
    if not -9 <= multiplier <= 9:
        raise FrameError(
            "PropertyConstraintViolation", f"unitOfMeasure.multiplier {multiplier} is out of range"
        )
    value = float(sv["value"]) * (10.0**multiplier) * _KILO.get(str(unit.get("unit", "")), 1.0)
    if not math.isfinite(value):
        raise FrameError(
            "PropertyConstraintViolation", f"sampledValue {sv['value']} is out of range"
        )
    return value


def _total(values: dict[str | None, float]) -> float | None:
    """A total if reported, else the sum of the phases (per-phase power and energy add up)."""
    if None in values:
        return values[None]
    phases = [v for k, v in values.items() if k in ("L1", "L2", "L3", "L1-N", "L2-N", "L3-N")]
    return sum(phases) if phases else None


def sample_from(
    charger_id: str, evse_id: int, meter_value: dict[str, Any], transaction_id: str | None = None
) -> MeterSample:
    """One OCPP MeterValueType (already schema-checked) as one MeterSample."""
    at: datetime = parse_ts(meter_value["timestamp"], "meterValue.timestamp")
    by: dict[str, dict[str | None, float]] = defaultdict(dict)
    for sv in meter_value.get("sampledValue", ()):
        measurand = str(sv.get("measurand", _DEFAULT_MEASURAND))
        value = _scaled(sv)
        if measurand in _REGISTERS and value < 0:
            # Registers only count up; a negative one is a broken meter, never "lenient".
            raise FrameError("PropertyConstraintViolation", f"{measurand} {value:g} Wh is negative")
        by[measurand][sv.get("phase")] = value

    imp = _total(by["Power.Active.Import"]) if "Power.Active.Import" in by else None
    exp = _total(by["Power.Active.Export"]) if "Power.Active.Export" in by else None
    power = None if imp is None and exp is None else (imp or 0.0) - (exp or 0.0)

    voltage = None
    if "Voltage" in by:
        volts = by["Voltage"]
        phase_v = [v for k, v in volts.items() if k in _PHASE_VOLTAGES and v > 0]
        voltage = min(phase_v) if phase_v else volts.get(None, min(volts.values()))

    current = None
    if "Current.Import" in by or "Current.Export" in by:
        # The highest phase current is what limits a circuit; export counts as negative.
        ci = by.get("Current.Import", {})
        ce = by.get("Current.Export", {})
        cur_i = max(ci.values()) if ci else 0.0
        cur_e = max(ce.values()) if ce else 0.0
        current = cur_i - cur_e

    soc = None
    if "SoC" in by:
        soc = next(iter(by["SoC"].values()))
        if not 0 <= soc <= 100:
            raise FrameError("PropertyConstraintViolation", f"SoC {soc:g} is not within 0-100 %")

    return MeterSample(
        charger_id=charger_id,
        evse_id=evse_id,
        at=at,
        transaction_id=transaction_id,
        soc_percent=soc,
        power_w=power,
        energy_import_wh=_total(by["Energy.Active.Import.Register"])
        if "Energy.Active.Import.Register" in by
        else None,
        energy_export_wh=_total(by["Energy.Active.Export.Register"])
        if "Energy.Active.Export.Register" in by
        else None,
        voltage_v=voltage,
        current_a=current,
    )
