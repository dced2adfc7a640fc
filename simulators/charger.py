"""A bidirectional OCPP 2.0.1 charging station with EVs attached, driven by an injected clock.

It behaves like the real chargers the gateway meets: it obeys the composite schedule of the
profiles it holds (negative limits discharge the car), drops them when they expire so a dead CSMS
cannot leave a car discharging, may refuse discharge outright, reconnects with jittered backoff
and replays TransactionEvents it could not send (offline=true). Every frame is schema-checked by
the ocpp library in both directions; `quirks` (quirks.py) turns on field firmware's habits.
Messages, profiles and physics live in charger_messages.py, charger_profiles.py and
charger_physics.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
from datetime import datetime
from typing import Any, Literal

import structlog
from ocpp.v201 import call, call_result

from simulators.battery import EvBattery
from simulators.charger21 import VERSIONS
from simulators.charger_link import MAX_OFFLINE_QUEUE, Link
from simulators.charger_messages import EvseState, Messages
from simulators.charger_physics import Physics
from simulators.charger_profiles import ProfileBook
from simulators.composite import InstalledProfile
from simulators.device_model import DeviceModel, default_device_model
from simulators.errors import SimulatorError
from simulators.quirks import Quirks
from simulators.timefmt import iso
from v2g_gateway.clock import Clock

DischargeMode = Literal["accept", "reject", "not_implemented"]
__all__ = ["MAX_OFFLINE_QUEUE", "DischargeMode", "SimulatedCharger"]
log = structlog.get_logger("simulators.charger")


class SimulatedCharger:
    """One charging station; `run()` keeps it connected until cancelled."""

    def __init__(
        self,
        url: str,
        charger_id: str,
        *,
        password: str | None,
        clock: Clock,
        evse_count: int = 1,
        dc: bool = False,
        report_soc: bool = True,
        discharge: DischargeMode = "accept",
        vendor: str = "SimuCharge",
        model: str = "BiDi-11",
        max_charge_w: float = 11000,
        max_discharge_w: float = 10000,
        meter_interval_s: int = 60,
        step_s: float = 10,
        ssl: ssl_module.SSLContext | None = None,
        nominal_voltage: float = 230.0,
        heartbeat_interval_s: int = 300,
        response_timeout_s: float = 30.0,
        reconnect_min_s: float = 0.2,
        reconnect_max_s: float = 30.0,
        serial: str | None = None,
        validate_frames: bool = True,
        quirks: Quirks | None = None,
        ocpp_version: str = "2.0.1",
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise SimulatorError(f"charger url must start with ws:// or wss://, got {url!r}")
        if discharge not in ("accept", "reject", "not_implemented"):
            raise SimulatorError(
                f"discharge must be accept, reject or not_implemented: {discharge!r}"
            )
        if ocpp_version not in VERSIONS:
            raise SimulatorError(f"ocpp_version must be one of {VERSIONS}: {ocpp_version!r}")
        if evse_count < 1 or step_s <= 0 or meter_interval_s <= 0:
            raise SimulatorError("evse_count, step_s and meter_interval_s must be positive")
        self.url = f"{url.rstrip('/')}/{charger_id}"
        self.charger_id = charger_id
        self.password = password
        self.clock = clock
        self.dc = dc
        self.ocpp_version = ocpp_version  # 2.1: a bidirectional BPT charger (charger21.py)
        self.allowed_energy_transfer: dict[str, list[str]] = {}  # per transaction (2.1)
        self.report_soc = report_soc
        self.discharge: DischargeMode = discharge
        self.vendor = vendor
        self.model = model
        self.serial = serial or f"SIM-{charger_id}"
        self.max_charge_w = float(max_charge_w)
        self.max_discharge_w = float(max_discharge_w)
        self.step_s = float(step_s)
        self.nominal_voltage = float(nominal_voltage)
        self.response_timeout_s = response_timeout_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.quirks = quirks or Quirks()
        self.ssl = ssl
        self.device: DeviceModel = default_device_model(
            vendor=vendor,
            model=model,
            evse_count=evse_count,
            dc=dc,
            discharge=discharge,
            max_charge_w=max_charge_w,
            max_discharge_w=max_discharge_w,
            meter_interval_s=meter_interval_s,
            heartbeat_interval_s=heartbeat_interval_s,
            report_soc=report_soc,
            quirks=self.quirks,
        )
        # The ocpp library's own jsonschema check of what this charger sends and receives: worth
        # it in tests, but with a fleet of hundreds in one process it is the bottleneck.
        self.validate_frames = validate_frames
        self._evses = {i: EvseState(i) for i in range(1, evse_count + 1)}
        self._voltage = self.nominal_voltage
        self._physics_at = clock.now()
        self._integrated_to: datetime | None = None
        self._physics_changed = asyncio.Condition()
        self.log = log.bind(charger_id=charger_id)
        self.link = Link(self)
        # The link's events and counters, under the names tests and tools use.
        self.connected = self.link.connected
        self.booted = self.link.booted
        self.disconnected = self.link.disconnected
        self.messages = Messages(self)
        self.physics = Physics(self)
        self.book = ProfileBook(self)

    # ---------------------------------------------------------------- public API

    @property
    def profiles(self) -> list[dict[str, Any]]:
        """Every SetChargingProfile request received (camelCase)."""
        return self.book.requests

    @property
    def installed(self) -> list[InstalledProfile]:
        """Profiles in force or pending."""
        return self.book.installed

    @property
    def sent_messages(self) -> int:
        return self.link.sent_messages

    @property
    def latencies_s(self) -> list[float]:
        return self.link.latencies_s

    @property
    def connects(self) -> int:
        return self.link.connects

    def on_composite(
        self, duration: int, evse_id: int, unit: str | None = "W"
    ) -> call_result.GetCompositeSchedule:
        """The composite schedule as GetCompositeSchedule answers it (for tests)."""
        return self.book.composite(duration, evse_id, unit)

    def evse_states(self) -> dict[int, EvseState]:
        return self._evses

    def ev(self, evse_id: int = 1) -> EvBattery | None:
        return self.evse(evse_id).ev

    def power_w(self, evse_id: int = 1) -> float:
        """Power at the meter now: positive charging, negative discharging."""
        return self.evse(evse_id).power_w

    def meter_wh(self, evse_id: int = 1) -> tuple[float, float]:
        """The EVSE's energy registers (import, export) in Wh, as its MeterValues report them."""
        evse = self.evse(evse_id)
        return evse.import_wh, evse.export_wh

    def transaction_id(self, evse_id: int = 1) -> str | None:
        return self.evse(evse_id).tx_id

    @property
    def grid_voltage(self) -> float:
        return self._voltage

    def set_grid_voltage(self, volts: float) -> None:
        """0 = grid outage: no charging from the grid, discharge to the house continues."""
        if volts < 0:
            raise SimulatorError(f"grid voltage must be >= 0, got {volts}")
        changed = volts != self._voltage
        self._voltage = float(volts)
        if changed:
            self.send_meter_values("Trigger", "AbnormalCondition" if volts == 0 else "Trigger")

    async def plug_in(
        self,
        ev: EvBattery,
        evse_id: int = 1,
        id_token: str = "car-token",
        departure: datetime | None = None,
        energy_request_wh: float | None = None,
    ) -> str:
        """Connect an EV: Occupied, a transaction starts; returns its transaction id. A token
        the CSMS does not accept ends the transaction again (Deauthorized), as chargers do."""
        evse = self.evse(evse_id)
        if evse.ev is not None:
            raise SimulatorError(f"{self.charger_id}: EVSE {evse_id} already has an EV plugged in")
        evse.ev = ev
        evse.power_w = 0.0
        done = [self.send(self.messages.status(evse))]
        started = self.start_transaction(evse, id_token, "CablePluggedIn")
        done.append(started)
        if self.dc or self.ocpp_version == "2.1":
            done.append(self.send(self.messages.charging_needs(evse, departure, energy_request_wh)))
        await asyncio.gather(*done)
        tx = evse.tx_id
        assert tx is not None
        answer = started.result()
        info = getattr(answer, "id_token_info", None) or {}
        if info.get("status", "Accepted") != "Accepted":
            self.log.info("sim_token_refused", status=info.get("status"))
            await self.end_transaction(evse, "Deauthorized", "DeAuthorized")
        return tx

    async def plug_out(self, evse_id: int = 1) -> None:
        """Disconnect the EV: the transaction ends (EVDisconnected), the EVSE is Available."""
        evse = self.evse(evse_id)
        if evse.ev is None:
            raise SimulatorError(f"{self.charger_id}: EVSE {evse_id} has no EV plugged in")
        done = []
        if evse.tx_id is not None:
            done.append(self.end_transaction(evse, "EVCommunicationLost", "EVDisconnected"))
        evse.ev = None
        evse.power_w = 0.0
        done.append(self.send(self.messages.status(evse)))
        await asyncio.gather(*done)

    async def settled(self, at: datetime | None = None) -> None:
        """Wait until the physics has integrated up to `at` (default: the clock's now)."""
        target = at or self.clock.now()
        async with self._physics_changed:
            await self._physics_changed.wait_for(lambda: self._physics_at >= target)

    async def link_down(self) -> None:
        """The network is gone (cable pulled): hang up, stay away until link_up()."""
        await self.link.down()

    def link_up(self) -> None:
        self.link.up()

    def notify_charging_limit(
        self, limit: float, *, unit: str = "W", source: str = "EMS", duration_s: int | None = None
    ) -> asyncio.Future[Any]:
        """A local energy manager limits the station: obeyed, and told to the CSMS."""
        schedule: dict[str, Any] = {
            "id": 9001,
            "startSchedule": self.messages.now(),
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        }
        if duration_s is not None:
            schedule["duration"] = duration_s
        self.book.external(
            {
                "id": 9001,
                "stackLevel": 0,
                "chargingProfilePurpose": "ChargingStationExternalConstraints",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [{**schedule, "startSchedule": iso(self.clock.now())}],
            }
        )
        snake = {
            "id": 9001,
            "start_schedule": schedule["startSchedule"],
            "charging_rate_unit": unit,
            "charging_schedule_period": [{"start_period": 0, "limit": limit}],
        }
        if duration_s is not None:
            snake["duration"] = duration_s
        return self.send(
            call.NotifyChargingLimit(
                charging_limit={"charging_limit_source": source, "is_grid_critical": False},
                charging_schedule=[snake],
            )
        )

    async def run(self) -> None:
        """Stay connected (with backoff) and run the physics until cancelled."""
        physics = asyncio.create_task(self._physics_loop(), name=f"sim-physics-{self.charger_id}")
        try:
            await self.link.run(physics)
        finally:
            physics.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await physics

    async def reset(self, *, power_cut: bool = False) -> None:
        """Reboot. With `power_cut` the charger forgets its transactions and profiles, as after
        a power cut, and starts a new transaction for a car still plugged in once it is back."""
        if power_cut:
            self.book.installed = []
            for evse in self._evses.values():
                evse.tx_id = None
                evse.tx_start = None
                evse.power_w = 0.0
        await self.link.reset(power_cut=power_cut)

    def send(self, payload: Any) -> asyncio.Future[Any]:
        """Queue a message; its future resolves with the answer, or None if dropped/held."""
        return self.link.send(payload)

    _emit = send  # the name charger_session.py used

    # ---------------------------------------------------------------- transactions

    def evse(self, evse_id: int) -> EvseState:
        try:
            return self._evses[evse_id]
        except KeyError:
            raise SimulatorError(
                f"{self.charger_id}: no EVSE {evse_id} (has {sorted(self._evses)})"
            ) from None

    def start_transaction(
        self, evse: EvseState, id_token: str, trigger: str, remote_start_id: int | None = None
    ) -> asyncio.Future[Any]:
        self.messages.new_transaction(evse, id_token)
        return self.send(
            self.messages.tx_event(
                evse,
                "Started",
                trigger,
                context="Transaction.Begin",
                id_token=id_token,
                remote_start_id=remote_start_id,
            )
        )

    def end_transaction(self, evse: EvseState, trigger: str, reason: str) -> asyncio.Future[Any]:
        evse.power_w = 0.0
        evse.charging_state = (
            "Idle" if evse.ev is None or reason == "EVDisconnected" else "EVConnected"
        )
        done = self.send(
            self.messages.tx_event(
                evse, "Ended", trigger, context="Transaction.End", stopped_reason=reason
            )
        )
        self.book.transaction_ended(evse.evse_id, evse.tx_id)
        evse.tx_id = None
        evse.tx_start = None
        return done

    def send_meter_values(self, context: str, trigger: str) -> None:
        for evse in self._evses.values():
            if evse.tx_id is not None:
                self.send(self.messages.tx_event(evse, "Updated", trigger, context=context))
            else:
                self.send(
                    call.MeterValues(
                        evse_id=evse.evse_id, meter_value=self.messages.meter_value(evse, context)
                    )
                )

    # ---------------------------------------------------------------- physics

    def catch_up(self) -> None:
        """Run the physics up to now under the profiles in force until now: called before a
        profile changes, so a new one never rewrites the past (a real charger lives in time)."""
        now = self.clock.now()
        if self._integrated_to is not None and now > self._integrated_to:
            self.physics.integrate(self._integrated_to, now)
        self._integrated_to = now if self._integrated_to is None else max(now, self._integrated_to)

    async def _physics_loop(self) -> None:
        self._integrated_to = self.clock.now()
        next_meter = self._integrated_to.timestamp() + self._meter_interval()
        while True:
            await self.clock.sleep(self.step_s)
            self.catch_up()
            now = self.clock.now()
            self.book.prune()
            if now.timestamp() >= next_meter:
                self.send_meter_values("Sample.Periodic", "MeterValuePeriodic")
                interval = self._meter_interval()
                while next_meter <= now.timestamp():
                    next_meter += interval
            async with self._physics_changed:
                self._physics_at = now
                self._physics_changed.notify_all()

    def _meter_interval(self) -> int:
        return max(1, int(self.device.value("SampledDataCtrlr", "TxUpdatedInterval")))
