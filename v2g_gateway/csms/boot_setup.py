"""After an accepted BootNotification: learn the charger, set up sampling, tidy its profiles.

1. GetVariables for what shapes every profile (smart charging on, rate unit, stack levels,
   phases); a charger that cannot answer keeps the defaults.
2. SetVariables for meter sampling; if the measurand list is refused, the subset the charger
   supports (valuesList of its report, else probed one by one) and the user is told what is
   missing.
3. GetBaseReport for the device model (capabilities).
4. GetChargingProfiles: foreign profiles are cleared or stayed above (installed.py).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from v2g_gateway.csms.installed import installed_from, stack_floor, to_clear
from v2g_gateway.csms.reports import variable_capability
from v2g_gateway.model import CommandResult

if TYPE_CHECKING:
    from v2g_gateway.csms.commands import Commands

log = structlog.get_logger(__name__)

# Measurands the gateway needs on every transaction update (SoC and export for V2G).
TX_MEASURANDS = (
    "Energy.Active.Import.Register",
    "Energy.Active.Export.Register",
    "Power.Active.Import",
    "Power.Active.Export",
    "SoC",
    "Voltage",
    "Current.Import",
)
BOOT_VARIABLES = (
    ("SmartChargingCtrlr", "Enabled"),
    ("SmartChargingCtrlr", "RateUnit"),
    ("SmartChargingCtrlr", "ProfileStackLevel"),
    ("ChargingStation", "SupplyPhases"),
)
_WHY_MISSING = {
    "SoC": "without SoC the gateway never discharges (give the vehicle a soc_topic)",
    "Power.Active.Export": "discharge power is not metered",
    "Energy.Active.Export.Register": "discharged energy is not counted",
    "Power.Active.Import": "charging power is not metered (obedience cannot be checked)",
}
MEASURANDS_MISSING = "charger_measurands_missing"
FOREIGN_PROFILES = "charger_foreign_profiles"


async def configure_after_boot(commands: Commands, charger_id: str) -> None:
    adapt = commands.adaptation
    adapt.facts(charger_id).smart.clear()  # read afresh: the user may have changed it
    await _read_variables(commands, charger_id)
    adapt.announce_electrical(charger_id, "after boot")
    await _sampling_and_report(commands, charger_id)
    if not adapt.smart_charging_off(charger_id):
        await _installed_profiles(commands, charger_id)


async def _read_variables(commands: Commands, charger_id: str) -> None:
    result = await commands.get_variables(charger_id, BOOT_VARIABLES)
    if not result.ok:
        log.info("no device model variables", status=result.status.value, detail=result.detail)
        return
    for item in result.payload.get("getVariableResult", ()):
        if item.get("attributeStatus") != "Accepted":
            continue
        component, variable = item["component"]["name"], item["variable"]["name"]
        known = variable_capability(component, variable, item.get("attributeValue"))
        if known is not None:
            where = f"{component}.{variable}"
            commands.adaptation.learn(charger_id, known[0], known[1], where, announce=False)


def _refused(result: CommandResult, variable: str) -> bool:
    for r in result.payload.get("setVariableResult", ()):
        if r["variable"]["name"] == variable:
            return r.get("attributeStatus") not in ("Accepted", "RebootRequired")
    return not result.ok and not result.payload


async def _sampling_and_report(commands: Commands, charger_id: str) -> None:
    interval = str(commands.cfg.ocpp.meter_interval_s)
    sampled = await commands.set_variables(
        charger_id,
        [
            ("SampledDataCtrlr", "TxUpdatedInterval", interval),
            ("SampledDataCtrlr", "TxUpdatedMeasurands", ",".join(TX_MEASURANDS)),
        ],
    )
    if not sampled.ok:
        log.warning("charger refused meter sampling settings", detail=sampled.detail)
    request_id = commands.request_id()
    done = commands.adaptation.facts(charger_id).expect_report(request_id)
    report = await commands.get_base_report(charger_id, request_id=request_id)
    if not report.ok:
        log.info("no device model report", status=report.status.value, detail=report.detail)
    if sampled.payload and _refused(sampled, "TxUpdatedMeasurands"):
        if report.ok:
            await _wait(done, commands.cfg.ocpp.call_timeout_s)
        await _fewer_measurands(commands, charger_id)


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def _fewer_measurands(commands: Commands, charger_id: str) -> None:
    facts = commands.adaptation.facts(charger_id)
    supported = facts.measurands_supported
    if supported is not None:
        subset = [m for m in TX_MEASURANDS if m in supported]
    else:  # no valuesList: ask for each one alone
        subset = []
        for m in TX_MEASURANDS:
            probe = await commands.set_variables(
                charger_id, [("SampledDataCtrlr", "TxUpdatedMeasurands", m)]
            )
            if probe.ok:
                subset.append(m)
    if subset:
        again = await commands.set_variables(
            charger_id, [("SampledDataCtrlr", "TxUpdatedMeasurands", ",".join(subset))]
        )
        if not again.ok:
            subset = []
    missing = [m for m in TX_MEASURANDS if m not in subset]
    commands.adaptation.learn(charger_id, "measurands_missing", missing, "TxUpdatedMeasurands")
    if not missing:
        return
    effects = "; ".join(_WHY_MISSING[m] for m in missing if m in _WHY_MISSING)
    commands.adaptation.notices.tell(
        charger_id,
        MEASURANDS_MISSING,
        f"charger {charger_id} cannot report {', '.join(missing)}"
        + (f": {effects}" if effects else "")
        + ". Check the charger's meter settings or firmware.",
        data={"missing": missing, "sampled": subset},
    )


async def _installed_profiles(commands: Commands, charger_id: str) -> None:
    adapt = commands.adaptation
    facts = adapt.facts(charger_id)
    request_id = commands.request_id()
    done = facts.expect_report(request_id)
    asked = await commands.get_charging_profiles(charger_id, request_id=request_id)
    if asked.payload.get("status") == "NoProfiles":
        return
    if not asked.ok:
        log.info("cannot read installed profiles", detail=asked.detail)
        return
    if not await _wait(done, commands.cfg.ocpp.call_timeout_s):
        log.info("no ReportChargingProfiles after GetChargingProfiles", charger_id=charger_id)
    found = installed_from(commands.reported_profiles(charger_id), request_id)
    cleared = []
    clear = to_clear(found)
    for p in clear:
        result = await commands.clear_charging_profile(charger_id, profile_id=p.profile_id)
        if result.ok:  # "Unknown" for a profile it just reported: it keeps it
            cleared.append(p)
    kept = [p for p in found if p not in cleared and p.competes and not p.ours]
    facts.stack_floor = stack_floor(kept)
    adapt.learn(charger_id, "stack_level", facts.stack_level(), "above foreign profiles")
    adapt.learn(charger_id, "foreign_profiles", [p.describe() for p in kept], "after boot")
    if cleared:
        log.info(
            "cleared foreign profiles",
            charger_id=charger_id,
            profiles=[p.describe() for p in cleared],
        )
    if not kept:
        if cleared:
            adapt.notices.tell(
                charger_id,
                FOREIGN_PROFILES,
                f"charger {charger_id} held {len(cleared)} charging profile(s) from another "
                f"system ({'; '.join(p.describe() for p in cleared)}); the gateway cleared them "
                "so its own limits apply.",
                level="info",
                data={"cleared": [p.profile_id for p in cleared]},
            )
        return
    top = facts.max_stack_level
    blocked = top is not None and facts.stack_floor > top
    listing = "; ".join(p.describe() for p in kept)
    message = f"charger {charger_id} holds charging profiles the gateway cannot clear ({listing}). "
    if blocked:
        message += (
            f"They sit at the highest stack level the charger allows ({top}), so they may "
            "override the gateway: remove them on the charger or in the system that set them."
        )
    else:
        message += (
            f"The gateway's profiles use stack level {facts.stack_level()} to stay above them."
        )
    adapt.notices.tell(
        charger_id,
        FOREIGN_PROFILES,
        message,
        data={"kept": [p.profile_id for p in kept], "blocked": blocked},
    )
