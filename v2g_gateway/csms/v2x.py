"""OCPP 2.1 V2X: which energy transfer modes a car may use, and what a car says about its powers.

Pure helpers for session21.py. The gateway allows the bidirectional modes (AC_BPT, DC_BPT...)
only to a configured vehicle at a charger that may discharge: a guest is never discharged
(DESIGN.md invariant 6), so it is never offered a mode that could.
"""

from __future__ import annotations

from typing import Any

from v2g_gateway.config import Config
from v2g_gateway.store.sessions import identify

UNIDIRECTIONAL = ("AC_single_phase", "AC_two_phase", "AC_three_phase", "DC")
BIDIRECTIONAL = ("AC_BPT", "AC_BPT_DER", "DC_BPT", "DC_ACDP_BPT")
# Powers (W) in v2xChargingParameters the gateway reads; per-phase *_L2 / *_L3 are ignored (the
# sum of all phases is in the field without suffix unless L2/L3 are given, which we refuse).
_POWERS = ("minChargePower", "maxChargePower", "minDischargePower", "maxDischargePower")
_MAX_W = 1e6


def allowed_modes(cfg: Config, charger_id: str, vehicle_id: str | None) -> list[str]:
    """The allowedEnergyTransfer of an AuthorizeResponse / NotifyAllowedEnergyTransfer."""
    ccfg = cfg.charger(charger_id)
    vcfg = cfg.vehicle(vehicle_id) if vehicle_id else None
    if vcfg is None or ccfg is None or ccfg.max_discharge_w <= 0:
        return list(UNIDIRECTIONAL)
    if vcfg.max_discharge_w is not None and vcfg.max_discharge_w <= 0:
        return list(UNIDIRECTIONAL)
    return [*UNIDIRECTIONAL, *BIDIRECTIONAL]


def vehicle_of_token(cfg: Config, charger_id: str, token: str) -> str | None:
    """The configured vehicle the store will take this plug-in for (a token, an EVCCID, or
    the charger's default vehicle: store/sessions.py's one rule), else None (a guest)."""
    return identify(cfg, charger_id, token or None).vehicle_id


def _watts(params: dict[str, Any], key: str) -> float | None:
    value = params.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < _MAX_W:
        return float(value)
    return None


def v2x_parameters(params: Any) -> dict[str, float]:
    """The car's powers (W) and V2X energy requests (Wh) from v2xChargingParameters.

    Per-phase values (`maxDischargePower_L2`...) mean the field without suffix is phase L1
    only: then the total is the sum, and a phase left out counts as the L1 value's phase.
    """
    out: dict[str, float] = {}
    if not isinstance(params, dict):
        return out
    for key in _POWERS:
        total = _watts(params, key)
        if total is None:
            continue
        l2, l3 = _watts(params, f"{key}_L2"), _watts(params, f"{key}_L3")
        if l2 is not None or l3 is not None:
            total += (l2 or 0.0) + (l3 or 0.0)
        out[key] = total
    for key in ("evTargetEnergyRequest", "evMinV2XEnergyRequest", "evMaxV2XEnergyRequest"):
        value = params.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e7:
            out[key] = float(value)
    return out


def bidirectional(needs: dict[str, Any], allowed: list[str] | None) -> bool:
    """Whether the car asked for a bidirectional mode (requestedEnergyTransfer) that was
    allowed at authorization (None: nothing was authorized in this session, so the gateway's
    own default for the car decides upstream)."""
    requested = needs.get("requestedEnergyTransfer")
    if requested not in BIDIRECTIONAL:
        return False
    return allowed is None or requested in allowed
