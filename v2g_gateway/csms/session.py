"""One charger's OCPP session: every charger-to-CSMS action of 2.0.1, answered and turned into events.

The library's ChargePoint gives us call() with its one-call-at-a-time lock and response queue;
receiving is done here because the library drops bad frames silently, validates loosely, and
converts every payload to snake_case (slow, and handlers break on unknown keys).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from ocpp.messages import CallError as LibCallError
from ocpp.messages import CallResult as LibCallResult
from ocpp.v201 import ChargePoint
from websockets.asyncio.server import ServerConnection

from v2g_gateway.csms import frames
from v2g_gateway.csms.commands import CallErrorReply
from v2g_gateway.csms.frames import Call, FrameError
from v2g_gateway.csms.meter import sample_from
from v2g_gateway.csms.ratelimit import TokenBucket
from v2g_gateway.csms.reports import capabilities
from v2g_gateway.csms.timestamps import iso, parse_ts
from v2g_gateway.errors import ChargerOffline, CommandRejected, OcppCommandError
from v2g_gateway.model import (
    GRID_HINT,
    ChargerBooted,
    ChargerCapability,
    ChargerEvent,
    ConnectorStatus,
    ConnectorStatusChanged,
    EvChargingNeeds,
    HeartbeatSeen,
)

if TYPE_CHECKING:
    from v2g_gateway.csms.server import CsmsServer

log = structlog.get_logger(__name__)

Payload = dict[str, Any]
Handler = Callable[[Payload], Payload]


# OCPP 2.0.1 names no standard "grid lost" event; chargers that report it use variables like
# these (any component). true = the grid is gone; false or a cleared event = it is back.
_GRID_LOSS_VARIABLES = {"powerloss", "gridloss", "mainsloss", "acpowerloss", "gridfailure"}


def grid_hint(ev: Payload) -> bool | None:
    """What a NotifyEvent entry says about the grid, if anything."""
    if str(ev["variable"]["name"]).lower() not in _GRID_LOSS_VARIABLES:
        return None
    if ev.get("cleared"):
        return False
    return str(ev["actualValue"]).strip().lower() in ("true", "1", "on", "active")


# How soon a charger answered Pending (gateway not ready) boots again, in seconds.
BOOT_RETRY_S = 30


class Session(ChargePoint):  # type: ignore[misc]  # ocpp is untyped
    def __init__(
        self, charger_id: str, ws: ServerConnection, server: CsmsServer, bucket: TokenBucket
    ) -> None:
        super().__init__(charger_id, ws, response_timeout=server.cfg.ocpp.call_timeout_s)
        self.ws = ws
        self._server = server
        self._cfg = server.cfg
        self._clock = server.clock
        self._bucket = bucket
        self.tx = server.tracker_for(charger_id)
        self.tasks: set[asyncio.Task[None]] = set()
        self.booted = False
        self._handlers: dict[str, Handler] = {
            "BootNotification": self._boot,
            "Heartbeat": self._heartbeat,
            "StatusNotification": self._status,
            "TransactionEvent": self._transaction,
            "MeterValues": self._meter_values,
            "NotifyEVChargingNeeds": self._ev_needs,
            "NotifyEVChargingSchedule": self._ev_schedule,
            "NotifyChargingLimit": self._charging_limit,
            "ClearedChargingLimit": self._cleared_limit,
            "ReportChargingProfiles": self._report_profiles,
            "NotifyReport": self._notify_report,
            "NotifyEvent": self._notify_event,
            "SecurityEventNotification": self._security_event,
            "Authorize": self._authorize,
            "FirmwareStatusNotification": self._status_log("firmware status"),
            "LogStatusNotification": self._status_log("log upload status"),
            "PublishFirmwareStatusNotification": self._status_log("firmware publishing status"),
            "DataTransfer": self._data_transfer,
            "SignCertificate": self._sign_certificate,
            "Get15118EVCertificate": self._ev_certificate,
            "GetCertificateStatus": self._certificate_status,
            "NotifyCustomerInformation": self._ack("customer information"),
            "NotifyDisplayMessages": self._ack("display messages"),
            "NotifyMonitoringReport": self._ack("monitoring report"),
            "ReservationStatusUpdate": self._ack("reservation status"),
        }
        self._after: dict[str, Callable[[Payload], None]] = {"BootNotification": self._after_boot}

    # ---------------------------------------------------------------- receiving

    async def start(self) -> None:
        async for raw in self.ws:
            await self.route_message(raw)

    async def _send(self, message: str) -> None:
        await self.ws.send(message)

    async def _answer_or_hangup(self, unique_id: str, action: str, wait_s: float) -> Any:
        """The answer, or ChargerOffline as soon as the link drops (not after the timeout)."""
        answer = asyncio.ensure_future(self._get_specific_response(unique_id, wait_s))
        closed = asyncio.ensure_future(self.ws.wait_closed())
        try:
            await asyncio.wait((answer, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not answer.done():
                answer.cancel()
        if not answer.done() or answer.cancelled():
            raise ChargerOffline(self.id, action, "connection closed while waiting for the answer")
        return answer.result()

    async def request(self, action: str, payload: Payload, wait_s: float) -> Payload:
        """One CALL under the library's call lock; the schema-checked answer payload."""
        problem = frames.schema_problem(frames.CALL, action, payload)
        if problem:
            raise OcppCommandError(self.id, action, f"invalid request: {problem}")
        unique_id = str(uuid.uuid4())
        async with self._call_lock:
            await self._send(json.dumps([frames.CALL, unique_id, action, payload]))
            answer = await self._answer_or_hangup(unique_id, action, wait_s)
        if isinstance(answer, LibCallError):
            raise CallErrorReply(self.id, action, answer.error_code, answer.error_description)
        problem = frames.schema_problem(frames.CALLRESULT, action, answer.payload)
        if problem:
            raise CommandRejected(self.id, action, f"invalid answer: {problem}")
        result: Payload = answer.payload
        return result

    async def route_message(self, raw_msg: str | bytes) -> None:
        left = self._bucket.take()
        if left < 0:
            await self._flood(raw_msg, left)
            return
        try:
            frame = frames.parse_frame(raw_msg)
        except FrameError as exc:
            log.warning("bad frame", code=exc.code, problem=exc.description)
            if exc.reply:
                await self._send(frames.call_error(exc.unique_id, exc.code, exc.description))
            return
        if not isinstance(frame, Call) and not self._call_lock.locked():
            log.warning("answer to no pending call ignored", unique_id=frame.unique_id)
        elif isinstance(frame, frames.Result):
            self._response_queue.put_nowait(LibCallResult(frame.unique_id, frame.payload))
        elif isinstance(frame, frames.Error):
            err = LibCallError(frame.unique_id, frame.code, frame.description, frame.details)
            self._response_queue.put_nowait(err)
        else:
            await self._handle(frame)

    async def _flood(self, raw_msg: str | bytes, left: float) -> None:
        if left < -self._bucket.capacity:
            log.warning("closing a flooding charger", limit=self._cfg.ocpp.max_messages_per_minute)
            await self.ws.close(1008, "message rate limit exceeded")
            return
        try:
            frame = frames.parse_frame(raw_msg)
        except FrameError:
            return
        if isinstance(frame, Call):
            limit = self._cfg.ocpp.max_messages_per_minute
            await self._send(
                frames.call_error(
                    frame.unique_id,
                    "GenericError",
                    f"rate limit of {limit} messages/minute exceeded",
                )
            )

    async def _handle(self, call: Call) -> None:
        handler = self._handlers.get(call.action)
        try:
            if handler is None:
                if frames.schema_exists(call.action):
                    raise FrameError("NotSupported", f"{call.action} is not sent by chargers")
                raise FrameError("NotImplemented", f"unknown action {call.action!r}")
            frames.validate_request(call)
            response = handler(call.payload)
        except FrameError as exc:
            log.warning("call refused", action=call.action, code=exc.code, problem=exc.description)
            await self._send(frames.call_error(call.unique_id, exc.code, exc.description))
            return
        except Exception:
            log.exception("handler failed", action=call.action)
            await self._send(frames.call_error(call.unique_id, "InternalError", "handler failed"))
            return
        await self._send(frames.call_result(call.unique_id, response))
        after = self._after.get(call.action)
        if after is not None:
            after(call.payload)

    def _emit(self, event: ChargerEvent) -> None:
        self._server.sink(event)

    def spawn(self, name: str, coro: Any) -> None:
        """A named background task owned by this session (cancelled when it ends)."""
        task: asyncio.Task[None] = asyncio.create_task(coro, name=f"csms:{self.id}:{name}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # ---------------------------------------------------------------- core messages

    def _boot(self, p: Payload) -> Payload:
        cs = p["chargingStation"]
        now = iso(self._clock.now())
        ccfg = self._cfg.charger(self.id)
        if ccfg is not None and not ccfg.enabled:
            # Taken out of service by the user: the charger retries after the interval.
            return {"currentTime": now, "interval": BOOT_RETRY_S * 10, "status": "Rejected"}
        if not self._server.ready():
            return {"currentTime": now, "interval": BOOT_RETRY_S, "status": "Pending"}
        self._emit(
            ChargerBooted(
                charger_id=self.id,
                at=self._clock.now(),
                vendor=cs["vendorName"],
                model=cs["model"],
                serial=cs.get("serialNumber"),
                firmware=cs.get("firmwareVersion"),
                reason=p.get("reason"),
            )
        )
        self.booted = True
        return {
            "currentTime": iso(self._clock.now()),
            "interval": self._cfg.ocpp.heartbeat_interval_s,
            "status": "Accepted",
        }

    def _after_boot(self, p: Payload) -> None:
        if not self.booted:
            return  # Pending or Rejected: nothing to configure yet
        self.spawn("after-boot", self._server.commands.configure_after_boot(self.id))

    def _heartbeat(self, p: Payload) -> Payload:
        now = self._clock.now()
        self._emit(HeartbeatSeen(self.id, now))
        return {"currentTime": iso(now)}

    def _status(self, p: Payload) -> Payload:
        self._emit(
            ConnectorStatusChanged(
                charger_id=self.id,
                evse_id=int(p["evseId"]),
                connector_id=int(p["connectorId"]),
                status=ConnectorStatus(p["connectorStatus"]),
                at=parse_ts(p["timestamp"]),
            )
        )
        return {}

    def _transaction(self, p: Payload) -> Payload:
        if self.tx.is_duplicate(p):
            log.info(
                "duplicate TransactionEvent ignored",
                transaction_id=p["transactionInfo"]["transactionId"],
                seq_no=p["seqNo"],
            )
            return {}
        events = self.tx.translate(p)
        for event in events:
            self._emit(event)
        self.tx.mark(p, events[0].evse_id)
        answer: Payload = {}
        token = (p.get("idToken") or {}).get("idToken")
        if token is not None:
            answer["idTokenInfo"] = {"status": self._token_status(token)}
        return answer

    def _meter_values(self, p: Payload) -> Payload:
        evse_id = int(p["evseId"])
        samples = [sample_from(self.id, evse_id, mv) for mv in p["meterValue"]]
        for sample in samples:
            self._emit(sample)
        return {}

    def _ev_needs(self, p: Payload) -> Payload:
        needs = p["chargingNeeds"]
        ac = needs.get("acChargingParameters") or {}
        dc = needs.get("dcChargingParameters") or {}
        max_w: float | None = None
        if "evMaxPower" in dc:
            max_w = float(dc["evMaxPower"])
        elif "evMaxCurrent" in ac and "evMaxVoltage" in ac:
            max_w = float(ac["evMaxCurrent"]) * float(ac["evMaxVoltage"])
        energy = dc.get("energyAmount", ac.get("energyAmount"))
        departure = needs.get("departureTime")
        self._emit(
            EvChargingNeeds(
                charger_id=self.id,
                evse_id=int(p["evseId"]),
                at=self._clock.now(),
                soc_percent=float(dc["stateOfCharge"]) if "stateOfCharge" in dc else None,
                capacity_wh=float(dc["evEnergyCapacity"]) if "evEnergyCapacity" in dc else None,
                departure_time=parse_ts(departure, "departureTime") if departure else None,
                energy_request_wh=float(energy) if energy is not None else None,
                max_charge_w=max_w,
            )
        )
        return {"status": "Accepted"}

    # ---------------------------------------------------------------- smart charging reports

    def _ev_schedule(self, p: Payload) -> Payload:
        sched = p["chargingSchedule"]
        log.info(
            "EV proposed a charging schedule",
            evse_id=p["evseId"],
            periods=len(sched.get("chargingSchedulePeriod", ())),
        )
        return {"status": "Accepted"}

    def _charging_limit(self, p: Payload) -> Payload:
        limit = p["chargingLimit"]
        self._emit(
            ChargerCapability(
                charger_id=self.id,
                at=self._clock.now(),
                name="external_limit",
                value={
                    "source": limit["chargingLimitSource"],
                    "grid_critical": limit.get("isGridCritical"),
                    "evse_id": p.get("evseId"),
                    "schedule": p.get("chargingSchedule"),
                },
                detail="NotifyChargingLimit",
            )
        )
        return {}

    def _cleared_limit(self, p: Payload) -> Payload:
        self._emit(
            ChargerCapability(
                charger_id=self.id,
                at=self._clock.now(),
                name="external_limit",
                value=None,
                detail=f"cleared by {p['chargingLimitSource']}",
            )
        )
        return {}

    def _report_profiles(self, p: Payload) -> Payload:
        self._server.commands.record_reported_profiles(self.id, p)
        return {}

    def _notify_report(self, p: Payload) -> Payload:
        now = self._clock.now()
        for name, value, detail in capabilities(p.get("reportData", ())):
            self._emit(ChargerCapability(self.id, now, name, value, detail))
        return {}

    def _notify_event(self, p: Payload) -> Payload:
        for ev in p["eventData"]:
            log.info(
                "charger event",
                component=ev["component"]["name"],
                variable=ev["variable"]["name"],
                value=ev["actualValue"],
                trigger=ev["trigger"],
            )
            hint = grid_hint(ev)
            if hint is not None:
                self._emit(
                    ChargerCapability(
                        self.id,
                        self._clock.now(),
                        GRID_HINT,
                        hint,
                        f"{ev['component']['name']}.{ev['variable']['name']}",
                    )
                )
        return {}

    def _security_event(self, p: Payload) -> Payload:
        log.warning("charger security event", type=p["type"], info=p.get("techInfo"))
        return {}

    # ---------------------------------------------------------------- authorisation and the rest

    def _token_status(self, token: str) -> str:
        for v in self._cfg.vehicles:
            if token in v.id_tokens or (v.evccid is not None and token == v.evccid):
                return "Accepted"
        return "Invalid"

    def _authorize(self, p: Payload) -> Payload:
        status = self._token_status(p["idToken"]["idToken"])
        return {"idTokenInfo": {"status": status}}

    def _status_log(self, what: str) -> Handler:
        def handler(p: Payload) -> Payload:
            log.info(what, status=p["status"], request_id=p.get("requestId"))
            return {}

        return handler

    def _ack(self, what: str) -> Handler:
        def handler(p: Payload) -> Payload:
            log.info(f"charger sent {what}", request_id=p.get("requestId"))
            return {}

        return handler

    def _data_transfer(self, p: Payload) -> Payload:
        log.info("data transfer from unknown vendor", vendor_id=p["vendorId"])
        return {"status": "UnknownVendorId"}

    def _sign_certificate(self, p: Payload) -> Payload:
        return {"status": "Rejected", "statusInfo": {"reasonCode": "NotSupported"}}

    def _ev_certificate(self, p: Payload) -> Payload:
        return {"status": "Failed", "exiResponse": ""}

    def _certificate_status(self, p: Payload) -> Payload:
        return {"status": "Failed"}
