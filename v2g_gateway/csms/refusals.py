"""What a charger's refusal of a profile means, from the charger's own words.

Chargers refuse profiles for many reasons (a unit they do not take, a transaction they forgot in
a reboot, a value out of range); only some of those are about discharging. The reason codes
seen in the field are free text (OCPP 2.0.1 leaves them open; EVerest's libocpp sends e.g.
`ChargingScheduleChargingRateUnitUnsupported`, `TxProfileTransactionNotOnEvse`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from v2g_gateway.model import CommandResult, CommandStatus


class Refusal(StrEnum):
    NONE = "none"  # accepted
    TRANSIENT = "transient"  # offline, timeout: says nothing about the charger
    UNIT = "unit"  # the rate unit (W or A) is not taken
    TRANSACTION = "transaction"  # the transaction id is unknown to the charger (rebooted?)
    DISCHARGE = "discharge"  # a negative limit is refused, in so many words
    NOT_SUPPORTED = "not_supported"  # smart charging is not supported (or switched off)
    UNCLEAR = "unclear"  # Rejected or a CALLERROR without a reason that names the cause


_WORDS: tuple[tuple[Refusal, tuple[str, ...]], ...] = (
    (Refusal.DISCHARGE, ("negative", "discharg", "bidirectional", "v2x", "v2g")),
    (Refusal.UNIT, ("rateunit", "rate unit", "unit", "ampere", "watt")),
    (Refusal.TRANSACTION, ("transaction", "txnotfound", "unknowntx")),
)


def _words(result: CommandResult) -> str:
    info: dict[str, Any] = result.payload.get("statusInfo") or {}
    parts = (info.get("reasonCode"), info.get("additionalInfo"), result.detail)
    return " ".join(str(p) for p in parts if p).lower()


def classify(result: CommandResult) -> Refusal:
    """What a SetChargingProfile answer says, from the charger's own words."""
    if result.ok:
        return Refusal.NONE
    if result.status in (CommandStatus.OFFLINE, CommandStatus.TIMEOUT):
        return Refusal.TRANSIENT
    said = _words(result)
    for kind, words in _WORDS:
        if any(w in said for w in words):
            return kind
    if result.status == CommandStatus.NOT_IMPLEMENTED:
        return Refusal.NOT_SUPPORTED
    return Refusal.UNCLEAR
