"""How the gateway adapts to each charger: it learns, records capabilities, tells the user once.

Sessions and commands report what they see here (device-model variables, off-schema input,
timestamps, meter readings, accepted profiles, external limits); this turns it into ChargerFacts
(how csms talks to the charger), ChargerCapability events (what dispatch and MQTT see; names in
facts.CAPABILITIES) and notices (what the user must do on the charger).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.csms.clock_skew import describe
from v2g_gateway.csms.electrical import Electrical
from v2g_gateway.csms.external_limit import cap_in_force
from v2g_gateway.csms.facts import FactsBook
from v2g_gateway.csms.notices import Notices
from v2g_gateway.csms.obedience import GRACE, ObedienceWatch, limit_in_force
from v2g_gateway.model import ChargerCapability, ChargerEvent, ChargingProfileSpec, MeterSample

log = structlog.get_logger(__name__)

SMART_CHARGING_OFF = "charger_smart_charging_off"
CLOCK_SKEW = "charger_clock_skew"
IGNORES_PROFILES = "charger_ignores_profiles"
RATE_UNIT_AMPS = "charger_takes_amps"
EXTERNAL_LIMIT = "charger_external_limit"
LENIENT_INPUT = "charger_lenient_input"
UNKNOWN_TOKEN = "charger_unknown_token"


def _kw(w: float) -> str:
    return f"{w / 1000:.1f} kW"


class Adaptation:
    def __init__(self, cfg: Config, sink: Callable[[ChargerEvent], object], clock: Clock) -> None:
        self._cfg = cfg
        self._sink = sink
        self._clock = clock
        self.facts = FactsBook()
        self.notices = Notices(clock)
        self._announced: dict[str, Electrical] = {}

    def _cap(self, charger_id: str, name: str, value: Any, detail: str | None = None) -> None:
        self._sink(ChargerCapability(charger_id, self._clock.now(), name, value, detail))

    def electrical(self, charger_id: str) -> Electrical:
        return self.facts(charger_id).electrical(self._cfg.charger(charger_id))

    def strict(self, charger_id: str) -> bool:
        ccfg = self._cfg.charger(charger_id)
        return ccfg is not None and ccfg.strict

    # ------------------------------------------------------------ device model

    def learn(
        self,
        charger_id: str,
        name: str,
        value: Any,
        detail: str | None = None,
        *,
        announce: bool = True,
    ) -> None:
        """One thing a report or a GetVariables answer said (reports.py names); `announce`
        False leaves recording the electrical facts to one announce_electrical() later."""
        f = self.facts(charger_id)
        if name in ("smart_charging_enabled", "smart_charging_available"):
            if value is not None:
                key = "Enabled" if name == "smart_charging_enabled" else "Available"
                self.smart_charging(charger_id, bool(value), detail or name, key)
        elif name in ("rate_unit_supported", "phases"):
            if name == "phases":
                f.phases = int(value)
            else:
                f.rate_unit = value
            if announce:
                self.announce_electrical(charger_id, detail)
        elif name == "max_stack_level":
            f.max_stack_level = int(value)
        elif name == "measurands_supported":
            f.measurands_supported = tuple(value)
        elif name == "operation_modes":
            f.operation_modes = tuple(value)
            self._cap(charger_id, name, list(value), detail)
        else:
            self._cap(charger_id, name, value, detail)

    def announce_electrical(self, charger_id: str, detail: str | None = None) -> None:
        """Record the unit, phases, voltage and minimum power in use (when they change)."""
        el = self.electrical(charger_id)
        before = self._announced.get(charger_id)
        if el == before:
            return
        self._announced[charger_id] = el
        for name, value in (
            ("rate_unit", el.rate_unit),
            ("phases", el.phases),
            ("voltage_v", el.voltage_v),
            ("min_power_w", round(el.min_power_w, 1)),
        ):
            if before is None or getattr(before, name, None) != value or name == "min_power_w":
                self._cap(charger_id, name, value, detail)
        if el.rate_unit == "A":
            self.notices.tell(
                charger_id,
                RATE_UNIT_AMPS,
                f"charger {charger_id} takes limits only in amperes: the gateway converts with "
                f"{el.phases} phase(s) at {el.voltage_v:g} V, so the smallest power is "
                f"{_kw(el.min_power_w)} ({el.min_current_a:g} A). If the charger has a different "
                f"number of phases, set phases in its [[chargers]] entry.",
                level="info",
                data={"phases": el.phases, "voltage_v": el.voltage_v},
            )

    def smart_charging(self, charger_id: str, enabled: bool, where: str, key: str) -> None:
        """`key` names the evidence (Enabled, Available, an answer); any False means off."""
        f = self.facts(charger_id)
        before = f.smart_charging_on()
        f.smart[key] = enabled
        after = f.smart_charging_on()
        if after != before:
            self._cap(charger_id, "smart_charging_enabled", after, where)
        if after:
            self.notices.forget(charger_id, SMART_CHARGING_OFF)
            return
        self.notices.tell(
            charger_id,
            SMART_CHARGING_OFF,
            f"charger {charger_id} does not take charging profiles ({where}): the gateway cannot "
            "control its charging or discharge it. Turn on smart charging (often called OCPP "
            "smart charging or load management) in the charger's settings, then restart it; "
            "the gateway sends no profiles until it reports smart charging on.",
            data={"where": where},
        )

    def smart_charging_off(self, charger_id: str) -> bool:
        return self.facts(charger_id).smart_charging_on() is False

    # ------------------------------------------------------------ input

    def quirks(self, charger_id: str, found: list[tuple[str, str]]) -> None:
        """Off-schema input accepted: one warning per charger and kind."""
        f = self.facts(charger_id)
        new = False
        for kind, where in found:
            if kind in f.quirks:
                continue
            f.quirks.add(kind)
            new = True
            log.warning(
                "accepted input the OCPP 2.0.1 schema refuses",
                charger_id=charger_id,
                kind=kind,
                where=where,
                hint="set strict = true for this charger to refuse such frames",
            )
        if new:
            self._cap(charger_id, "input_quirks", sorted(f.quirks), "lenient input")
            self.notices.tell(
                charger_id,
                LENIENT_INPUT,
                f"charger {charger_id} sends frames outside the OCPP 2.0.1 schema "
                f"({', '.join(sorted(f.quirks))}); the gateway reads what it can and checks "
                "SoC, timestamps and energy registers strictly. Worth a firmware update; see "
                "docs/chargers.md to report the charger.",
                level="info",
                data={"kinds": sorted(f.quirks)},
            )

    def timestamp(self, charger_id: str, raw: str, ts: datetime) -> None:
        """A live message's timestamp, against the gateway's clock."""
        report = self.facts(charger_id).skew.observe(raw, ts, self._clock.now())
        if report is None:
            return
        self._cap(charger_id, "clock_skew_s", report.skew_s, "charger timestamps vs gateway")
        if report.skew_s:
            self.notices.tell(
                charger_id,
                CLOCK_SKEW,
                describe(charger_id, report),
                data={"skew_s": report.skew_s, "without_offset": report.offsetless},
            )
        else:
            log.info("charger clock back in sync", charger_id=charger_id)
            self.notices.forget(charger_id, CLOCK_SKEW)

    def unknown_token(self, charger_id: str, token: str, kind: str, accepted: bool) -> None:
        """A token of no configured vehicle: a guest ("any") or refused ("known")."""
        shown = token or f"({kind or 'no token'})"
        if accepted:
            what = (
                'was accepted ([ocpp] authorize = "any"); add it to a vehicle\'s id_tokens if it '
                'is yours, or set authorize = "known" to refuse tokens of no configured vehicle'
            )
        else:
            what = 'was refused ([ocpp] authorize = "known"); add it to a vehicle\'s id_tokens'
        self.notices.tell(
            charger_id,
            UNKNOWN_TOKEN,
            f"an unknown token {shown} at charger {charger_id} {what}",
            level="info" if accepted else "warning",
            data={"id_token": token, "type": kind, "accepted": accepted},
            once_per=token or kind,
        )

    # ------------------------------------------------------------ obedience

    def profile_accepted(self, spec: ChargingProfileSpec) -> None:
        self.facts(spec.charger_id).in_force[spec.evse_id] = (spec, self._clock.now())

    def profile_cleared(
        self, charger_id: str, evse_id: int | None, profile_id: int | None = None
    ) -> None:
        f = self.facts(charger_id)
        for evse, (spec, _) in list(f.in_force.items()):
            if evse_id is not None and evse != evse_id:
                continue
            if profile_id is not None and spec.profile_id != profile_id:
                continue
            del f.in_force[evse]

    def meter(self, sample: MeterSample) -> None:
        """A live reading: does the power follow the limit in force?"""
        if sample.power_w is None:
            return
        f = self.facts(sample.charger_id)
        held = f.in_force.get(sample.evse_id)
        if held is None:
            return
        now = self._clock.now()
        spec, accepted_at = held
        found = limit_in_force(spec, accepted_at, now, self.electrical(sample.charger_id))
        if found is None or now - found[1] < GRACE:
            return
        watch = f.obedience.setdefault(sample.evse_id, ObedienceWatch())
        verdict = watch.observe(found[0], sample.power_w)
        if verdict is None:
            return
        cid = sample.charger_id
        self._cap(cid, "obeys_profiles", verdict.obeys, f"EVSE {sample.evse_id} meter readings")
        if verdict.obeys:
            self.notices.forget(cid, IGNORES_PROFILES)
            if f.obedience and any(w.obeys is False for w in f.obedience.values()):
                return
            log.info("charger follows its profiles", charger_id=cid, evse_id=sample.evse_id)
            return
        powers = ", ".join(f"{p / 1000:+.1f}" for p in verdict.powers_w)
        self.notices.tell(
            cid,
            IGNORES_PROFILES,
            f"charger {cid} does not follow its charging profile: the limit is "
            f"{verdict.limit_w / 1000:+.1f} kW but it metered {powers} kW in a row. The gateway "
            "no longer trusts it to discharge. Check that no other load manager or backend "
            "controls the charger, and its firmware.",
            data={
                "evse_id": sample.evse_id,
                "limit_w": verdict.limit_w,
                "powers_w": verdict.powers_w,
            },
        )

    # ------------------------------------------------------------ external limits

    def external_limit(
        self, charger_id: str, source: str, evse_id: int | None, schedules: list[dict[str, Any]]
    ) -> datetime | None:
        """NotifyChargingLimit with schedules; returns when to look again (next change)."""
        f = self.facts(charger_id)
        f.external[(source, evse_id)] = (schedules, self._clock.now())
        return self.refresh_external(charger_id, f"NotifyChargingLimit from {source}")

    def cleared_limit(self, charger_id: str, source: str, evse_id: int | None) -> None:
        f = self.facts(charger_id)
        for key in [
            k for k in f.external if k[0] == source and (evse_id is None or k[1] == evse_id)
        ]:
            del f.external[key]
        self.refresh_external(charger_id, f"cleared by {source}")

    def refresh_external(self, charger_id: str, detail: str) -> datetime | None:
        f = self.facts(charger_id)
        pairs = [(s, at) for scheds, at in f.external.values() for s in scheds]
        cap, nxt = cap_in_force(pairs, self._clock.now(), self.electrical(charger_id))
        value = None if cap is None else round(cap, 1)
        if value == f.external_w:
            return nxt
        f.external_w = value
        self._cap(charger_id, "external_limit_w", value, detail)
        self.notices.forget(charger_id, EXTERNAL_LIMIT)
        if value is not None:
            self.notices.tell(
                charger_id,
                EXTERNAL_LIMIT,
                f"charger {charger_id} is limited to {_kw(value)} by another system ({detail}); "
                "the gateway plans within that limit until it is lifted.",
                level="info",
                data={"limit_w": value, "detail": detail},
            )
        else:
            log.info("external limit lifted", charger_id=charger_id, detail=detail)
        return nxt
