"""A quirky charger: the field behaviours of real OCPP 2.0.1 firmware, one option each.

`Quirks()` is a well-behaved charger; every option turns on one behaviour seen in the field
(peers' bug trackers: lbbrhzn/ocpp, evcc, SteVe, CitrineOS, EVerest libocpp). What the charger
sends is bent after the ocpp library has checked it (`mangle`), so the off-schema frames reach the
wire as real firmware sends them; what it accepts is decided by the charger (charger_profiles.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from simulators.errors import SimulatorError

IgnoreMode = Literal["no", "all", "discharge"]
SmartCharging = Literal["enabled", "disabled", "not_supported"]
RateUnits = Literal["W", "A", "W,A"]
_PERIODIC = {"MeterValuePeriodic": "PeriodicSample", "ChargingStateChanged": "StateChange"}


@dataclass(frozen=True, slots=True)
class Quirks:
    # ---- smart charging: what the charger takes
    rate_unit: RateUnits = "W,A"  # "A": a W profile is Rejected (rate unit unsupported)
    report_rate_unit: bool = True  # False: no RateUnit variable, learnt only from the refusal
    supply_phases: int = 3  # for A <-> W and SupplyPhases (1 or 3)
    min_current_a: float = 6.0  # A mode: a car does not charge on less (IEC 61851)
    smart_charging: SmartCharging = "enabled"  # disabled: Enabled=false; not_supported: CALLERROR
    tx_default_evse0_only: bool = False  # TxDefaultProfile Rejected on any EVSE but 0
    max_stack_level: int = 10  # SmartChargingCtrlr.ProfileStackLevel
    # Profiles another system left installed at start-up: (evse id, chargingLimitSource,
    # camelCase ChargingProfile); a source other than CSO (EMS, SO) is not the CSMS's to clear.
    foreign_profiles: tuple[tuple[int, str, dict[str, Any]], ...] = ()
    foreign_clear: bool = True  # False: ClearChargingProfile for them answers Unknown, keeps them
    ignore_profiles: IgnoreMode = "no"  # all: full power whatever; discharge: charges instead
    # ---- meter sampling
    measurands: tuple[str, ...] | None = None  # what it can sample (None: all the gateway asks)
    report_values_list: bool = True  # valuesList of TxUpdatedMeasurands in its report
    # ---- what it sends
    extra_properties: bool = False  # vendor properties in every frame
    numbers_as_strings: bool = False  # sampled values, evseId and seqNo as strings
    vendor_measurands: bool = False  # a Vendor.* measurand in every meter value
    odd_reasons: bool = False  # trigger and boot reasons outside the enums
    ocpp21_fields: bool = False  # DC_BPT, v2xChargingParameters, 2.1 transaction fields
    token_type: str = "Local"  # NoAuthorization: an empty idToken
    clock_skew_s: float = 0.0  # its clock runs this far ahead (negative: behind)
    local_utc_offset_h: float | None = None  # sends local wall time without a UTC offset

    def __post_init__(self) -> None:
        if self.supply_phases not in (1, 3):
            raise SimulatorError(f"supply_phases must be 1 or 3, got {self.supply_phases}")
        if self.ignore_profiles not in ("no", "all", "discharge"):
            raise SimulatorError(
                f"ignore_profiles must be no, all or discharge: {self.ignore_profiles!r}"
            )
        if self.smart_charging not in ("enabled", "disabled", "not_supported"):
            raise SimulatorError(f"unknown smart_charging {self.smart_charging!r}")

    @property
    def takes_watts(self) -> bool:
        return "W" in self.rate_unit

    def stamp(self, now: datetime) -> str:
        """A timestamp as this charger writes it."""
        t = now.astimezone(UTC) + timedelta(seconds=self.clock_skew_s)
        if self.local_utc_offset_h is not None:
            local = t + timedelta(hours=self.local_utc_offset_h)
            return local.replace(tzinfo=None).isoformat(timespec="seconds")
        return t.isoformat(timespec="seconds").replace("+00:00", "Z")

    @property
    def mangles(self) -> bool:
        return any(
            (
                self.extra_properties,
                self.numbers_as_strings,
                self.vendor_measurands,
                self.odd_reasons,
                self.ocpp21_fields,
            )
        )

    def mangle(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The frame as this firmware sends it (camelCase payload of a CALL)."""
        if not self.mangles:
            return payload
        p = copy.deepcopy(payload)
        for mv in _meter_values(p):
            for sv in mv.get("sampledValue", ()):
                if self.numbers_as_strings:
                    sv["value"] = str(sv["value"])
                if self.extra_properties:
                    sv["vendorQuality"] = "good"
            if self.vendor_measurands:
                mv.setdefault("sampledValue", []).append(
                    {
                        "value": "41.5" if self.numbers_as_strings else 41.5,
                        "measurand": "Vendor.Temperature.Cable",
                        "unitOfMeasure": {"unit": "Celsius"},
                    }
                )
        if self.numbers_as_strings:
            for key in ("evseId", "seqNo"):
                if isinstance(p.get(key), int):
                    p[key] = str(p[key])
        if self.odd_reasons:
            if action == "BootNotification":
                p["reason"] = "ColdStart"
            if p.get("triggerReason") in _PERIODIC:
                p["triggerReason"] = _PERIODIC[p["triggerReason"]]
        if self.ocpp21_fields:
            _v21(action, p)
        if self.extra_properties:
            p["vendorExtension"] = {"firmwareBuild": "2024.11-rc3"}
        return p


def _meter_values(p: dict[str, Any]) -> list[dict[str, Any]]:
    mv = p.get("meterValue")
    return [m for m in mv if isinstance(m, dict)] if isinstance(mv, list) else []


def _v21(action: str, p: dict[str, Any]) -> None:
    if action == "NotifyEVChargingNeeds":
        needs = p["chargingNeeds"]
        needs["requestedEnergyTransfer"] = "DC_BPT"
        dc = needs.get("dcChargingParameters") or {}
        needs["v2xChargingParameters"] = {
            "maxChargePower": dc.get("evMaxPower", 11000),
            "maxDischargePower": 10000,
        }
        needs["controlMode"] = "ScheduledControl"
    elif action == "TransactionEvent":
        p["numberOfPhasesUsed"] = 3
