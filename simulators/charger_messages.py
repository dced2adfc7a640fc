"""What the simulated charger says: the payloads of its charger-to-CSMS messages.

Split from charger.py; every timestamp goes through the quirks (a skewed clock, local time
without an offset), so the CSMS sees the charger's idea of the time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ocpp.v201 import call

from simulators.battery import EvBattery
from simulators.charger21 import v2x_needs

if TYPE_CHECKING:
    from simulators.charger import SimulatedCharger


@dataclass
class EvseState:
    evse_id: int
    ev: EvBattery | None = None
    operative: bool = True
    tx_id: str | None = None
    tx_seq: int = 0
    tx_start: datetime | None = None
    id_token: str | None = None
    charging_state: str = "Idle"
    power_w: float = 0.0
    limit_w: float = 0.0
    import_wh: float = 0.0
    export_wh: float = 0.0


class Messages:
    def __init__(self, sim: SimulatedCharger) -> None:
        self._sim = sim

    def now(self) -> str:
        return self._sim.quirks.stamp(self._sim.clock.now())

    def boot(self, reason: str) -> call.BootNotification:
        s = self._sim
        return call.BootNotification(
            charging_station={
                "model": s.model,
                "vendor_name": s.vendor,
                "serial_number": s.serial,
                "firmware_version": "sim-1.0",
            },
            reason=reason,
        )

    def status(self, evse: EvseState) -> call.StatusNotification:
        if not evse.operative:
            status = "Unavailable"
        else:
            status = "Occupied" if evse.ev is not None else "Available"
        return call.StatusNotification(
            timestamp=self.now(),
            connector_status=status,
            evse_id=evse.evse_id,
            connector_id=1,
        )

    def tx_event(
        self,
        evse: EvseState,
        event_type: str,
        trigger: str,
        *,
        context: str | None = None,
        stopped_reason: str | None = None,
        id_token: str | None = None,
        remote_start_id: int | None = None,
    ) -> call.TransactionEvent:
        assert evse.tx_id is not None
        info: dict[str, Any] = {"transaction_id": evse.tx_id, "charging_state": evse.charging_state}
        if stopped_reason:
            info["stopped_reason"] = stopped_reason
        if remote_start_id is not None:
            info["remote_start_id"] = remote_start_id
        seq = evse.tx_seq
        evse.tx_seq += 1
        token = None
        if id_token is not None:
            kind = self._sim.quirks.token_type
            token = {"id_token": "" if kind == "NoAuthorization" else id_token, "type": kind}
        return call.TransactionEvent(
            event_type=event_type,
            timestamp=self.now(),
            trigger_reason=trigger,
            seq_no=seq,
            transaction_info=info,
            meter_value=self.meter_value(evse, context) if context else None,
            evse={"id": evse.evse_id, "connector_id": 1},
            id_token=token,
        )

    def new_transaction(self, evse: EvseState, id_token: str) -> None:
        evse.tx_id = uuid.uuid4().hex
        evse.tx_seq = 0
        evse.tx_start = self._sim.clock.now()
        evse.id_token = id_token
        evse.charging_state = "EVConnected"

    def charging_needs(
        self, evse: EvseState, departure: datetime | None, energy_request_wh: float | None
    ) -> call.NotifyEVChargingNeeds:
        ev = evse.ev
        assert ev is not None
        if energy_request_wh is None:
            energy_request_wh = max(0.0, (100.0 - ev.soc_percent) / 100.0 * ev.capacity_kwh * 1000)
        params: dict[str, Any] = {
            "ev_max_current": int(ev.max_charge_w / 400),
            "ev_max_voltage": 450,
            "energy_amount": int(energy_request_wh),
            "ev_max_power": int(ev.max_charge_w),
            "state_of_charge": round(ev.soc_percent),
            "ev_energy_capacity": int(ev.capacity_kwh * 1000),
            "full_soc": 100,
            "bulk_soc": int(ev.taper_start_percent),
        }
        needs: dict[str, Any] = {
            "requested_energy_transfer": "DC",
            "dc_charging_parameters": params,
        }
        if departure is not None:
            needs["departure_time"] = self._sim.quirks.stamp(departure)
        if self._sim.ocpp_version == "2.1":
            needs = v2x_needs(self._sim, evse, needs)
        return call.NotifyEVChargingNeeds(charging_needs=needs, evse_id=evse.evse_id)

    def meter_value(self, evse: EvseState, context: str) -> list[dict[str, Any]]:
        s = self._sim
        wanted = {
            m.strip() for m in s.device.value("SampledDataCtrlr", "TxUpdatedMeasurands").split(",")
        }
        p = evse.power_w
        v = s.grid_voltage
        values: list[dict[str, Any]] = []

        def add(measurand: str, value: float, unit: str, **extra: str) -> None:
            if measurand in wanted:
                values.append(
                    {
                        "value": round(value, 2),
                        "context": context,
                        "measurand": measurand,
                        "unit_of_measure": {"unit": unit},
                        **extra,
                    }
                )

        if s.report_soc and evse.ev is not None:
            add("SoC", evse.ev.soc_percent, "Percent", location="EV")
        add("Power.Active.Import", max(p, 0.0), "W")
        add("Power.Active.Export", max(-p, 0.0), "W")
        add("Energy.Active.Import.Register", evse.import_wh, "Wh")
        add("Energy.Active.Export.Register", evse.export_wh, "Wh")
        phases = s.quirks.supply_phases
        if s.dc:
            add("Voltage", v, "V")
        else:
            for phase in ("L1-N", "L2-N", "L3-N")[:phases]:
                add("Voltage", v, "V", phase=phase)
        add("Current.Import", max(p, 0.0) / (phases * v) if v > 0 else 0.0, "A")
        if not values:  # MeterValueType needs at least one sample
            values.append({"value": round(evse.import_wh, 2), "context": context})
        return [{"timestamp": self.now(), "sampled_value": values}]
