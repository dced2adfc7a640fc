"""The simulated charger's physics: the limit in force, integrated into the EVs' batteries.

Split from charger.py. Quirks enter here: a charger that ignores its profiles (or charges when
told to discharge), and the minimum current below which a car on an A-only charger does not
charge at all.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from simulators.charger_messages import EvseState
from simulators.composite import EvseContext, limit_at

if TYPE_CHECKING:
    from simulators.charger import SimulatedCharger


class Physics:
    def __init__(self, sim: SimulatedCharger) -> None:
        self._sim = sim

    def context(self, evse_id: int) -> EvseContext:
        sim = self._sim
        phases = 1 if sim.dc else sim.quirks.supply_phases
        evse = sim.evse_states().get(evse_id)
        if evse is None:  # EVSE 0: the station as a whole
            n = len(sim.evse_states())
            return EvseContext(
                evse_id,
                sim.max_charge_w * n,
                sim.max_discharge_w * n,
                voltage=sim.nominal_voltage,
                phases=phases,
            )
        return EvseContext(
            evse_id=evse_id,
            max_charge_w=sim.max_charge_w,
            max_discharge_w=sim.max_discharge_w,
            transaction_id=evse.tx_id,
            transaction_start=evse.tx_start,
            voltage=sim.nominal_voltage,
            phases=phases,
        )

    def target_w(self, evse: EvseState, at: datetime) -> float:
        sim, q = self._sim, self._sim.quirks
        if evse.tx_id is None or evse.ev is None or not evse.operative:
            return 0.0
        limit = limit_at(sim.book.in_force(at), at, self.context(evse.evse_id))
        evse.limit_w = limit
        if q.ignore_profiles == "all" or (q.ignore_profiles == "discharge" and limit < 0):
            limit = sim.max_charge_w  # accepted, and ignored: the car charges flat out
        if not q.takes_watts and not sim.dc:
            floor_w = q.min_current_a * sim.nominal_voltage * q.supply_phases
            if 0 < abs(limit) < floor_w - 1e-6:
                limit = 0.0  # below the minimum current the car stops (IEC 61851)
        if sim.grid_voltage <= 0 and limit > 0:
            return 0.0  # nothing to charge from in an outage; V2H discharge goes on
        return limit

    def integrate(self, start: datetime, end: datetime) -> None:
        sim = self._sim
        t = start
        while t < end:
            dt = min(sim.step_s, (end - t).total_seconds())
            for evse in sim.evse_states().values():
                target = self.target_w(evse, t)
                p = evse.ev.step(target, dt) if evse.ev is not None and target else 0.0
                evse.power_w = p
                evse.import_wh += max(p, 0.0) * dt / 3600.0
                evse.export_wh += max(-p, 0.0) * dt / 3600.0
            t = t + timedelta(seconds=dt)
        for evse in sim.evse_states().values():
            self.track_state(evse)

    def track_state(self, evse: EvseState) -> None:
        if evse.tx_id is None:
            return
        if abs(evse.power_w) > 1.0:
            state = "Charging"
        elif evse.limit_w == 0 or not evse.operative:
            state = "SuspendedEVSE"
        else:
            state = "SuspendedEV"
        if state != evse.charging_state:
            evse.charging_state = state
            sim = self._sim
            sim.send(sim.messages.tx_event(evse, "Updated", "ChargingStateChanged"))
