"""A gated profile in OCPP 2.1 form: operation modes and signed setpoints instead of negative limits.

The same periods, energy bound and expiry as the 2.0.1 profile (profiles.py renders both from
the one GatedProfile), each period given the 2.1 operation mode that means it:

- discharge (limit < 0): `CentralSetpoint`, `setpoint` the signed power, `dischargeLimit` the
  same bound (the car never discharges harder than the gate allowed) and `limit` 0 (no
  charging in a discharge period);
- nothing (limit 0): `Idle` where the car may discharge (a hold: no energy either way), else
  `ChargingOnly` with limit 0, which every 2.1 charger knows;
- charge (limit > 0): `ChargingOnly` with the limit as a maximum (the car may take less);
- in an outage, at a charger that reports `LocalLoadBalancing` among its supported operation
  modes (V2XChargingCtrlr.SupportedOperationModes), a discharge is `LocalLoadBalancing` with
  `dischargeLimit` as its bound: the charger follows the house by itself, no faster than the
  gate allowed (so the gate's energy bound, computed at that power, holds all the more);
- every profile carries `maxOfflineDuration` with `invalidAfterOfflineDuration`: a charger that
  has lost the gateway that long drops it for good and stops discharging by itself, even
  before its validTo.

The frames are built here as plain dicts, not with the ocpp library's experimental v21
dataclasses: those serialize per-phase fields as `limitL2` where the schema says `limit_L2`
(tests/unit/csms/test_profiles21.py pins that, and that we send neither).
"""

from __future__ import annotations

from typing import Any

from v2g_gateway.csms.electrical import Electrical
from v2g_gateway.csms.profiles import discharges, ocpp_profile
from v2g_gateway.model import ChargingProfileSpec

_WATTS = Electrical()


def ocpp_profile21(
    spec: ChargingProfileSpec,
    electrical: Electrical = _WATTS,
    *,
    stack_level: int | None = None,
    v2x: bool,
    max_offline_s: int,
    local_balancing: bool = False,
) -> dict[str, Any]:
    """The camelCase 2.1 ChargingProfileType. `v2x`: the car on this EVSE may discharge (it
    asked for a bidirectional mode the gateway allowed); a discharging spec without it is a
    ValueError (never sent). `local_balancing` (an outage, at a charger that reports the mode):
    discharge periods are `LocalLoadBalancing` within the same bound instead of a setpoint."""
    if discharges(spec) and not v2x:
        raise ValueError(f"profile {spec.profile_id}: discharge on an EVSE without V2X")
    profile = ocpp_profile(spec, electrical, stack_level=stack_level)
    for schedule in profile["chargingSchedule"]:
        schedule["chargingSchedulePeriod"] = [
            _period(p, v2x, local_balancing) for p in schedule["chargingSchedulePeriod"]
        ]
    profile["maxOfflineDuration"] = max_offline_s
    profile["invalidAfterOfflineDuration"] = True
    return profile


def _period(p: dict[str, Any], v2x: bool, local_balancing: bool = False) -> dict[str, Any]:
    limit = p["limit"]
    out: dict[str, Any] = {"startPeriod": p["startPeriod"]}
    if limit < 0 and local_balancing:
        # The charger follows the house itself; the gate's bound (and energy cut) still hold.
        out.update(operationMode="LocalLoadBalancing", dischargeLimit=limit, limit=0)
    elif limit < 0:
        out.update(operationMode="CentralSetpoint", setpoint=limit, dischargeLimit=limit, limit=0)
    elif limit == 0 and v2x:
        out.update(operationMode="Idle", limit=0)
    else:
        out.update(operationMode="ChargingOnly", limit=limit)
    if "numberPhases" in p:
        out["numberPhases"] = p["numberPhases"]
    return out


def period_power(period: dict[str, Any]) -> float:
    """What a 2.1 period commands, signed like a 2.0.1 limit (for readers of both forms)."""
    mode = period.get("operationMode", "ChargingOnly")
    if mode == "Idle":
        return 0.0
    if mode == "CentralSetpoint" and "setpoint" in period:
        return float(period["setpoint"])
    return float(period.get("limit", 0.0))
