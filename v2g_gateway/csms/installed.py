"""Profiles already on a charger at boot: whose they are and what to do about them.

A charger that ran under another backend (or its installer's tool) may still hold Tx and
TxDefault profiles that cap it, sometimes at stack levels above ours, and a station-wide
TxDefaultProfile on EVSE 0 makes a TxDefaultProfile of ours at the same level a duplicate the
charger must refuse (OCPP 2.0.1 K01.FR.52/53). Foreign CSO profiles are cleared; what cannot be
cleared is stayed above, within the charger's maximum stack level. Station limits
(ChargingStationMaxProfile, external constraints) are the installer's and are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# The profile ids dispatch uses (TxDefaultProfile 1000 + EVSE, TxProfile 2000 + EVSE).
GATEWAY_PROFILE_IDS = range(1000, 3000)
_OURS_PURPOSES = ("TxProfile", "TxDefaultProfile")


@dataclass(frozen=True, slots=True)
class Installed:
    profile_id: int
    evse_id: int
    purpose: str
    stack_level: int
    source: str  # chargingLimitSource of the report: CSO, EMS, SO, Other

    @property
    def ours(self) -> bool:
        return self.profile_id in GATEWAY_PROFILE_IDS and self.purpose in _OURS_PURPOSES

    @property
    def competes(self) -> bool:
        """A profile of the purposes the gateway sends (so its stack level matters)."""
        return self.purpose in _OURS_PURPOSES

    def describe(self) -> str:
        return (
            f"{self.purpose} id {self.profile_id} on EVSE {self.evse_id} at stack level "
            f"{self.stack_level} (source {self.source})"
        )


def installed_from(reports: Iterable[dict[str, Any]], request_id: int) -> list[Installed]:
    """Every profile in the ReportChargingProfiles parts answering `request_id`."""
    out: list[Installed] = []
    for report in reports:
        if report.get("requestId") != request_id:
            continue
        for p in report.get("chargingProfile", ()):
            out.append(
                Installed(
                    profile_id=int(p["id"]),
                    evse_id=int(report.get("evseId", 0)),
                    purpose=str(p["chargingProfilePurpose"]),
                    stack_level=int(p["stackLevel"]),
                    source=str(report.get("chargingLimitSource", "CSO")),
                )
            )
    return out


def to_clear(installed: Iterable[Installed]) -> list[Installed]:
    """Foreign profiles a CSMS may clear: Tx and TxDefault profiles set by a CSO."""
    return [p for p in installed if not p.ours and p.competes and p.source == "CSO"]


def stack_floor(kept: Iterable[Installed]) -> int:
    """The lowest stack level above every foreign Tx/TxDefault profile left on the charger."""
    levels = [p.stack_level for p in kept if p.competes and not p.ours]
    return max(levels) + 1 if levels else 0
