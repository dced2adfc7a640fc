"""ChargingProfileSpec -> the OCPP 2.0.1 ChargingProfile a charger accepts for V2G.

Absolute with a startSchedule (chargers reject Absolute without one) and a bounded validity plus
schedule duration, so a dead gateway can never leave a car discharging (safety invariant 4).
"""

from __future__ import annotations

from typing import Any

from v2g_gateway.csms.timestamps import iso
from v2g_gateway.model import ChargingProfileSpec, ProfilePurpose


def _limit(w: float) -> float | int:
    return int(w) if float(w).is_integer() else round(w, 1)


def ocpp_profile(spec: ChargingProfileSpec) -> dict[str, Any]:
    """The camelCase ChargingProfileType for SetChargingProfile."""
    if spec.duration_s <= 0:
        raise ValueError(f"profile {spec.profile_id}: valid_to must be after start")
    if not spec.periods:
        raise ValueError(f"profile {spec.profile_id}: needs at least one period")
    if spec.periods[0].start_offset_s != 0:
        raise ValueError(f"profile {spec.profile_id}: the first period must start at offset 0")
    profile: dict[str, Any] = {
        "id": spec.profile_id,
        "stackLevel": spec.stack_level,
        "chargingProfilePurpose": spec.purpose.value,
        "chargingProfileKind": "Absolute",
        "validFrom": iso(spec.start),
        "validTo": iso(spec.valid_to),
        "chargingSchedule": [
            {
                "id": spec.profile_id,
                "startSchedule": iso(spec.start),
                "duration": spec.duration_s,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [
                    {"startPeriod": p.start_offset_s, "limit": _limit(p.limit_w)}
                    for p in spec.periods
                ],
            }
        ],
    }
    if spec.purpose == ProfilePurpose.TX_PROFILE:
        if not spec.transaction_id:
            raise ValueError(f"profile {spec.profile_id}: TxProfile needs a transaction_id")
        profile["transactionId"] = spec.transaction_id
    return profile


def discharges(spec: ChargingProfileSpec) -> bool:
    return any(p.limit_w < 0 for p in spec.periods)
