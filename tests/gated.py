"""Profiles for tests of the OCPP command layer, made the only way there is: through the gate."""

from __future__ import annotations

from datetime import datetime

from v2g_gateway.dispatch.gate import GatedProfile, GateLimits, Want, gate


def through_gate(
    start: datetime,
    periods: list[tuple[int, float]],
    *,
    transaction_id: str | None = "tx-1",
    evse_id: int = 1,
    charger_id: str = "garage",
    validity_s: int = 900,
) -> GatedProfile:
    """A profile with these periods (offset s, W), as the gate would let them through for a car
    with plenty of energy above its floor."""
    return gate(
        start,
        [Want(offset, w, floor_percent=0.0) for offset, w in periods],
        GateLimits(
            charger_id=charger_id,
            evse_id=evse_id,
            transaction_id=transaction_id,
            max_charge_w=22000,
            max_discharge_w=22000,
            capacity_kwh=1000,
            eta_d=1.0,
            validity_s=validity_s,
            soc_percent=100.0,
        ),
    )
