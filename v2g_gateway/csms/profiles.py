"""ChargingProfileSpec -> the OCPP 2.0.1 ChargingProfile a charger accepts for V2G.

Absolute with a startSchedule (chargers reject Absolute without one) and a bounded validity plus
schedule duration, so a dead gateway can never leave a car discharging (safety invariant 4).
The unit follows what the charger takes (electrical.py): W as planned, or A per phase with
`numberPhases`; a negative limit discharges either way. Pure: what the charger is known to
need comes in as arguments.
"""

from __future__ import annotations

from typing import Any

from v2g_gateway.csms.electrical import Electrical
from v2g_gateway.csms.timestamps import iso
from v2g_gateway.model import ChargingProfileSpec, ProfilePurpose

_WATTS = Electrical()


def ocpp_profile(
    spec: ChargingProfileSpec,
    electrical: Electrical = _WATTS,
    *,
    stack_level: int | None = None,
) -> dict[str, Any]:
    """The camelCase ChargingProfileType for SetChargingProfile.

    `stack_level` lifts the profile above ones the gateway cannot clear (never below the
    spec's own level).
    """
    if spec.duration_s <= 0:
        raise ValueError(f"profile {spec.profile_id}: valid_to must be after start")
    if not spec.periods:
        raise ValueError(f"profile {spec.profile_id}: needs at least one period")
    if spec.periods[0].start_offset_s != 0:
        raise ValueError(f"profile {spec.profile_id}: the first period must start at offset 0")
    in_amps = electrical.rate_unit == "A"
    periods: list[dict[str, Any]] = []
    for p in spec.periods:
        period: dict[str, Any] = {
            "startPeriod": p.start_offset_s,
            "limit": electrical.limit(p.limit_w),
        }
        if in_amps:
            period["numberPhases"] = electrical.phases
        periods.append(period)
    profile: dict[str, Any] = {
        "id": spec.profile_id,
        "stackLevel": max(spec.stack_level, stack_level or 0),
        "chargingProfilePurpose": spec.purpose.value,
        "chargingProfileKind": "Absolute",
        "validFrom": iso(spec.start),
        "validTo": iso(spec.valid_to),
        "chargingSchedule": [
            {
                "id": spec.profile_id,
                "startSchedule": iso(spec.start),
                "duration": spec.duration_s,
                "chargingRateUnit": electrical.rate_unit,
                "chargingSchedulePeriod": periods,
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
