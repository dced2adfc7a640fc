"""The simulated charger's OCPP session: the CSMS-to-charger calls, handed to the charger.

Split from charger.py so the charger's state and physics stay apart from the wire handlers.
Outgoing CALLs pass through the quirks (quirks.py) after the ocpp library has checked them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from websockets.asyncio.client import ClientConnection

if TYPE_CHECKING:
    from simulators.charger import SimulatedCharger


class Session(ChargePoint):  # type: ignore[misc]
    """One websocket session; the charger's state outlives it."""

    def __init__(self, sim: SimulatedCharger, ws: ClientConnection) -> None:
        super().__init__(sim.charger_id, ws, response_timeout=sim.response_timeout_s)
        self.sim = sim
        self.connection = ws

    async def _send(self, message: str) -> None:
        q = self.sim.quirks
        if q.mangles:
            frame = json.loads(message)
            if frame[0] == 2:
                frame[3] = q.mangle(frame[2], frame[3])
                message = json.dumps(frame)
        await self.connection.send(message)

    @on("SetChargingProfile")  # type: ignore[untyped-decorator]
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        return self.sim.book.set(evse_id, snake_to_camel_case(charging_profile))

    @on("ClearChargingProfile")  # type: ignore[untyped-decorator]
    def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        return self.sim.book.clear(charging_profile_id, charging_profile_criteria)

    @on("GetChargingProfiles")  # type: ignore[untyped-decorator]
    def on_get_charging_profiles(
        self,
        request_id: int,
        charging_profile: dict[str, Any],
        evse_id: int | None = None,
        **_: Any,
    ) -> call_result.GetChargingProfiles:
        found = self.sim.book.matching(charging_profile, evse_id)
        return call_result.GetChargingProfiles(status="Accepted" if found else "NoProfiles")

    @after("GetChargingProfiles")  # type: ignore[untyped-decorator]
    def after_get_charging_profiles(
        self,
        request_id: int,
        charging_profile: dict[str, Any],
        evse_id: int | None = None,
        **_: Any,
    ) -> None:
        book = self.sim.book
        by_evse: dict[tuple[int, str], list[dict[str, Any]]] = {}
        for p in book.matching(charging_profile, evse_id):
            by_evse.setdefault((p.evse_id, book.source(p)), []).append(dict(p.raw))
        for n, ((evse, source), raws) in enumerate(sorted(by_evse.items())):
            self.sim.send(
                call.ReportChargingProfiles(
                    request_id=request_id,
                    charging_limit_source=source,
                    evse_id=evse,
                    charging_profile=raws,
                    tbc=n < len(by_evse) - 1,
                )
            )

    @on("GetCompositeSchedule")  # type: ignore[untyped-decorator]
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        return self.sim.book.composite(duration, evse_id, charging_rate_unit)

    @on("GetVariables")  # type: ignore[untyped-decorator]
    def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], **_: Any
    ) -> call_result.GetVariables:
        results = []
        for item in get_variable_data:
            status, value = self.sim.device.get(item["component"]["name"], item["variable"]["name"])
            result: dict[str, Any] = {
                "attribute_status": status,
                "component": item["component"],
                "variable": item["variable"],
            }
            if value is not None:
                result["attribute_value"] = value
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on("SetVariables")  # type: ignore[untyped-decorator]
    def on_set_variables(
        self, set_variable_data: list[dict[str, Any]], **_: Any
    ) -> call_result.SetVariables:
        results = [
            {
                "attribute_status": self.sim.device.set(
                    item["component"]["name"], item["variable"]["name"], item["attribute_value"]
                ),
                "component": item["component"],
                "variable": item["variable"],
            }
            for item in set_variable_data
        ]
        return call_result.SetVariables(set_variable_result=results)

    @on("GetBaseReport")  # type: ignore[untyped-decorator]
    def on_get_base_report(
        self, request_id: int, report_base: str, **_: Any
    ) -> call_result.GetBaseReport:
        return call_result.GetBaseReport(status="Accepted")

    @after("GetBaseReport")  # type: ignore[untyped-decorator]
    def after_get_base_report(self, request_id: int, report_base: str, **_: Any) -> None:
        self.sim.send(
            call.NotifyReport(
                request_id=request_id,
                generated_at=self.sim.messages.now(),
                seq_no=0,
                report_data=self.sim.device.report(),
                tbc=False,
            )
        )

    @on("TriggerMessage")  # type: ignore[untyped-decorator]
    def on_trigger_message(
        self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        supported = requested_message in (
            "BootNotification",
            "Heartbeat",
            "StatusNotification",
            "MeterValues",
            "TransactionEvent",
        )
        return call_result.TriggerMessage(status="Accepted" if supported else "NotImplemented")

    @after("TriggerMessage")  # type: ignore[untyped-decorator]
    def after_trigger_message(
        self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> None:
        self._trigger(requested_message, evse)

    @on("RequestStartTransaction")  # type: ignore[untyped-decorator]
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.RequestStartTransaction:
        result = self._request_start(id_token["id_token"], remote_start_id, evse_id)
        if result.status == "Accepted" and charging_profile is not None:
            raw = snake_to_camel_case(charging_profile)
            raw["transactionId"] = result.transaction_id
            target = evse_id or next(
                e.evse_id
                for e in self.sim.evse_states().values()
                if e.tx_id == result.transaction_id
            )
            self.sim.book.set(target, raw)
        return result

    @on("RequestStopTransaction")  # type: ignore[untyped-decorator]
    def on_request_stop_transaction(
        self, transaction_id: str, **_: Any
    ) -> call_result.RequestStopTransaction:
        for evse in self.sim.evse_states().values():
            if evse.tx_id == transaction_id:
                self.sim.end_transaction(evse, "RemoteStop", "Remote")
                return call_result.RequestStopTransaction(status="Accepted")
        return call_result.RequestStopTransaction(status="Rejected")

    @on("Reset")  # type: ignore[untyped-decorator]
    def on_reset(self, type: str, evse_id: int | None = None, **_: Any) -> call_result.Reset:
        return call_result.Reset(status="Accepted")

    @after("Reset")  # type: ignore[untyped-decorator]
    async def after_reset(self, type: str, evse_id: int | None = None, **_: Any) -> None:
        await self.sim.reset()

    @on("ChangeAvailability")  # type: ignore[untyped-decorator]
    def on_change_availability(
        self, operational_status: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> call_result.ChangeAvailability:
        evses = self.sim.evse_states()
        if evse and evse.get("id") not in (0, *evses):
            return call_result.ChangeAvailability(status="Rejected")
        targets = [evses[evse["id"]]] if evse and evse.get("id") in evses else list(evses.values())
        for e in targets:
            e.operative = operational_status == "Operative"
            self.sim.send(self.sim.messages.status(e))
        return call_result.ChangeAvailability(status="Accepted")

    # ---------------------------------------------------------------- helpers

    def _request_start(
        self, id_token: str, remote_start_id: int, evse_id: int | None
    ) -> call_result.RequestStartTransaction:
        evses = self.sim.evse_states()
        if evse_id is not None:
            evse = evses.get(evse_id)
        else:
            evse = next((e for e in evses.values() if e.ev is not None), None)
        if evse is None or evse.ev is None or not evse.operative:
            return call_result.RequestStartTransaction(
                status="Rejected", status_info={"reason_code": "NoEV"}
            )
        if evse.tx_id is None:
            self.sim.start_transaction(evse, id_token, "RemoteStart", remote_start_id)
        else:
            self.sim.send(
                self.sim.messages.tx_event(
                    evse,
                    "Updated",
                    "RemoteStart",
                    id_token=id_token,
                    remote_start_id=remote_start_id,
                )
            )
        return call_result.RequestStartTransaction(status="Accepted", transaction_id=evse.tx_id)

    def _trigger(self, requested: str, evse: dict[str, Any] | None) -> None:
        sim, msg = self.sim, self.sim.messages
        evses = sim.evse_states()
        ids = [evse["id"]] if evse and evse.get("id") in evses else list(evses)
        if requested == "BootNotification":
            sim.send(msg.boot("Triggered"))
        elif requested == "Heartbeat":
            sim.send(call.Heartbeat())
        elif requested == "StatusNotification":
            for i in ids:
                sim.send(msg.status(evses[i]))
        elif requested == "MeterValues":
            for i in ids:
                sim.send(
                    call.MeterValues(evse_id=i, meter_value=msg.meter_value(evses[i], "Trigger"))
                )
        elif requested == "TransactionEvent":
            for i in ids:
                e = evses[i]
                if e.tx_id is not None:
                    sim.send(msg.tx_event(e, "Updated", "Trigger", context="Trigger"))
