"""The simulated charger speaking OCPP 2.1: a bidirectional (ISO 15118-20 BPT) charger.

What changes from 2.0.1 (the rest of the charger is shared):
- it connects with subprotocol `ocpp2.1`; the ocpp library checks every frame both ways against
  the 2.1 schemas, and answers are read with its v21 result classes;
- at plug-in it sends NotifyEVChargingNeeds with `requestedEnergyTransfer` AC_BPT / DC_BPT and
  the car's `v2xChargingParameters` (its powers and V2X energy requests), built as camelCase
  dicts (the library's snake-to-camel conversion would misname `evMinV2XEnergyRequest`);
- it obeys operation modes and setpoints (composite.py: Idle, ChargingOnly, CentralSetpoint);
- without the CSMS for longer than a profile's `maxOfflineDuration` it drops that profile (for
  good with `invalidAfterOfflineDuration`) and falls back to what is left (charge_profiles.py):
  without a profile it charges, it never goes on discharging on its own;
- NotifyAllowedEnergyTransfer is accepted and kept in `allowed_energy_transfer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp.routing import on
from ocpp.v21 import call_result as call_result21
from websockets.asyncio.client import ClientConnection

from simulators.charger_session import Session

if TYPE_CHECKING:
    from simulators.charger import SimulatedCharger
    from simulators.charger_messages import EvseState

VERSIONS = ("2.0.1", "2.1")


def subprotocol(version: str) -> str:
    return f"ocpp{version}"


class Session21(Session):
    _ocpp_version = "2.1"
    _call_result = call_result21

    def __init__(self, sim: SimulatedCharger, ws: ClientConnection) -> None:
        super().__init__(sim, ws)

    @on("NotifyAllowedEnergyTransfer")  # type: ignore[untyped-decorator]
    def on_notify_allowed_energy_transfer(
        self, transaction_id: str, allowed_energy_transfer: list[str], **_: Any
    ) -> Any:
        self.sim.allowed_energy_transfer[transaction_id] = list(allowed_energy_transfer)
        return call_result21.NotifyAllowedEnergyTransfer(status="Accepted")


def session_for(sim: SimulatedCharger, ws: ClientConnection) -> Session:
    return Session21(sim, ws) if sim.ocpp_version == "2.1" else Session(sim, ws)


def v2x_needs(sim: SimulatedCharger, evse: EvseState, needs: dict[str, Any]) -> dict[str, Any]:
    """The 2.1 chargingNeeds of a bidirectional car (keys already camelCase)."""
    ev = evse.ev
    assert ev is not None
    cap_wh = ev.capacity_kwh * 1000.0
    out = dict(needs)
    out["requested_energy_transfer"] = "DC_BPT" if sim.dc else "AC_BPT"
    out["available_energy_transfer"] = ["DC", "DC_BPT"] if sim.dc else ["AC_three_phase", "AC_BPT"]
    out["control_mode"] = "ScheduledControl"
    if not sim.dc:
        out.pop("dc_charging_parameters", None)
    out["v2x_charging_parameters"] = {
        "minChargePower": 0,
        "maxChargePower": int(min(ev.max_charge_w, sim.max_charge_w)),
        "minDischargePower": 0,
        "maxDischargePower": int(min(ev.max_discharge_w, sim.max_discharge_w)),
        "evTargetEnergyRequest": int((100.0 - ev.soc_percent) / 100.0 * cap_wh),
        # Negative: the car may give this much before it reaches its own minimum.
        "evMinV2XEnergyRequest": int((ev.min_soc_percent - ev.soc_percent) / 100.0 * cap_wh),
        "evMaxV2XEnergyRequest": int((100.0 - ev.soc_percent) / 100.0 * cap_wh),
    }
    return out
