"""SetChargingProfile as a given charger takes it: unit, EVSE and stack level learnt from refusals.

A refusal for a reason the gateway can fix is fixed and the profile sent again at once (at most
once per reason): a W profile refused for its unit goes again in A; a TxDefaultProfile refused for
its EVSE on a one-EVSE charger goes to EVSE 0; a duplicate stack level goes one level up. A
charge-only profile refused as not supported means smart charging is off: the user is told and no
more profiles are sent until the charger says otherwise (no profile spam).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from v2g_gateway.config import Config
from v2g_gateway.csms.adaptation import Adaptation
from v2g_gateway.csms.frames import V21
from v2g_gateway.csms.profiles import discharges, ocpp_profile
from v2g_gateway.csms.profiles21 import ocpp_profile21
from v2g_gateway.model import ChargingProfileSpec, CommandResult, CommandStatus, ProfilePurpose

log = structlog.get_logger(__name__)

Run = Callable[[str, str, dict[str, Any]], Awaitable[CommandResult]]
# (charger id) -> the OCPP version its session speaks; (charger id, EVSE) -> may its car discharge.
VersionOf = Callable[[str], str]
V2xOf = Callable[[str, int], bool]


def refusal_text(result: CommandResult) -> str:
    info = result.payload.get("statusInfo") or {}
    parts = [
        result.detail or "",
        str(info.get("reasonCode", "")),
        str(info.get("additionalInfo", "")),
    ]
    return " ".join(parts).lower()


def refusal(result: CommandResult) -> str | None:
    """What a refused SetChargingProfile was about: unit, evse, duplicate, not_supported."""
    if result.ok or result.status in (CommandStatus.OFFLINE, CommandStatus.TIMEOUT):
        return None
    text = refusal_text(result)
    squashed = re.sub(r"[^a-z]", "", text)
    if "rateunit" in squashed or re.search(r"\bunits?\b", text):
        return "unit"
    if "duplicate" in squashed or "stacklevel" in squashed:
        return "duplicate"
    if "evse" in squashed:
        return "evse"
    if result.status == CommandStatus.NOT_IMPLEMENTED or any(
        w in squashed for w in ("notsupported", "disabled", "notenabled", "smartcharging")
    ):
        return "not_supported"
    return None


class ProfileSender:
    def __init__(
        self,
        cfg: Config,
        adaptation: Adaptation,
        version_of: VersionOf = lambda _cid: "2.0.1",
        v2x_of: V2xOf = lambda _cid, _evse: True,
        outage: Callable[[], bool] = lambda: False,
    ) -> None:
        self._cfg = cfg
        self._adapt = adaptation
        self._version_of = version_of
        self._v2x_of = v2x_of
        self._outage = outage

    def render(self, spec: ChargingProfileSpec, stack_level: int | None) -> dict[str, Any]:
        """The ChargingProfileType in the charger's OCPP version (2.1: profiles21.py)."""
        cid = spec.charger_id
        electrical = self._adapt.electrical(cid)
        if self._version_of(cid) == V21:
            return ocpp_profile21(
                spec,
                electrical,
                stack_level=stack_level,
                v2x=self._v2x_of(cid, spec.evse_id),
                max_offline_s=self._cfg.ocpp.max_offline_s,
                # In an outage a charger that balances the house by itself does so (bounded).
                local_balancing=self._outage()
                and "LocalLoadBalancing" in self._adapt.facts(cid).operation_modes,
            )
        return ocpp_profile(spec, electrical, stack_level=stack_level)

    def target_evse(self, spec: ChargingProfileSpec) -> int:
        facts = self._adapt.facts(spec.charger_id)
        if spec.purpose == ProfilePurpose.TX_DEFAULT_PROFILE and facts.tx_default_evse0:
            return 0
        return spec.evse_id

    async def send(self, spec: ChargingProfileSpec, run: Run) -> CommandResult:
        """Send (and re-send once per fixable reason); raises ValueError for a bad spec."""
        cid = spec.charger_id
        facts = self._adapt.facts(cid)
        tried: set[str] = set()
        while True:
            profile = self.render(spec, facts.stack_level())
            payload = {"evseId": self.target_evse(spec), "chargingProfile": profile}
            result = await run(cid, "SetChargingProfile", payload)
            why = refusal(result)
            if why is None or why in tried:
                break
            tried.add(why)
            if not self._adjust(spec, why, result):
                break
        if result.ok:
            self._adapt.profile_accepted(spec)
        return result

    def _adjust(self, spec: ChargingProfileSpec, why: str, result: CommandResult) -> bool:
        """Change what the next attempt sends; False when nothing can be changed."""
        cid = spec.charger_id
        facts = self._adapt.facts(cid)
        detail = f"SetChargingProfile refused: {result.detail}"
        if why == "unit" and self._adapt.electrical(cid).rate_unit == "W":
            log.info("charger refused a profile in W; sending in A", charger_id=cid)
            facts.rate_unit = "A"
            self._adapt.announce_electrical(cid, detail)
            return True
        if why == "duplicate":
            top = facts.max_stack_level
            if top is not None and facts.stack_floor >= top:
                return False
            facts.stack_floor = max(facts.stack_floor, spec.stack_level) + 1
            self._adapt.learn(cid, "stack_level", facts.stack_level(), detail)
            return True
        ccfg = self._cfg.charger(cid)
        if (
            why == "evse"
            and spec.purpose == ProfilePurpose.TX_DEFAULT_PROFILE
            and not facts.tx_default_evse0
            and (ccfg is None or ccfg.evse_count == 1)
        ):
            log.info("charger wants TxDefaultProfile on EVSE 0", charger_id=cid)
            facts.tx_default_evse0 = True
            self._adapt.learn(cid, "tx_default_evse", 0, detail)
            return True
        if why == "not_supported" and not discharges(spec):
            self._adapt.smart_charging(cid, False, detail, "answer")
        return False
