"""What the gateway has learnt about each charger's firmware, kept across its reconnects.

Config says what the user knows (phases, voltage, minimum current, strictness); the charger's
reports and answers fill in the rest (rate unit, smart charging on or off, stack levels, foreign
profiles, measurands it can sample). Everything here only shapes how the gateway talks to the
charger; what dispatch must know goes to the store as ChargerCapability events (capability names
in CAPABILITIES).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from v2g_gateway.config import ChargerSection
from v2g_gateway.csms.clock_skew import SkewWatch
from v2g_gateway.csms.electrical import Electrical, RateUnit
from v2g_gateway.csms.obedience import ObedienceWatch
from v2g_gateway.model import ChargingProfileSpec

log = structlog.get_logger(__name__)

# ChargerCapability names csms records for dispatch and the user (docs/chargers.md).
CAPABILITIES = {
    "rate_unit": "'W' or 'A': the unit the gateway sends profiles in",
    "phases": "phases used to convert W <-> A (config, SupplyPhases, else 3)",
    "voltage_v": "nominal voltage used to convert W <-> A",
    "min_power_w": "the smallest non-zero power (min_current_a x voltage x phases)",
    "smart_charging_enabled": "false: the charger takes no profiles (no control at all)",
    "obeys_profiles": "false: metered power ignores the limit in force (do not discharge)",
    "external_limit_w": "power cap (W, both directions) set by a local EMS or grid operator",
    "clock_skew_s": "charger clock minus gateway clock, once skewed (0 = in sync again)",
    "stack_level": "the stack level the gateway's profiles use (above foreign ones)",
    "foreign_profiles": "profiles of another system the gateway could not clear",
    "measurands_missing": "measurands the gateway asked for and the charger cannot sample",
    "input_quirks": "kinds of off-schema input accepted from this charger",
}


@dataclass(slots=True)
class ChargerFacts:
    charger_id: str
    rate_unit: RateUnit | None = None
    phases: int | None = None  # SupplyPhases, when reported
    # Evidence about smart charging: "Enabled", "Available" (device model), "answer" (a
    # profile refused as not supported); any False means off. Read afresh after each boot.
    smart: dict[str, bool] = field(default_factory=dict)
    max_stack_level: int | None = None  # SmartChargingCtrlr.ProfileStackLevel
    stack_floor: int = 0  # the lowest level above every foreign profile kept on the charger
    tx_default_evse0: bool = False  # the charger takes TxDefaultProfile only on EVSE 0
    measurands_supported: tuple[str, ...] | None = None  # valuesList of TxUpdatedMeasurands
    operation_modes: tuple[str, ...] = ()  # OCPP 2.1 V2XChargingCtrlr.SupportedOperationModes
    quirks: set[str] = field(default_factory=set)
    skew: SkewWatch = field(default_factory=SkewWatch)
    obedience: dict[int, ObedienceWatch] = field(default_factory=dict)
    in_force: dict[int, tuple[ChargingProfileSpec, datetime]] = field(default_factory=dict)
    # NotifyChargingLimit schedules per (source, evse): (schedules, received at)
    external: dict[tuple[str, int | None], tuple[list[dict[str, Any]], datetime]] = field(
        default_factory=dict
    )
    external_w: float | None = None
    _reports: dict[int, asyncio.Event] = field(default_factory=dict)

    def smart_charging_on(self) -> bool | None:
        if not self.smart:
            return None
        return all(self.smart.values())

    def electrical(self, ccfg: ChargerSection | None) -> Electrical:
        phases = (ccfg.phases if ccfg else None) or self.phases or 3
        return Electrical(
            rate_unit=self.rate_unit or "W",
            phases=phases,
            voltage_v=ccfg.voltage_v if ccfg else 230.0,
            min_current_a=ccfg.min_current_a if ccfg else 6.0,
        )

    def stack_level(self) -> int:
        if self.max_stack_level is not None:
            return min(self.stack_floor, self.max_stack_level)
        return self.stack_floor

    # ------------------------------------------------------------ reports that follow a request

    def expect_report(self, request_id: int) -> asyncio.Event:
        event = self._reports.setdefault(request_id, asyncio.Event())
        while len(self._reports) > 8:  # old requests nobody waits for any more
            del self._reports[next(iter(self._reports))]
        return event

    def report_part(self, request_id: int | None, tbc: bool) -> None:
        if request_id is None or tbc:
            return
        event = self._reports.get(request_id)
        if event is not None:
            event.set()

    def report_received(self, request_id: int) -> bool:
        event = self._reports.get(request_id)
        return event is not None and event.is_set()


class FactsBook:
    """One ChargerFacts per charger id, created on first use."""

    def __init__(self) -> None:
        self._facts: dict[str, ChargerFacts] = {}

    def __call__(self, charger_id: str) -> ChargerFacts:
        facts = self._facts.get(charger_id)
        if facts is None:
            facts = self._facts[charger_id] = ChargerFacts(charger_id)
        return facts
