"""The simulated charger's profile store: what SetChargingProfile installs and what it refuses.

Split from charger.py. The refusals follow the spec (K01: TxProfile needs the running
transaction, duplicate TxDefaultProfiles on EVSE 0 and an EVSE at one stack level) and the
charger's quirks (only A, TxDefaultProfile only on EVSE 0, smart charging off, foreign profiles
it will not clear).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.exceptions import NotSupportedError
from ocpp.v201 import call_result

from simulators.composite import InstalledProfile, composite_schedule, expired, install
from simulators.errors import InvalidProfile

if TYPE_CHECKING:
    from simulators.charger import SimulatedCharger

log = structlog.get_logger("simulators.charger")


def rejected(code: str, info: str) -> call_result.SetChargingProfile:
    return call_result.SetChargingProfile(
        status="Rejected", status_info={"reason_code": code, "additional_info": info[:512]}
    )


class ProfileBook:
    def __init__(self, sim: SimulatedCharger) -> None:
        self._sim = sim
        self.installed: list[InstalledProfile] = []
        self.requests: list[dict[str, Any]] = []  # every SetChargingProfile request received
        self.foreign: dict[int, str] = {}  # profile id -> chargingLimitSource
        # OCPP 2.1 maxOfflineDuration: since when the CSMS is gone (None: online).
        self.offline_since: datetime | None = None
        for evse_id, source, raw in sim.quirks.foreign_profiles:
            p = install(evse_id, raw)
            self.installed.append(p)
            self.foreign[p.profile_id] = source

    def set(self, evse_id: int, raw: dict[str, Any]) -> call_result.SetChargingProfile:
        sim, q = self._sim, self._sim.quirks
        self.requests.append({"evseId": evse_id, "chargingProfile": raw})
        if q.smart_charging == "not_supported":
            raise NotSupportedError(description="smart charging is not supported")
        if q.smart_charging == "disabled":
            return rejected("NotSupported", "smart charging is disabled (SmartChargingCtrlr)")
        try:
            profile = install(evse_id, raw)
        except InvalidProfile as exc:
            return rejected("InvalidSchedule", str(exc))
        evses = sim.evse_states()
        if evse_id != 0 and evse_id not in evses:
            return rejected("UnknownEvse", f"no EVSE {evse_id}")
        if profile.unit == "W" and not q.takes_watts:
            return rejected("UnsupportedParam", "ChargingScheduleChargingRateUnitUnsupported")
        if profile.stack_level > q.max_stack_level:
            return rejected("InvalidStackLevel", f"stackLevel above {q.max_stack_level}")
        if profile.purpose == "ChargingStationExternalConstraints":
            return rejected("InvalidProfile", "external constraints are not set by a CSMS")
        if profile.purpose == "ChargingStationMaxProfile" and evse_id != 0:
            return rejected("InvalidProfile", "ChargingStationMaxProfile needs evseId 0")
        if profile.purpose == "TxDefaultProfile":
            if q.tx_default_evse0_only and evse_id != 0:
                return rejected("InvalidEvse", "TxDefaultProfile is only taken on evseId 0")
            if self._duplicate_default(profile):
                return rejected("DuplicateProfile", "DuplicateTxDefaultProfileFound")
        if profile.purpose == "TxProfile":
            evse = evses.get(evse_id)
            if evse is None or evse.tx_id is None or profile.transaction_id != evse.tx_id:
                return rejected("TxNotFound", "TxProfile needs the running transactionId")
        if profile.has_negative_limit and sim.discharge == "reject":
            return rejected("NoDischarge", "this charger cannot discharge")
        if profile.has_negative_limit and sim.discharge == "not_implemented":
            raise OcppNotImplemented(description="negative limits (discharging) are not supported")
        sim.catch_up()  # the profiles in force until now apply until now
        self.installed = [
            p
            for p in self.installed
            if p.profile_id != profile.profile_id
            and not (
                p.evse_id == profile.evse_id
                and p.purpose == profile.purpose
                and p.stack_level == profile.stack_level
            )
        ]
        self.installed.append(profile)
        log.info(
            "sim_profile_installed",
            charger_id=sim.charger_id,
            id=profile.profile_id,
            purpose=profile.purpose,
            limits=[p.limit for p in profile.periods],
        )
        return call_result.SetChargingProfile(status="Accepted")

    def _duplicate_default(self, new: InstalledProfile) -> bool:
        """K01.FR.52/53: a TxDefaultProfile on EVSE 0 and one on an EVSE share no stack level."""
        for p in self.installed:
            if p.purpose != "TxDefaultProfile" or p.profile_id == new.profile_id:
                continue
            if p.stack_level == new.stack_level and (p.evse_id == 0) != (new.evse_id == 0):
                return True
        return False

    def clear(
        self, profile_id: int | None, criteria: dict[str, Any] | None
    ) -> call_result.ClearChargingProfile:
        crit = criteria or {}
        keep_foreign = not self._sim.quirks.foreign_clear

        def matches(p: InstalledProfile) -> bool:
            if p.profile_id in self.foreign and (
                keep_foreign or self.foreign[p.profile_id] != "CSO"
            ):
                return False
            if profile_id is not None and p.profile_id != profile_id:
                return False
            if "evse_id" in crit and p.evse_id != crit["evse_id"]:
                return False
            if "charging_profile_purpose" in crit and p.purpose != crit["charging_profile_purpose"]:
                return False
            return not ("stack_level" in crit and p.stack_level != crit["stack_level"])

        before = len(self.installed)
        self.installed = [p for p in self.installed if not matches(p)]
        return call_result.ClearChargingProfile(
            status="Accepted" if len(self.installed) < before else "Unknown"
        )

    def matching(self, criteria: dict[str, Any], evse_id: int | None) -> list[InstalledProfile]:
        ids = criteria.get("charging_profile_id")
        out = []
        for p in self.installed:
            if evse_id is not None and p.evse_id != evse_id:
                continue
            if "charging_profile_purpose" in criteria and (
                p.purpose != criteria["charging_profile_purpose"]
            ):
                continue
            if "stack_level" in criteria and p.stack_level != criteria["stack_level"]:
                continue
            if ids and p.profile_id not in ids:
                continue
            out.append(p)
        return out

    def source(self, p: InstalledProfile) -> str:
        """chargingLimitSource in ReportChargingProfiles."""
        if p.purpose == "ChargingStationExternalConstraints":
            return "EMS"
        return self.foreign.get(p.profile_id, "CSO")

    def composite(
        self, duration: int, evse_id: int, unit: str | None
    ) -> call_result.GetCompositeSchedule:
        sim = self._sim
        evses = sim.evse_states()
        if evse_id != 0 and evse_id not in evses:
            return call_result.GetCompositeSchedule(
                status="Rejected", status_info={"reason_code": "UnknownEvse"}
            )
        ctx = sim.physics.context(evse_id)
        now = sim.clock.now()
        schedule = composite_schedule(self.installed, ctx, now, duration, unit or "W")
        schedule["scheduleStart"] = sim.messages.now()
        return call_result.GetCompositeSchedule(status="Accepted", schedule=schedule)

    def transaction_ended(self, evse_id: int, tx: str | None) -> None:
        """A TxProfile lives only as long as its transaction (OCPP 2.0.1 K01)."""
        self.installed = [
            p
            for p in self.installed
            if not (p.purpose == "TxProfile" and p.evse_id == evse_id)
            or (p.transaction_id is not None and p.transaction_id != tx)
        ]

    def prune(self) -> None:
        now = self._sim.clock.now()
        self.installed = [
            p
            for p in self.installed
            if not expired(p, now, self._sim.physics.context(p.evse_id))
            and not (p.invalid_after_offline and self._offline_too_long(p, now))
        ]

    def _offline_too_long(self, p: InstalledProfile, at: datetime) -> bool:
        if self.offline_since is None or p.max_offline_s is None:
            return False
        return (at - self.offline_since).total_seconds() > p.max_offline_s

    def in_force(self, at: datetime) -> list[InstalledProfile]:
        """The profiles that count at `at`: OCPP 2.1 drops one whose maxOfflineDuration has
        passed since the CSMS went away (for good with invalidAfterOfflineDuration)."""
        if self.offline_since is None:
            return self.installed
        return [p for p in self.installed if not self._offline_too_long(p, at)]

    def went_offline(self) -> None:
        if self.offline_since is None:
            self._sim.catch_up()  # what was in force while online applies until now
            self.offline_since = self._sim.clock.now()
            self._sim.log.info("sim_offline", since=self.offline_since.isoformat())

    def back_online(self) -> None:
        if self.offline_since is not None:
            self._sim.catch_up()
            self.prune()  # profiles void for good stay void
            self.offline_since = None

    def external(self, raw: dict[str, Any]) -> None:
        """A local EMS limits the station (ChargingStationExternalConstraints on EVSE 0)."""
        p = install(0, raw)
        self.installed = [q for q in self.installed if q.profile_id != p.profile_id]
        self.installed.append(p)
