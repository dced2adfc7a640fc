"""One charger's OCPP session: every charger-to-CSMS action of 2.0.1, answered and turned into events.

The library's ChargePoint gives us call() with its one-call-at-a-time lock and response queue;
receiving is done here because the library drops bad frames silently, validates loosely, and
converts every payload to snake_case (slow, and handlers break on unknown keys).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from ocpp.messages import CallError as LibCallError
from ocpp.messages import CallResult as LibCallResult
from ocpp.v201 import ChargePoint
from websockets.asyncio.server import ServerConnection

from v2g_gateway.csms import boot_answers, frames
from v2g_gateway.csms.boot_answers import BOOT_RETRY_S
from v2g_gateway.csms.commands import CallErrorReply
from v2g_gateway.csms.frames import Call, FrameError
from v2g_gateway.csms.leniency import accept, accept_answer, v2x_powers
from v2g_gateway.csms.meter import sample_from
from v2g_gateway.csms.ratelimit import TokenBucket
from v2g_gateway.csms.side_messages import SideMessages, grid_hint
from v2g_gateway.csms.timestamps import iso, parse_ts
from v2g_gateway.errors import ChargerOffline, CommandRejected, OcppCommandError
from v2g_gateway.model import (
    ChargerBooted,
    ChargerEvent,
    ConnectorStatus,
    ConnectorStatusChanged,
    EvChargingNeeds,
    HeartbeatSeen,
    MeterSample,
)

if TYPE_CHECKING:
    from v2g_gateway.csms.server import CsmsServer

log = structlog.get_logger(__name__)
# Every frame in and out at debug level (log_level = "debug"): what a charger report needs.
_FRAMES = logging.getLogger("v2g_gateway.ocpp.frames")

Payload = dict[str, Any]
Handler = Callable[[Payload], Payload]


__all__ = ["BOOT_RETRY_S", "Session", "grid_hint"]

# How soon a charger answered Pending (gateway not ready) boots again, in seconds.
# TransactionEvents a reconnecting charger may replay (offline = true) outside the flood guard
# in one session: more than the offline queue of any charger we know (the simulator keeps 2,000).
OFFLINE_ALLOWANCE = 10_000


class Session(ChargePoint):  # type: ignore[misc]  # ocpp is untyped
    # The OCPP version this session speaks: its schemas check every frame both ways.
    version = frames.V201
    # True: an answer that breaks its schema is never sent (a CALLERROR InternalError instead).
    check_answers = False

    def __init__(
        self, charger_id: str, ws: ServerConnection, server: CsmsServer, bucket: TokenBucket
    ) -> None:
        super().__init__(charger_id, ws, response_timeout=server.cfg.ocpp.call_timeout_s)
        self.ws = ws
        self._server = server
        self._cfg = server.cfg
        self._clock = server.clock
        self._bucket = bucket
        # A flood's penalty ends with the session that earned it: a new connection starts full.
        bucket.reset()
        self._offline_allowance = OFFLINE_ALLOWANCE
        self.clock = server.clock
        self.commands = server.commands
        self.adaptation = server.commands.adaptation
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
            "Authorize": self._authorize,
            **SideMessages(self).handlers(),
        }
        self._after: dict[str, Callable[[Payload], None]] = {"BootNotification": self._after_boot}

    # ---------------------------------------------------------------- receiving

    async def start(self) -> None:
        async for raw in self.ws:
            await self.route_message(raw)

    async def _send(self, message: str) -> None:
        if _FRAMES.isEnabledFor(logging.DEBUG):
            log.debug("ocpp frame out", frame=message[:4096])
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
        problem = frames.schema_problem(frames.CALL, action, payload, self.version)
        if problem:
            raise OcppCommandError(self.id, action, f"invalid request: {problem}")
        unique_id = str(uuid.uuid4())
        async with self._call_lock:
            await self._send(json.dumps([frames.CALL, unique_id, action, payload]))
            answer = await self._answer_or_hangup(unique_id, action, wait_s)
        if isinstance(answer, LibCallError):
            raise CallErrorReply(self.id, action, answer.error_code, answer.error_description)
        try:
            read = accept_answer(
                action, answer.payload, self.adaptation.strict(self.id), self.version
            )
        except FrameError as exc:
            raise CommandRejected(self.id, action, f"invalid answer: {exc.description}") from None
        if read.quirks:
            self.adaptation.quirks(self.id, read.quirks)
        return read.payload

    async def route_message(self, raw_msg: str | bytes) -> None:
        if _FRAMES.isEnabledFor(logging.DEBUG):
            log.debug("ocpp frame in", frame=str(raw_msg)[:4096])
        try:
            frame = frames.parse_frame(raw_msg)
        except FrameError as exc:
            if self._bucket.take() < 0:
                return  # flooding with junk: no answers to junk either
            log.warning("bad frame", code=exc.code, problem=exc.description)
            if exc.reply:
                await self._send(frames.call_error(exc.unique_id, exc.code, exc.description))
            return
        if not self._replayed(frame):
            left = self._bucket.take()
            if left < 0:
                await self._flood(frame, left)
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

    def _replayed(self, frame: frames.Frame) -> bool:
        """Not live traffic, so not rate limited: an offline queue being replayed (TransactionEvent,
        offline = true; up to OFFLINE_ALLOWANCE a session), or the answer to our own call."""
        if not isinstance(frame, Call):
            return bool(self._call_lock.locked())
        if not (
            frame.action == "TransactionEvent"
            and frame.payload.get("offline") is True
            and self._offline_allowance > 0
        ):
            return False
        self._offline_allowance -= 1
        return True

    async def _flood(self, frame: frames.Frame, left: float) -> None:
        if left < -self._bucket.capacity:
            log.warning("closing a flooding charger", limit=self._cfg.ocpp.max_messages_per_minute)
            await self.ws.close(1008, "message rate limit exceeded")
            return
        if not isinstance(frame, Call):
            return
        if frame.action == "BootNotification":
            # Never a CALLERROR to a boot: the charger waits the interval and boots again.
            await self._send(frames.call_result(frame.unique_id, self._pending()))
            return
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
                if frames.schema_exists(call.action, version=self.version):
                    raise FrameError("NotSupported", f"{call.action} is not sent by chargers")
                raise FrameError("NotImplemented", f"unknown action {call.action!r}")
            read = accept(call, self.adaptation.strict(self.id), self.version)
            if read.quirks:
                self.adaptation.quirks(self.id, read.quirks)
            response = handler(read.payload)
        except FrameError as exc:
            log.warning("call refused", action=call.action, code=exc.code, problem=exc.description)
            if call.action == "BootNotification":
                await self._send(frames.call_result(call.unique_id, self._rejected(exc)))
                return
            await self._send(frames.call_error(call.unique_id, exc.code, exc.description))
            return
        except Exception:
            log.exception("handler failed", action=call.action)
            if call.action == "BootNotification":
                await self._send(frames.call_result(call.unique_id, self._pending()))
                return
            await self._send(frames.call_error(call.unique_id, "InternalError", "handler failed"))
            return
        if self.check_answers:
            problem = frames.schema_problem(frames.CALLRESULT, call.action, response, self.version)
            if problem is not None:
                log.error("answer breaks its schema; not sent", action=call.action, problem=problem)
                await self._send(frames.call_error(call.unique_id, "InternalError", problem))
                return
        await self._send(frames.call_result(call.unique_id, response))
        after = self._after.get(call.action)
        if after is not None:
            after(read.payload)

    def _pending(self) -> Payload:
        return boot_answers.pending(self._clock.now())

    def _rejected(self, exc: FrameError) -> Payload:
        return boot_answers.rejected(self._clock.now(), exc)

    def v2x(self, evse_id: int) -> bool:
        """Whether the car at this EVSE may discharge as far as the protocol says (2.0.1 says
        nothing: configuration and the gate decide)."""
        return True

    def emit(self, event: ChargerEvent) -> bool:
        """Hand an event to the store; False when it could not be stored (kept in memory)."""
        return self._server.sink(event)

    def _emit_stored(self, events: Sequence[ChargerEvent], action: str) -> None:
        """Emit every event; if any is not stored, the charger must not be told it was received:
        CALLERROR InternalError, and it keeps the message and sends it again (OCPP 2.0.1 E04)."""
        stored = [self._emit(e) for e in events]
        if not all(stored):
            raise FrameError(
                "InternalError",
                f"{action} not stored: the gateway cannot write its state; send it again",
            )

    _emit = emit

    def spawn(self, name: str, coro: Any) -> asyncio.Task[None]:
        """A named background task owned by this session (cancelled when it ends)."""
        task: asyncio.Task[None] = asyncio.create_task(coro, name=f"csms:{self.id}:{name}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # ---------------------------------------------------------------- core messages

    def _boot(self, p: Payload) -> Payload:
        cs = p["chargingStation"]
        now = iso(self._clock.now())
        ccfg = self._cfg.charger(self.id)
        if ccfg is not None and not ccfg.enabled:
            # Taken out of service by the user: the charger retries after the interval.
            return {"currentTime": now, "interval": BOOT_RETRY_S * 10, "status": "Rejected"}
        if not self._server.ready():
            return self._pending()
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

    def _live_time(self, raw: Any) -> datetime:
        """A live message's timestamp, parsed strictly and checked against the gateway clock."""
        ts = parse_ts(raw)
        self.adaptation.timestamp(self.id, str(raw), ts)
        return ts

    def _status(self, p: Payload) -> Payload:
        self._emit(
            ConnectorStatusChanged(
                charger_id=self.id,
                evse_id=int(p["evseId"]),
                connector_id=int(p["connectorId"]),
                status=ConnectorStatus(p["connectorStatus"]),
                at=self._live_time(p["timestamp"]),
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
        live = not p.get("offline")
        if live:
            self._live_time(p["timestamp"])
        events = self.tx.translate(p)
        self._emit_stored(events, "TransactionEvent")
        self.tx.mark(p, events[0].evse_id)
        if live:
            for event in events:
                if isinstance(event, MeterSample):
                    self.adaptation.meter(event)
        answer: Payload = {}
        token = p.get("idToken")
        if token is not None:
            answer["idTokenInfo"] = {"status": self._token_status(token)}
        return answer

    def _meter_values(self, p: Payload) -> Payload:
        evse_id = int(p["evseId"])
        samples = [sample_from(self.id, evse_id, mv) for mv in p["meterValue"]]
        for mv in p["meterValue"]:
            self._live_time(mv["timestamp"])
        self._emit_stored(samples, "MeterValues")
        for sample in samples:
            self.adaptation.meter(sample)
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
        v2x = v2x_powers(needs.get("v2xChargingParameters"))
        max_w = v2x.get("maxChargePower", max_w)
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
                max_discharge_w=v2x.get("maxDischargePower"),
            )
        )
        return {"status": "Accepted"}

    # ---------------------------------------------------------------- authorisation

    def _token_status(self, token: Payload) -> str:
        """Accepted for a configured vehicle's token; any other token (NoAuthorization, an
        empty one, an unknown card) per [ocpp] authorize: "any" lets it charge as a guest."""
        value = str(token.get("idToken", ""))
        for v in self._cfg.vehicles:
            if value and (value in v.id_tokens or (v.evccid is not None and value == v.evccid)):
                return "Accepted"
        accepted = self._cfg.ocpp.authorize == "any"
        self.adaptation.unknown_token(self.id, value, str(token.get("type", "")), accepted)
        return "Accepted" if accepted else "Unknown"

    def _authorize(self, p: Payload) -> Payload:
        return {"idTokenInfo": {"status": self._token_status(p["idToken"])}}
