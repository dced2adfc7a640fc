"""Commands to chargers: one queue per charger, timeouts, typed errors, results remembered.

`call()` is the low level (raises ChargerOffline / CommandTimeout / CommandRejected); every named
command returns a CommandResult and never raises for charger-side problems, because dispatch and
the CLI must keep running whatever a charger does.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from websockets.exceptions import ConnectionClosed

from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.csms.adaptation import Adaptation
from v2g_gateway.csms.boot_setup import configure_after_boot
from v2g_gateway.csms.profile_sender import ProfileSender
from v2g_gateway.dispatch.gate import GatedProfile
from v2g_gateway.errors import ChargerOffline, CommandRejected, CommandTimeout, OcppCommandError
from v2g_gateway.model import (
    ChargerEvent,
    ChargingProfileSpec,
    CommandResult,
    CommandStatus,
)

if TYPE_CHECKING:
    from v2g_gateway.csms.session import Session

log = structlog.get_logger(__name__)

Payload = dict[str, Any]
_OK = {"Accepted", "Scheduled", "NoProfiles"}
_HISTORY = 50


class CallErrorReply(CommandRejected):
    """The charger answered with a CALLERROR; `code` is its OCPP error code."""

    def __init__(self, charger_id: str, action: str, code: str, description: str) -> None:
        self.code = code
        super().__init__(charger_id, action, f"CALLERROR {code}: {description}")


@dataclass(frozen=True, slots=True)
class CommandRecord:
    at: datetime
    action: str
    status: CommandStatus
    detail: str | None


class Commands:
    def __init__(
        self,
        cfg: Config,
        sink: Callable[[ChargerEvent], object],
        clock: Clock,
        session_of: Callable[[str], Session | None],
    ) -> None:
        self._cfg = cfg
        self.cfg = cfg
        self._sink = sink
        self._clock = clock
        self._session_of = session_of
        self._queues: dict[str, asyncio.Lock] = {}
        self._history: dict[str, deque[CommandRecord]] = {}
        self._last_profile: dict[tuple[str, int], ChargingProfileSpec] = {}
        self._reported: dict[str, list[Payload]] = {}
        self._request_ids = itertools.count(1)
        # What each charger's firmware needs (unit, EVSE, stack level...) and what to tell.
        self.adaptation = Adaptation(cfg, sink, clock)
        # True while the grid is down (set by the app from the outage detector): 2.1 chargers
        # that balance the house locally are then given LocalLoadBalancing (profiles21.py).
        self.outage: Callable[[], bool] = lambda: False
        self._sender = ProfileSender(
            cfg, self.adaptation, self.version_of, self.v2x_of, lambda: self.outage()
        )

    # ---------------------------------------------------------------- low level

    async def call(
        self, charger_id: str, action: str, payload: Payload, wait_s: float | None = None
    ) -> Payload:
        """Send one CALL after the ones already queued for this charger; the answer's payload."""
        timeout = wait_s if wait_s is not None else self._cfg.ocpp.call_timeout_s
        if self._session_of(charger_id) is None:
            raise ChargerOffline(charger_id, action, "not connected")
        queue = self._queues.setdefault(charger_id, asyncio.Lock())
        try:
            async with asyncio.timeout(timeout * 3):
                await queue.acquire()
        except TimeoutError:
            raise CommandTimeout(charger_id, action, "too many commands queued") from None
        try:
            session = self._session_of(charger_id)
            if session is None:
                raise ChargerOffline(charger_id, action, "disconnected while queued")
            try:
                return await session.request(action, payload, timeout)
            except TimeoutError:
                raise CommandTimeout(
                    charger_id, action, f"no answer within {timeout:g} s"
                ) from None
            except ConnectionClosed:
                raise ChargerOffline(charger_id, action, "connection closed") from None
        finally:
            queue.release()

    def version_of(self, charger_id: str) -> str:
        """The OCPP version the charger's session speaks ("2.0.1" while it is offline)."""
        session = self._session_of(charger_id)
        return session.version if session is not None else "2.0.1"

    def v2x_of(self, charger_id: str, evse_id: int) -> bool:
        """False once the car at this EVSE said it is not bidirectional (OCPP 2.1)."""
        session = self._session_of(charger_id)
        return session.v2x(evse_id) if session is not None else True

    async def notify_allowed_energy_transfer(
        self, charger_id: str, payload: Payload
    ) -> CommandResult:
        """OCPP 2.1: the energy transfer modes (bidirectional or not) a transaction may use."""
        return await self._run(charger_id, "NotifyAllowedEnergyTransfer", payload)

    async def _run(self, charger_id: str, action: str, payload: Payload) -> CommandResult:
        try:
            answer = await self.call(charger_id, action, payload)
        except ChargerOffline as exc:
            result = CommandResult(CommandStatus.OFFLINE, exc.detail)
        except CommandTimeout as exc:
            result = CommandResult(CommandStatus.TIMEOUT, exc.detail)
        except CallErrorReply as exc:
            status = (
                CommandStatus.NOT_IMPLEMENTED
                if exc.code in ("NotImplemented", "NotSupported")
                else CommandStatus.ERROR
            )
            result = CommandResult(status, exc.detail, {"callError": exc.code})
        except OcppCommandError as exc:
            result = CommandResult(CommandStatus.ERROR, exc.detail)
        else:
            result = _from_answer(answer)
        self._record(charger_id, action, result)
        return result

    def _record(self, charger_id: str, action: str, result: CommandResult) -> None:
        hist = self._history.setdefault(charger_id, deque(maxlen=_HISTORY))
        hist.append(CommandRecord(self._clock.now(), action, result.status, result.detail))
        log.info("command", charger_id=charger_id, action=action, status=result.status.value)

    def history(self, charger_id: str) -> list[CommandRecord]:
        """The last commands sent to a charger and how they ended (oldest first)."""
        return list(self._history.get(charger_id, ()))

    def request_id(self) -> int:
        """A fresh requestId (reports that follow a request carry it)."""
        return next(self._request_ids)

    # ---------------------------------------------------------------- smart charging

    def last_profile(self, charger_id: str, evse_id: int) -> ChargingProfileSpec | None:
        """The last profile the charger accepted on this EVSE (dispatch skips identical ones)."""
        return self._last_profile.get((charger_id, evse_id))

    async def set_charging_profile(self, profile: GatedProfile) -> CommandResult:
        """Send a profile that passed the safety gate (no other kind can be sent), in the form
        this charger's firmware takes (unit, EVSE, stack level: never more power or energy)."""
        spec = profile.spec
        if self.adaptation.smart_charging_off(spec.charger_id):
            # The user has been told; sending would only be refused again (no profile spam).
            return CommandResult(CommandStatus.ERROR, "smart charging is off on the charger")
        try:
            result = await self._sender.send(spec, self._run)
        except ValueError as exc:
            return CommandResult(CommandStatus.ERROR, str(exc))
        if result.ok:
            self._last_profile[(spec.charger_id, spec.evse_id)] = spec
        return result

    async def clear_charging_profile(
        self, charger_id: str, *, profile_id: int | None = None, evse_id: int | None = None
    ) -> CommandResult:
        payload: Payload = {}
        if profile_id is not None:
            payload["chargingProfileId"] = profile_id
        if evse_id is not None:
            payload["chargingProfileCriteria"] = {"evseId": evse_id}
        result = await self._run(charger_id, "ClearChargingProfile", payload)
        facts = self.adaptation.facts(charger_id)
        if evse_id is not None and profile_id is None and facts.tx_default_evse0:
            # Our TxDefaultProfile went to EVSE 0 (the charger wanted it there).
            for key, spec in list(self._last_profile.items()):
                if key == (charger_id, evse_id) and self._sender.target_evse(spec) == 0:
                    await self._run(
                        charger_id, "ClearChargingProfile", {"chargingProfileId": spec.profile_id}
                    )
        if result.ok or result.payload.get("status") == "Unknown":
            self.adaptation.profile_cleared(charger_id, evse_id, profile_id)
            for key, spec in list(self._last_profile.items()):
                if key[0] != charger_id:
                    continue
                if evse_id is not None and key[1] != evse_id:
                    continue
                if profile_id is not None and spec.profile_id != profile_id:
                    continue
                del self._last_profile[key]
        return result

    async def get_composite_schedule(
        self, charger_id: str, evse_id: int, duration_s: int
    ) -> CommandResult:
        unit = self.adaptation.electrical(charger_id).rate_unit
        payload = {"duration": duration_s, "evseId": evse_id, "chargingRateUnit": unit}
        return await self._run(charger_id, "GetCompositeSchedule", payload)

    async def get_charging_profiles(
        self,
        charger_id: str,
        *,
        evse_id: int | None = None,
        purpose: str | None = None,
        request_id: int | None = None,
    ) -> CommandResult:
        criterion: Payload = {}
        if purpose is not None:
            criterion["chargingProfilePurpose"] = purpose
        rid = request_id if request_id is not None else self.request_id()
        payload: Payload = {"requestId": rid, "chargingProfile": criterion}
        if evse_id is not None:
            payload["evseId"] = evse_id
        return await self._run(charger_id, "GetChargingProfiles", payload)

    def record_reported_profiles(self, charger_id: str, report: Payload) -> None:
        """ReportChargingProfiles parts, kept until the next GetChargingProfiles."""
        self._reported.setdefault(charger_id, []).append(report)
        del self._reported[charger_id][:-_HISTORY]
        rid = report.get("requestId")
        facts = self.adaptation.facts(charger_id)
        facts.report_part(rid if isinstance(rid, int) else None, bool(report.get("tbc")))

    def reported_profiles(self, charger_id: str) -> list[Payload]:
        return list(self._reported.get(charger_id, ()))

    # ---------------------------------------------------------------- transactions

    async def request_start_transaction(
        self,
        charger_id: str,
        id_token: str,
        *,
        evse_id: int | None = None,
        token_type: str = "Central",
    ) -> CommandResult:
        payload: Payload = {
            "idToken": {"idToken": id_token, "type": token_type},
            "remoteStartId": self.request_id(),
        }
        if evse_id is not None:
            payload["evseId"] = evse_id
        return await self._run(charger_id, "RequestStartTransaction", payload)

    async def request_stop_transaction(self, charger_id: str, transaction_id: str) -> CommandResult:
        return await self._run(
            charger_id, "RequestStopTransaction", {"transactionId": transaction_id}
        )

    # ---------------------------------------------------------------- device model and control

    async def trigger_message(
        self, charger_id: str, requested_message: str, *, evse_id: int | None = None
    ) -> CommandResult:
        payload: Payload = {"requestedMessage": requested_message}
        if evse_id is not None:
            payload["evse"] = {"id": evse_id}
        return await self._run(charger_id, "TriggerMessage", payload)

    async def get_variables(
        self, charger_id: str, items: Sequence[tuple[str, str]]
    ) -> CommandResult:
        """items: (component, variable) pairs; per-item answers in payload['getVariableResult']."""
        data = [{"component": {"name": c}, "variable": {"name": v}} for c, v in items]
        return await self._run(charger_id, "GetVariables", {"getVariableData": data})

    async def set_variables(
        self, charger_id: str, items: Sequence[tuple[str, str, str]]
    ) -> CommandResult:
        """items: (component, variable, value); Accepted only if every item was accepted."""
        data = [
            {"component": {"name": c}, "variable": {"name": v}, "attributeValue": val}
            for c, v, val in items
        ]
        result = await self._run(charger_id, "SetVariables", {"setVariableData": data})
        if not result.ok:
            return result
        refused = [
            f"{r['component']['name']}.{r['variable']['name']}: {r['attributeStatus']}"
            for r in result.payload.get("setVariableResult", ())
            if r.get("attributeStatus") not in ("Accepted", "RebootRequired")
        ]
        if refused:
            return CommandResult(CommandStatus.REJECTED, "; ".join(refused), result.payload)
        return result

    async def get_base_report(
        self, charger_id: str, report_base: str = "FullInventory", *, request_id: int | None = None
    ) -> CommandResult:
        rid = request_id if request_id is not None else self.request_id()
        payload = {"requestId": rid, "reportBase": report_base}
        return await self._run(charger_id, "GetBaseReport", payload)

    async def reset(
        self, charger_id: str, kind: str = "OnIdle", *, evse_id: int | None = None
    ) -> CommandResult:
        payload: Payload = {"type": kind}
        if evse_id is not None:
            payload["evseId"] = evse_id
        return await self._run(charger_id, "Reset", payload)

    async def change_availability(
        self,
        charger_id: str,
        operational: bool,
        *,
        evse_id: int | None = None,
        connector_id: int | None = None,
    ) -> CommandResult:
        payload: Payload = {"operationalStatus": "Operative" if operational else "Inoperative"}
        if evse_id is not None:
            evse: Payload = {"id": evse_id}
            if connector_id is not None:
                evse["connectorId"] = connector_id
            payload["evse"] = evse
        return await self._run(charger_id, "ChangeAvailability", payload)

    # ---------------------------------------------------------------- after a boot

    async def configure_after_boot(self, charger_id: str) -> None:
        """Learn the charger, set up meter sampling, tidy its profiles (boot_setup.py)."""
        await configure_after_boot(self, charger_id)


def _from_answer(answer: Payload) -> CommandResult:
    status = answer.get("status")
    if status is None:  # GetVariables, SetVariables: per-item results
        return CommandResult(CommandStatus.ACCEPTED, None, answer)
    info = answer.get("statusInfo") or {}
    detail = None if status == "Accepted" else str(status)
    if info.get("reasonCode"):
        detail = f"{status}: {info['reasonCode']}"
        if info.get("additionalInfo"):
            detail += f" ({info['additionalInfo']})"
    ok = status in _OK
    return CommandResult(CommandStatus.ACCEPTED if ok else CommandStatus.REJECTED, detail, answer)
