"""The simulated charger's OCPP session: the CSMS-to-charger calls, handed to the charger.

Split from charger.py so the charger's state and physics stay apart from the wire handlers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from websockets.asyncio.client import ClientConnection

from simulators.timefmt import iso

if TYPE_CHECKING:
    from simulators.charger import SimulatedCharger


class Session(ChargePoint):  # type: ignore[misc]
    """One websocket session; the charger's state outlives it."""

    def __init__(self, sim: SimulatedCharger, ws: ClientConnection) -> None:
        super().__init__(sim.charger_id, ws, response_timeout=sim.response_timeout_s)
        self.sim = sim
        self.connection = ws

    @on("SetChargingProfile")  # type: ignore[untyped-decorator]
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        return self.sim.on_set_profile(evse_id, snake_to_camel_case(charging_profile))

    @on("ClearChargingProfile")  # type: ignore[untyped-decorator]
    def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        return self.sim.on_clear_profile(charging_profile_id, charging_profile_criteria)

    @on("GetChargingProfiles")  # type: ignore[untyped-decorator]
    def on_get_charging_profiles(
        self,
        request_id: int,
        charging_profile: dict[str, Any],
        evse_id: int | None = None,
        **_: Any,
    ) -> call_result.GetChargingProfiles:
        found = self.sim.matching_profiles(charging_profile, evse_id)
        return call_result.GetChargingProfiles(status="Accepted" if found else "NoProfiles")

    @after("GetChargingProfiles")  # type: ignore[untyped-decorator]
    def after_get_charging_profiles(
        self,
        request_id: int,
        charging_profile: dict[str, Any],
        evse_id: int | None = None,
        **_: Any,
    ) -> None:
        found = self.sim.matching_profiles(charging_profile, evse_id)
        by_evse: dict[int, list[dict[str, Any]]] = {}
        for p in found:
            by_evse.setdefault(p.evse_id, []).append(dict(p.raw))
        for n, (evse, raws) in enumerate(sorted(by_evse.items())):
            self.sim._emit(
                call.ReportChargingProfiles(
                    request_id=request_id,
                    charging_limit_source="CSO",
                    evse_id=evse,
                    charging_profile=raws,
                    tbc=n < len(by_evse) - 1,
                )
            )

    @on("GetCompositeSchedule")  # type: ignore[untyped-decorator]
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        return self.sim.on_composite(duration, evse_id, charging_rate_unit)

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
        self.sim._emit(
            call.NotifyReport(
                request_id=request_id,
                generated_at=iso(self.sim.clock.now()),
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
        self.sim.on_trigger(requested_message, evse)

    @on("RequestStartTransaction")  # type: ignore[untyped-decorator]
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> call_result.RequestStartTransaction:
        result = self.sim.on_request_start(id_token["id_token"], remote_start_id, evse_id)
        if result.status == "Accepted" and charging_profile is not None:
            raw = snake_to_camel_case(charging_profile)
            raw["transactionId"] = result.transaction_id
            target = evse_id or next(
                e.evse_id for e in self.sim._evses.values() if e.tx_id == result.transaction_id
            )
            self.sim.on_set_profile(target, raw)
        return result

    @on("RequestStopTransaction")  # type: ignore[untyped-decorator]
    def on_request_stop_transaction(
        self, transaction_id: str, **_: Any
    ) -> call_result.RequestStopTransaction:
        return self.sim.on_request_stop(transaction_id)

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
        return self.sim.on_change_availability(operational_status, evse)
