"""A small OCPP 2.0.1 device model: the variables a CSMS reads to learn what a charger can do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulators.quirks import Quirks

ALL_MEASURANDS = (
    "SoC",
    "Power.Active.Import",
    "Power.Active.Export",
    "Energy.Active.Import.Register",
    "Energy.Active.Export.Register",
    "Voltage",
    "Current.Import",
)


@dataclass
class Variable:
    value: str
    mutability: str = "ReadOnly"  # ReadOnly | ReadWrite
    data_type: str = "string"  # string | integer | decimal | boolean | MemberList
    values_list: tuple[str, ...] | None = None  # MemberList: the members it supports
    report_values: bool = True  # valuesList given in reports


class DeviceModel:
    """(component, variable) -> Variable; SetVariables checks type and mutability."""

    def __init__(self, variables: dict[tuple[str, str], Variable]) -> None:
        self._vars = variables

    def value(self, component: str, variable: str) -> str:
        return self._vars[(component, variable)].value

    def get(self, component: str, variable: str) -> tuple[str, str | None]:
        """(attributeStatus, value) as GetVariables answers."""
        if not any(c == component for c, _ in self._vars):
            return "UnknownComponent", None
        var = self._vars.get((component, variable))
        if var is None:
            return "UnknownVariable", None
        return "Accepted", var.value

    def set(self, component: str, variable: str, value: str) -> str:
        """attributeStatus as SetVariables answers."""
        status, _ = self.get(component, variable)
        if status != "Accepted":
            return status
        var = self._vars[(component, variable)]
        if var.mutability != "ReadWrite" or not _valid(var.data_type, value, var.values_list):
            return "Rejected"
        var.value = value
        return "Accepted"

    def report(self) -> list[dict[str, Any]]:
        """ReportDataType entries (snake_case, as the ocpp library sends them)."""
        out = []
        for (c, v), var in self._vars.items():
            chars: dict[str, Any] = {"data_type": var.data_type, "supports_monitoring": False}
            if var.values_list is not None and var.report_values:
                chars["values_list"] = ",".join(var.values_list)
            out.append(
                {
                    "component": {"name": c},
                    "variable": {"name": v},
                    "variable_attribute": [
                        {"type": "Actual", "value": var.value, "mutability": var.mutability}
                    ],
                    "variable_characteristics": chars,
                }
            )
        return out


def default_device_model(
    *,
    vendor: str,
    model: str,
    evse_count: int,
    dc: bool,
    discharge: str,
    max_charge_w: float,
    max_discharge_w: float,
    meter_interval_s: int,
    heartbeat_interval_s: int,
    report_soc: bool,
    quirks: Quirks | None = None,
) -> DeviceModel:
    q = quirks or Quirks()
    supported = tuple(q.measurands) if q.measurands is not None else ALL_MEASURANDS
    measurands = [m for m in supported if report_soc or m != "SoC"]
    rw = "ReadWrite"
    v = Variable

    def members() -> Variable:
        return Variable(
            ",".join(measurands),
            rw,
            "MemberList",
            values_list=tuple(measurands),
            report_values=q.report_values_list,
        )

    variables = {
        ("ChargingStation", "Model"): v(model),
        ("ChargingStation", "VendorName"): v(vendor),
        ("ChargingStation", "AvailabilityState"): v("Available"),
        ("EVSE", "Count"): v(str(evse_count), data_type="integer"),
        ("EVSE", "Power"): v(str(int(max_charge_w)), data_type="decimal"),
        ("OCPPCommCtrlr", "HeartbeatInterval"): v(str(heartbeat_interval_s), rw, "integer"),
        ("SampledDataCtrlr", "Enabled"): v("true", rw, "boolean"),
        ("SampledDataCtrlr", "TxUpdatedInterval"): v(str(meter_interval_s), rw, "integer"),
        ("ChargingStation", "SupplyPhases"): v(str(q.supply_phases), data_type="integer"),
        ("SampledDataCtrlr", "TxUpdatedMeasurands"): members(),
        ("SampledDataCtrlr", "TxEndedMeasurands"): members(),
        ("AlignedDataCtrlr", "Interval"): v(str(meter_interval_s), rw, "integer"),
        ("AlignedDataCtrlr", "Measurands"): members(),
        ("SmartChargingCtrlr", "Enabled"): v(
            "false" if q.smart_charging == "disabled" else "true", data_type="boolean"
        ),
        ("SmartChargingCtrlr", "RateUnit"): v(q.rate_unit, data_type="MemberList"),
        ("SmartChargingCtrlr", "PeriodsPerSchedule"): v("48", data_type="integer"),
        ("SmartChargingCtrlr", "ProfileStackLevel"): v(str(q.max_stack_level), data_type="integer"),
        ("SmartChargingCtrlr", "Entries"): v("0", data_type="integer"),
        ("ISO15118Ctrlr", "Enabled"): v("true" if dc else "false", data_type="boolean"),
        ("V2XChargingCtrlr", "Enabled"): v(
            "true" if discharge == "accept" else "false", data_type="boolean"
        ),
        ("V2XChargingCtrlr", "SupportedOperationModes"): v(
            "ChargingOnly,Idle,CentralSetpoint,LocalLoadBalancing", data_type="MemberList"
        ),
        ("V2XChargingCtrlr", "MaxDischargePower"): v(
            str(int(max_discharge_w)), data_type="decimal"
        ),
    }
    if q.smart_charging == "not_supported":
        variables = {k: val for k, val in variables.items() if k[0] != "SmartChargingCtrlr"}
    elif not q.report_rate_unit:
        del variables[("SmartChargingCtrlr", "RateUnit")]
    return DeviceModel(variables)


def _valid(data_type: str, value: str, members: tuple[str, ...] | None = None) -> bool:
    if data_type == "integer":
        return value.strip().lstrip("-").isdigit()
    if data_type == "decimal":
        try:
            float(value)
        except ValueError:
            return False
        return True
    if data_type == "boolean":
        return value in ("true", "false")
    if data_type == "MemberList":
        allowed = members if members is not None else ALL_MEASURANDS
        return all(m.strip() in allowed for m in value.split(",") if m.strip())
    return True
