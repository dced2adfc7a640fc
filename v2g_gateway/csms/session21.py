"""An OCPP 2.1 session: the 2.0.1 session's framing, stores and commands, with 2.1's schemas and
V2X messages, so dispatch does not care which version a charger speaks.

What differs from 2.0.1 (docs/chargers.md has the table):
- every frame both ways is checked against the official 2.1 schemas; an answer of ours that
  breaks its schema is never sent (a bug: CALLERROR InternalError instead);
- Authorize answers `allowedEnergyTransfer` (bidirectional modes only for a configured vehicle
  at a charger that may discharge); a transaction started by a V2G car's token without an
  Authorize gets the same by NotifyAllowedEnergyTransfer;
- NotifyEVChargingNeeds is read for `v2xChargingParameters` (the car's powers and V2X energy
  requests) and answered Accepted, or NoChargingProfile while the gateway has sent none yet;
- the 2.1 charger-to-CSMS messages a home charger may send are answered (most unused);
- SEND frames (message type 6, NotifyPeriodicEventStream) are read and dropped: they take no
  answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from websockets.asyncio.server import ServerConnection

from v2g_gateway.csms import frames, v2x
from v2g_gateway.csms.ratelimit import TokenBucket
from v2g_gateway.csms.session import Handler, Payload, Session
from v2g_gateway.csms.timestamps import parse_ts
from v2g_gateway.model import EvChargingNeeds

if TYPE_CHECKING:
    from v2g_gateway.csms.server import CsmsServer

log = structlog.get_logger(__name__)

SEND = 6  # OCPP 2.1 message type: a one-way message that takes no answer


class Session21(Session):
    version = frames.V21
    check_answers = True

    def __init__(
        self, charger_id: str, ws: ServerConnection, server: CsmsServer, bucket: TokenBucket
    ) -> None:
        super().__init__(charger_id, ws, server, bucket)
        # What was allowed at the last Authorize (its EVSE is not known yet), and per EVSE
        # once a transaction carries the token.
        self._authorized: list[str] | None = None
        self._allowed: dict[int, list[str]] = {}
        # What the car on each EVSE said in NotifyEVChargingNeeds (bidirectional or not).
        self._bidirectional: dict[int, bool] = {}
        self._handlers.update(
            {
                "NotifyEVChargingNeeds": self._ev_needs21,
                "Authorize": self._authorize21,
                "TransactionEvent": self._transaction21,
                **_acks(),
            }
        )

    async def route_message(self, raw_msg: str | bytes) -> None:
        if isinstance(raw_msg, str) and raw_msg.lstrip()[:3].replace(" ", "") in ("[6,", "[6"):
            if self._bucket.take() >= 0:
                log.debug("SEND frame dropped (periodic event stream)", frame=raw_msg[:256])
            return
        await super().route_message(raw_msg)

    # ---------------------------------------------------------------- authorisation

    def _authorize21(self, p: Payload) -> Payload:
        answer = self._authorize(p)
        vehicle = v2x.vehicle_of_token(self._cfg, self.id, str(p["idToken"].get("idToken", "")))
        self._authorized = v2x.allowed_modes(self._cfg, self.id, vehicle)
        if answer["idTokenInfo"]["status"] == "Accepted":
            answer["allowedEnergyTransfer"] = self._authorized
        return answer

    def _transaction21(self, p: Payload) -> Payload:
        answer = self._transaction(p)
        token = p.get("idToken")
        evse = p.get("evse")
        if not isinstance(evse, dict) or "id" not in evse:
            return answer
        evse_id = int(evse["id"])
        if p.get("eventType") == "Ended":
            self._allowed.pop(evse_id, None)
            self._bidirectional.pop(evse_id, None)
            return answer
        if token is None:
            return answer
        vehicle = v2x.vehicle_of_token(self._cfg, self.id, str(token.get("idToken", "")))
        modes = v2x.allowed_modes(self._cfg, self.id, vehicle)
        told = self._authorized == modes
        self._allowed[evse_id] = modes
        self._authorized = None
        if not told and any(m in v2x.BIDIRECTIONAL for m in modes):
            tx_id = str(p["transactionInfo"]["transactionId"])
            self.spawn("allowed-energy-transfer", self._notify_allowed(tx_id, modes))
        return answer

    async def _notify_allowed(self, transaction_id: str, modes: list[str]) -> None:
        payload = {"transactionId": transaction_id, "allowedEnergyTransfer": modes}
        result = await self.commands.notify_allowed_energy_transfer(self.id, payload)
        if not result.ok:
            log.info("NotifyAllowedEnergyTransfer not accepted", detail=result.detail)

    # ---------------------------------------------------------------- the car's needs

    def v2x(self, evse_id: int) -> bool:
        return self._bidirectional.get(evse_id, True)

    def _ev_needs21(self, p: Payload) -> Payload:
        needs = p["chargingNeeds"]
        evse_id = int(p["evseId"])
        ac = needs.get("acChargingParameters") or {}
        dc = needs.get("dcChargingParameters") or {}
        params = v2x.v2x_parameters(needs.get("v2xChargingParameters"))
        # Only powers the car states in W bound the plan (AC's evMaxCurrent is per phase, and
        # the phases in use are not said here).
        max_w: float | None = params.get("maxChargePower")
        if max_w is None and "evMaxPower" in dc:
            max_w = float(dc["evMaxPower"])
        energy = dc.get("energyAmount", ac.get("energyAmount"))
        if energy is None:
            energy = params.get("evTargetEnergyRequest")
        departure = needs.get("departureTime")
        allowed = self._allowed.get(evse_id, self._authorized)
        bidi = v2x.bidirectional(needs, allowed)
        self._bidirectional[evse_id] = bidi
        min_v2x = params.get("evMinV2XEnergyRequest")
        self._emit(
            EvChargingNeeds(
                charger_id=self.id,
                evse_id=evse_id,
                at=self._clock.now(),
                soc_percent=float(dc["stateOfCharge"]) if "stateOfCharge" in dc else None,
                capacity_wh=float(dc["evEnergyCapacity"]) if "evEnergyCapacity" in dc else None,
                departure_time=parse_ts(departure, "departureTime") if departure else None,
                energy_request_wh=float(energy) if energy is not None and energy >= 0 else None,
                max_charge_w=max_w,
                max_discharge_w=params.get("maxDischargePower") if bidi else 0.0,
                min_charge_w=params.get("minChargePower"),
                min_discharge_w=params.get("minDischargePower"),
                bidirectional=bidi,
                v2x_min_energy_wh=min_v2x if min_v2x is not None and min_v2x > 0 else None,
            )
        )
        log.info(
            "EV charging needs (2.1)",
            evse_id=evse_id,
            requested=needs.get("requestedEnergyTransfer"),
            control_mode=needs.get("controlMode"),
            bidirectional=bidi,
            **{k: v for k, v in params.items() if k.endswith("Power")},
        )
        if self.commands.last_profile(self.id, evse_id) is None:
            # The plan has sent this EVSE nothing yet: the charger goes on with what it has
            # (the profile follows as soon as dispatch runs on these needs).
            return {"status": "NoChargingProfile"}
        return {"status": "Accepted"}


def _ack(what: str) -> Handler:
    def handler(p: Payload) -> Payload:
        log.info(f"charger sent {what} (OCPP 2.1, unused)")
        return {}

    return handler


def _refuse(what: str, status: str = "Rejected") -> Handler:
    def handler(p: Payload) -> Payload:
        log.info(f"charger asked for {what} (OCPP 2.1, not offered)")
        answer: dict[str, Any] = {"status": status}
        if "vatNumber" in p:
            answer["vatNumber"] = p["vatNumber"]
        return answer

    return handler


def _acks() -> dict[str, Handler]:
    """The 2.1 charger-to-CSMS messages a home gateway answers without acting on them."""
    return {
        "NotifyPriorityCharging": _ack("priority charging"),
        "NotifyDERAlarm": _ack("a DER alarm"),
        "NotifyDERStartStop": _ack("a DER control start/stop"),
        "ReportDERControl": _ack("its DER controls"),
        "NotifySettlement": _ack("a payment settlement"),
        "BatterySwap": _ack("a battery swap"),
        "ClosePeriodicEventStream": _ack("the end of a periodic event stream"),
        "OpenPeriodicEventStream": _refuse("a periodic event stream"),
        "PullDynamicScheduleUpdate": _refuse("a dynamic schedule update"),
        "VatNumberValidation": _refuse("a VAT number validation"),
    }
