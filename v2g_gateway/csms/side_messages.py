"""The charger-to-CSMS messages around the core: reports, limits, events, certificates, acks.

Split from session.py so the session keeps the wire and the core messages (boot, status,
transactions, meter values); these handlers only read a payload and emit what it says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from v2g_gateway.csms.reports import capabilities
from v2g_gateway.model import GRID_HINT, ChargerCapability

if TYPE_CHECKING:
    from v2g_gateway.csms.session import Session

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


class SideMessages:
    def __init__(self, session: Session) -> None:
        self._s = session
        self._adapt = session.adaptation
        self._external_timer: asyncio.Task[None] | None = None

    def handlers(self) -> dict[str, Handler]:
        return {
            "NotifyEVChargingSchedule": self._ev_schedule,
            "NotifyChargingLimit": self._charging_limit,
            "ClearedChargingLimit": self._cleared_limit,
            "ReportChargingProfiles": self._report_profiles,
            "NotifyReport": self._notify_report,
            "NotifyEvent": self._notify_event,
            "SecurityEventNotification": self._security_event,
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

    def _now(self) -> datetime:
        return self._s.clock.now()

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
        source = str(limit["chargingLimitSource"])
        evse_id = p.get("evseId")
        self._s.emit(
            ChargerCapability(
                charger_id=self._s.id,
                at=self._now(),
                name="external_limit",
                value={
                    "source": source,
                    "grid_critical": limit.get("isGridCritical"),
                    "evse_id": evse_id,
                    "schedule": p.get("chargingSchedule"),
                },
                detail="NotifyChargingLimit",
            )
        )
        schedules = p.get("chargingSchedule")
        if schedules:
            nxt = self._adapt.external_limit(self._s.id, source, evse_id, list(schedules))
            self._follow_external_limit(nxt)
        return {}

    def _follow_external_limit(self, nxt: datetime | None) -> None:
        """Re-read the external cap when its schedule next changes (one timer a session)."""
        if self._external_timer is not None:
            self._external_timer.cancel()
        self._external_timer = None
        if nxt is None:
            return
        clock = self._s.clock

        async def wake() -> None:
            await clock.sleep(max(0.0, (nxt - clock.now()).total_seconds()))
            self._external_timer = None
            again = self._adapt.refresh_external(self._s.id, "schedule period changed")
            self._follow_external_limit(again)

        self._external_timer = self._s.spawn("external-limit", wake())

    def _cleared_limit(self, p: Payload) -> Payload:
        self._s.emit(
            ChargerCapability(
                charger_id=self._s.id,
                at=self._now(),
                name="external_limit",
                value=None,
                detail=f"cleared by {p['chargingLimitSource']}",
            )
        )
        self._adapt.cleared_limit(self._s.id, str(p["chargingLimitSource"]), p.get("evseId"))
        return {}

    def _report_profiles(self, p: Payload) -> Payload:
        self._s.commands.record_reported_profiles(self._s.id, p)
        return {}

    def _notify_report(self, p: Payload) -> Payload:
        for name, value, detail in capabilities(p.get("reportData", ())):
            self._adapt.learn(self._s.id, name, value, detail)
        self._adapt.facts(self._s.id).report_part(p.get("requestId"), bool(p.get("tbc")))
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
                self._s.emit(
                    ChargerCapability(
                        self._s.id,
                        self._now(),
                        GRID_HINT,
                        hint,
                        f"{ev['component']['name']}.{ev['variable']['name']}",
                    )
                )
        return {}

    def _security_event(self, p: Payload) -> Payload:
        log.warning("charger security event", type=p["type"], info=p.get("techInfo"))
        return {}

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
