"""A bidirectional OCPP 2.0.1 charging station with EVs attached, driven by an injected clock.

It behaves like the real chargers the gateway meets: it obeys the composite schedule of the
profiles it holds (negative limits discharge the car), drops them when they expire so a dead CSMS
cannot leave a car discharging, may refuse discharge outright, reconnects with jittered backoff
and replays TransactionEvents it could not send (offline=true). Every frame is schema-checked by
the ocpp library in both directions.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import ssl as ssl_module
import time
import uuid
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.exceptions import OCPPError
from ocpp.v201 import call, call_result
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

from simulators.battery import EvBattery
from simulators.charger_session import Session
from simulators.composite import (
    EvseContext,
    InstalledProfile,
    composite_schedule,
    expired,
    install,
    limit_at,
)
from simulators.device_model import DeviceModel, default_device_model
from simulators.errors import InvalidProfile, SimulatorError
from simulators.timefmt import iso
from v2g_gateway.clock import Clock

DischargeMode = Literal["accept", "reject", "not_implemented"]
MAX_OFFLINE_QUEUE = 2000
log = structlog.get_logger("simulators.charger")


@dataclass
class _Evse:
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


@dataclass
class _Out:
    payload: Any
    done: asyncio.Future[Any] | None


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
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise SimulatorError(f"charger url must start with ws:// or wss://, got {url!r}")
        if discharge not in ("accept", "reject", "not_implemented"):
            raise SimulatorError(
                f"discharge must be accept, reject or not_implemented: {discharge!r}"
            )
        if evse_count < 1 or step_s <= 0 or meter_interval_s <= 0:
            raise SimulatorError("evse_count, step_s and meter_interval_s must be positive")
        self.url = f"{url.rstrip('/')}/{charger_id}"
        self.charger_id = charger_id
        self.password = password
        self.clock = clock
        self.dc = dc
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
        self._ssl = ssl
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
        )
        self.connected = asyncio.Event()
        self.booted = asyncio.Event()
        self.disconnected = asyncio.Event()  # set whenever a session has ended
        self.profiles: list[dict[str, Any]] = []  # every SetChargingProfile request received
        self._restart_transactions = False
        self.installed: list[InstalledProfile] = []
        self.sent_messages = 0
        self.latencies_s: list[float] = []  # round trip of every CALL this charger made
        # The ocpp library's own jsonschema check of what this charger sends and receives: worth
        # it in tests, but with a fleet of hundreds in one process it is the bottleneck.
        self.validate_frames = validate_frames
        self.connects = 0
        self._evses = {i: _Evse(i) for i in range(1, evse_count + 1)}
        self._voltage = self.nominal_voltage
        self._queue: deque[_Out] = deque()
        self._wake = asyncio.Event()
        self._session: Session | None = None
        self._boot_reason = "PowerUp"
        self._physics_at = clock.now()
        self._physics_changed = asyncio.Condition()
        self._log = log.bind(charger_id=charger_id)

    # ---------------------------------------------------------------- public API

    def ev(self, evse_id: int = 1) -> EvBattery | None:
        return self._evse(evse_id).ev

    def power_w(self, evse_id: int = 1) -> float:
        """Power at the meter now: positive charging, negative discharging."""
        return self._evse(evse_id).power_w

    def meter_wh(self, evse_id: int = 1) -> tuple[float, float]:
        """The EVSE's energy registers (import, export) in Wh, as its MeterValues report them."""
        evse = self._evse(evse_id)
        return evse.import_wh, evse.export_wh

    def transaction_id(self, evse_id: int = 1) -> str | None:
        return self._evse(evse_id).tx_id

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
            self._send_meter_values("Trigger", "AbnormalCondition" if volts == 0 else "Trigger")

    async def plug_in(
        self,
        ev: EvBattery,
        evse_id: int = 1,
        id_token: str = "car-token",
        departure: datetime | None = None,
        energy_request_wh: float | None = None,
    ) -> str:
        """Connect an EV: Occupied, a transaction starts; returns its transaction id."""
        evse = self._evse(evse_id)
        if evse.ev is not None:
            raise SimulatorError(f"{self.charger_id}: EVSE {evse_id} already has an EV plugged in")
        evse.ev = ev
        evse.power_w = 0.0
        done = [self._emit(self._status(evse))]
        done.append(self._start_transaction(evse, id_token, "CablePluggedIn"))
        if self.dc:
            done.append(self._emit(self._charging_needs(evse, departure, energy_request_wh)))
        await self._settle(done)
        assert evse.tx_id is not None
        return evse.tx_id

    async def plug_out(self, evse_id: int = 1) -> None:
        """Disconnect the EV: the transaction ends (EVDisconnected), the EVSE is Available."""
        evse = self._evse(evse_id)
        if evse.ev is None:
            raise SimulatorError(f"{self.charger_id}: EVSE {evse_id} has no EV plugged in")
        done = []
        if evse.tx_id is not None:
            done.append(self._end_transaction(evse, "EVCommunicationLost", "EVDisconnected"))
        evse.ev = None
        evse.power_w = 0.0
        done.append(self._emit(self._status(evse)))
        await self._settle(done)

    async def settled(self, at: datetime | None = None) -> None:
        """Wait until the physics has integrated up to `at` (default: the clock's now)."""
        target = at or self.clock.now()
        async with self._physics_changed:
            await self._physics_changed.wait_for(lambda: self._physics_at >= target)

    async def run(self) -> None:
        """Stay connected (with backoff) and run the physics until cancelled."""
        physics = asyncio.create_task(self._physics_loop(), name=f"sim-physics-{self.charger_id}")
        attempt = 0
        try:
            while True:
                try:
                    async with connect(
                        self.url,
                        subprotocols=[Subprotocol("ocpp2.0.1")],
                        additional_headers=self._auth_headers(),
                        ssl=self._ssl,
                        proxy=None,
                        open_timeout=10,
                    ) as ws:
                        self.connects += 1
                        if await self._session_run(ws):
                            attempt = 0
                except (OSError, WebSocketException, TimeoutError) as exc:
                    self._log.info("sim_link_down", error=f"{type(exc).__name__}: {exc}")
                finally:
                    self._session = None
                    self.connected.clear()
                    self.booted.clear()
                    self.disconnected.set()
                if physics.done():
                    physics.result()  # a crashed physics loop is a bug: surface it
                delay = min(self.reconnect_max_s, self.reconnect_min_s * 2**attempt)
                attempt = min(attempt + 1, 16)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
        finally:
            physics.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await physics

    # ---------------------------------------------------------------- session

    def _auth_headers(self) -> dict[str, str]:
        if self.password is None:
            return {}
        token = base64.b64encode(f"{self.charger_id}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def _session_run(self, ws: ClientConnection) -> bool:
        """One connection's life; True when it got as far as an accepted boot."""
        cp = Session(self, ws)
        self._session = cp
        self.disconnected.clear()
        self.connected.set()
        reader = asyncio.create_task(cp.start(), name=f"sim-reader-{self.charger_id}")
        worker = asyncio.create_task(self._online(cp), name=f"sim-online-{self.charger_id}")
        try:
            await asyncio.wait({reader, worker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, worker):
                task.cancel()
            results = await asyncio.gather(reader, worker, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(
                result, WebSocketException | OSError | TimeoutError
            ):
                self._log.warning("sim_session_error", error=repr(result))
        return self.booted.is_set()

    async def _online(self, cp: Session) -> None:
        interval = await self._boot(cp)
        self._boot_reason = "Unknown"
        self.booted.set()
        for evse in self._evses.values():
            await self._call(cp, self._status(evse))
        if self._restart_transactions:
            self._restart_transactions = False
            for evse in self._evses.values():
                if evse.ev is not None and evse.tx_id is None:
                    self._start_transaction(evse, evse.id_token or "car-token", "EVDetected")
        await asyncio.gather(self._sender(cp), self._heartbeat(cp, interval))

    async def _boot(self, cp: Session) -> int:
        while True:
            res = await self._call(cp, self._boot_request(self._boot_reason))
            if res.status == "Accepted":
                if res.interval > 0:
                    self.device.set("OCPPCommCtrlr", "HeartbeatInterval", str(res.interval))
                return int(self.device.value("OCPPCommCtrlr", "HeartbeatInterval"))
            self._log.info("sim_boot_not_accepted", status=res.status, interval=res.interval)
            await self.clock.sleep(max(1, res.interval or 10))

    def _boot_request(self, reason: str) -> call.BootNotification:
        return call.BootNotification(
            charging_station={
                "model": self.model,
                "vendor_name": self.vendor,
                "serial_number": self.serial,
                "firmware_version": "sim-1.0",
            },
            reason=reason,
        )

    async def _heartbeat(self, cp: Session, interval: int) -> None:
        while True:
            await self.clock.sleep(max(1, interval))
            await self._call(cp, call.Heartbeat())
            interval = int(self.device.value("OCPPCommCtrlr", "HeartbeatInterval"))

    async def _call(self, cp: Session, payload: Any) -> Any:
        started = time.perf_counter()
        try:
            result = await cp.call(
                payload, suppress=False, skip_schema_validation=not self.validate_frames
            )
        except TimeoutError:
            # No answer: treat the link as dead so the reconnect logic takes over.
            await cp.connection.close()
            raise
        self.sent_messages += 1
        self.latencies_s.append(time.perf_counter() - started)
        return result

    async def _sender(self, cp: Session) -> None:
        """Send queued messages in order; a TransactionEvent survives a lost link."""
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            out = self._queue[0]
            try:
                result = await self._call(cp, out.payload)
            except OCPPError as exc:
                self._queue.popleft()
                self._log.warning(
                    "sim_call_error", action=type(out.payload).__name__, error=str(exc)
                )
                _resolve(out.done, None)
                continue
            except BaseException:
                if isinstance(out.payload, call.TransactionEvent):
                    self._queue[0] = _Out(replace(out.payload, offline=True), None)
                else:
                    self._queue.popleft()
                _resolve(out.done, None)
                raise
            self._queue.popleft()
            _resolve(out.done, result)

    def _emit(self, payload: Any) -> asyncio.Future[Any]:
        """Queue a message; its future resolves with the answer, or None if dropped/held."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        online = self.booted.is_set()
        if isinstance(payload, call.TransactionEvent):
            if not online:
                payload = replace(payload, offline=True)
                done.set_result(None)
            self._queue.append(_Out(payload, None if done.done() else done))
            if len(self._queue) > MAX_OFFLINE_QUEUE:
                self._drop_oldest_update()
        elif online:
            self._queue.append(_Out(payload, done))
        else:
            done.set_result(None)  # chargers keep only transaction messages while offline
        self._wake.set()
        return done

    def _drop_oldest_update(self) -> None:
        for i, out in enumerate(self._queue):
            if (
                isinstance(out.payload, call.TransactionEvent)
                and out.payload.event_type == "Updated"
            ):
                del self._queue[i]
                return

    async def _settle(self, done: list[asyncio.Future[Any]]) -> None:
        await asyncio.gather(*done)

    # ---------------------------------------------------------------- messages

    def _evse(self, evse_id: int) -> _Evse:
        try:
            return self._evses[evse_id]
        except KeyError:
            raise SimulatorError(
                f"{self.charger_id}: no EVSE {evse_id} (has {sorted(self._evses)})"
            ) from None

    def _status(self, evse: _Evse) -> call.StatusNotification:
        if not evse.operative:
            status = "Unavailable"
        else:
            status = "Occupied" if evse.ev is not None else "Available"
        return call.StatusNotification(
            timestamp=iso(self.clock.now()),
            connector_status=status,
            evse_id=evse.evse_id,
            connector_id=1,
        )

    def _tx_event(
        self,
        evse: _Evse,
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
        return call.TransactionEvent(
            event_type=event_type,
            timestamp=iso(self.clock.now()),
            trigger_reason=trigger,
            seq_no=seq,
            transaction_info=info,
            meter_value=self._meter_value(evse, context) if context else None,
            evse={"id": evse.evse_id, "connector_id": 1},
            id_token={"id_token": id_token, "type": "Local"} if id_token else None,
        )

    def _start_transaction(
        self, evse: _Evse, id_token: str, trigger: str, remote_start_id: int | None = None
    ) -> asyncio.Future[Any]:
        evse.tx_id = uuid.uuid4().hex
        evse.tx_seq = 0
        evse.tx_start = self.clock.now()
        evse.id_token = id_token
        evse.charging_state = "EVConnected"
        return self._emit(
            self._tx_event(
                evse,
                "Started",
                trigger,
                context="Transaction.Begin",
                id_token=id_token,
                remote_start_id=remote_start_id,
            )
        )

    def _end_transaction(self, evse: _Evse, trigger: str, reason: str) -> asyncio.Future[Any]:
        evse.power_w = 0.0
        evse.charging_state = (
            "Idle" if evse.ev is None or reason == "EVDisconnected" else "EVConnected"
        )
        done = self._emit(
            self._tx_event(evse, "Ended", trigger, context="Transaction.End", stopped_reason=reason)
        )
        tx = evse.tx_id
        # A TxProfile lives only as long as its transaction (OCPP 2.0.1 K01).
        self.installed = [
            p
            for p in self.installed
            if not (p.purpose == "TxProfile" and p.evse_id == evse.evse_id)
            or (p.transaction_id is not None and p.transaction_id != tx)
        ]
        evse.tx_id = None
        evse.tx_start = None
        return done

    def _charging_needs(
        self, evse: _Evse, departure: datetime | None, energy_request_wh: float | None
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
            needs["departure_time"] = iso(departure)
        return call.NotifyEVChargingNeeds(charging_needs=needs, evse_id=evse.evse_id)

    def _meter_value(self, evse: _Evse, context: str) -> list[dict[str, Any]]:
        wanted = {
            m.strip()
            for m in self.device.value("SampledDataCtrlr", "TxUpdatedMeasurands").split(",")
        }
        p = evse.power_w
        v = self._voltage
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

        if self.report_soc and evse.ev is not None:
            add("SoC", evse.ev.soc_percent, "Percent", location="EV")
        add("Power.Active.Import", max(p, 0.0), "W")
        add("Power.Active.Export", max(-p, 0.0), "W")
        add("Energy.Active.Import.Register", evse.import_wh, "Wh")
        add("Energy.Active.Export.Register", evse.export_wh, "Wh")
        if self.dc:
            add("Voltage", v, "V")
        else:
            for phase in ("L1-N", "L2-N", "L3-N"):
                add("Voltage", v, "V", phase=phase)
        add("Current.Import", max(p, 0.0) / (3 * v) if v > 0 else 0.0, "A")
        if not values:  # MeterValueType needs at least one sample
            values.append({"value": round(evse.import_wh, 2), "context": context})
        return [{"timestamp": iso(self.clock.now()), "sampled_value": values}]

    def _send_meter_values(self, context: str, trigger: str) -> None:
        for evse in self._evses.values():
            if evse.tx_id is not None:
                self._emit(self._tx_event(evse, "Updated", trigger, context=context))
            else:
                self._emit(
                    call.MeterValues(
                        evse_id=evse.evse_id, meter_value=self._meter_value(evse, context)
                    )
                )

    # ---------------------------------------------------------------- physics

    def _context(self, evse: _Evse) -> EvseContext:
        return EvseContext(
            evse_id=evse.evse_id,
            max_charge_w=self.max_charge_w,
            max_discharge_w=self.max_discharge_w,
            transaction_id=evse.tx_id,
            transaction_start=evse.tx_start,
            voltage=self.nominal_voltage,
            phases=1 if self.dc else 3,
        )

    def _target_w(self, evse: _Evse, at: datetime) -> float:
        if evse.tx_id is None or evse.ev is None or not evse.operative:
            return 0.0
        limit = limit_at(self.installed, at, self._context(evse))
        evse.limit_w = limit
        if self._voltage <= 0 and limit > 0:
            return 0.0  # nothing to charge from in an outage; V2H discharge goes on
        return limit

    def _integrate(self, start: datetime, end: datetime) -> None:
        t = start
        while t < end:
            dt = min(self.step_s, (end - t).total_seconds())
            for evse in self._evses.values():
                target = self._target_w(evse, t)
                p = evse.ev.step(target, dt) if evse.ev is not None and target else 0.0
                evse.power_w = p
                evse.import_wh += max(p, 0.0) * dt / 3600.0
                evse.export_wh += max(-p, 0.0) * dt / 3600.0
            t = t + timedelta(seconds=dt)
        for evse in self._evses.values():
            self._track_state(evse)

    def _track_state(self, evse: _Evse) -> None:
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
            self._emit(self._tx_event(evse, "Updated", "ChargingStateChanged"))

    def _prune(self, now: datetime) -> None:
        keep = []
        for p in self.installed:
            ctx = self._context(self._evses.get(p.evse_id) or _Evse(p.evse_id))
            if not expired(p, now, ctx):
                keep.append(p)
        self.installed = keep

    async def _physics_loop(self) -> None:
        last = self.clock.now()
        next_meter = last.timestamp() + self._meter_interval()
        while True:
            await self.clock.sleep(self.step_s)
            now = self.clock.now()
            if now > last:
                self._integrate(last, now)
            last = now
            self._prune(now)
            if now.timestamp() >= next_meter:
                self._send_meter_values("Sample.Periodic", "MeterValuePeriodic")
                interval = self._meter_interval()
                while next_meter <= now.timestamp():
                    next_meter += interval
            async with self._physics_changed:
                self._physics_at = now
                self._physics_changed.notify_all()

    def _meter_interval(self) -> int:
        return max(1, int(self.device.value("SampledDataCtrlr", "TxUpdatedInterval")))

    # ---------------------------------------------------------------- CSMS requests

    def on_set_profile(self, evse_id: int, raw: dict[str, Any]) -> call_result.SetChargingProfile:
        self.profiles.append({"evseId": evse_id, "chargingProfile": raw})
        try:
            profile = install(evse_id, raw)
        except InvalidProfile as exc:
            return _rejected_profile("InvalidSchedule", str(exc))
        if evse_id != 0 and evse_id not in self._evses:
            return _rejected_profile("UnknownEvse", f"no EVSE {evse_id}")
        if profile.purpose == "ChargingStationExternalConstraints":
            return _rejected_profile("InvalidProfile", "external constraints are not set by a CSMS")
        if profile.purpose == "ChargingStationMaxProfile" and evse_id != 0:
            return _rejected_profile("InvalidProfile", "ChargingStationMaxProfile needs evseId 0")
        if profile.purpose == "TxProfile":
            evse = self._evses.get(evse_id)
            if evse is None or evse.tx_id is None or profile.transaction_id != evse.tx_id:
                return _rejected_profile("TxNotFound", "TxProfile needs the running transactionId")
        if profile.has_negative_limit and self.discharge == "reject":
            return _rejected_profile("NoDischarge", "this charger cannot discharge")
        if profile.has_negative_limit and self.discharge == "not_implemented":
            raise OcppNotImplemented(description="negative limits (discharging) are not supported")
        self.installed = [
            p
            for p in self.installed
            if p.profile_id != profile.profile_id
            and not (
                p.evse_id == profile.evse_id
                and p.purpose == profile.purpose
                and p.stack_level == profile.stack_level
            )
        ]
        self.installed.append(profile)
        self._log.info(
            "sim_profile_installed",
            id=profile.profile_id,
            purpose=profile.purpose,
            limits=[q.limit for q in profile.periods],
        )
        return call_result.SetChargingProfile(status="Accepted")

    def on_clear_profile(
        self, profile_id: int | None, criteria: dict[str, Any] | None
    ) -> call_result.ClearChargingProfile:
        crit = criteria or {}

        def matches(p: InstalledProfile) -> bool:
            if profile_id is not None and p.profile_id != profile_id:
                return False
            if "evse_id" in crit and p.evse_id != crit["evse_id"]:
                return False
            if "charging_profile_purpose" in crit and p.purpose != crit["charging_profile_purpose"]:
                return False
            return not ("stack_level" in crit and p.stack_level != crit["stack_level"])

        before = len(self.installed)
        self.installed = [p for p in self.installed if not matches(p)]
        return call_result.ClearChargingProfile(
            status="Accepted" if len(self.installed) < before else "Unknown"
        )

    def matching_profiles(
        self, criteria: dict[str, Any], evse_id: int | None
    ) -> list[InstalledProfile]:
        ids = criteria.get("charging_profile_id")
        out = []
        for p in self.installed:
            if evse_id is not None and p.evse_id != evse_id:
                continue
            if "charging_profile_purpose" in criteria and (
                p.purpose != criteria["charging_profile_purpose"]
            ):
                continue
            if "stack_level" in criteria and p.stack_level != criteria["stack_level"]:
                continue
            if ids and p.profile_id not in ids:
                continue
            out.append(p)
        return out

    def on_composite(
        self, duration: int, evse_id: int, unit: str | None
    ) -> call_result.GetCompositeSchedule:
        if evse_id != 0 and evse_id not in self._evses:
            return call_result.GetCompositeSchedule(
                status="Rejected", status_info={"reason_code": "UnknownEvse"}
            )
        ctx = (
            self._context(self._evses[evse_id])
            if evse_id
            else EvseContext(
                0, self.max_charge_w * len(self._evses), self.max_discharge_w * len(self._evses)
            )
        )
        schedule = composite_schedule(self.installed, ctx, self.clock.now(), duration, unit or "W")
        schedule["scheduleStart"] = iso(self.clock.now())
        return call_result.GetCompositeSchedule(status="Accepted", schedule=schedule)

    def on_request_start(
        self, id_token: str, remote_start_id: int, evse_id: int | None
    ) -> call_result.RequestStartTransaction:
        evse = self._pick_evse(evse_id)
        if evse is None or evse.ev is None or not evse.operative:
            return call_result.RequestStartTransaction(
                status="Rejected", status_info={"reason_code": "NoEV"}
            )
        if evse.tx_id is None:
            self._start_transaction(evse, id_token, "RemoteStart", remote_start_id)
        else:
            self._emit(
                self._tx_event(
                    evse,
                    "Updated",
                    "RemoteStart",
                    id_token=id_token,
                    remote_start_id=remote_start_id,
                )
            )
        return call_result.RequestStartTransaction(status="Accepted", transaction_id=evse.tx_id)

    def on_request_stop(self, transaction_id: str) -> call_result.RequestStopTransaction:
        for evse in self._evses.values():
            if evse.tx_id == transaction_id:
                self._end_transaction(evse, "RemoteStop", "Remote")
                return call_result.RequestStopTransaction(status="Accepted")
        return call_result.RequestStopTransaction(status="Rejected")

    def on_change_availability(
        self, operational: str, evse: dict[str, Any] | None
    ) -> call_result.ChangeAvailability:
        targets = (
            [self._evses[evse["id"]]]
            if evse and evse.get("id") in self._evses
            else list(self._evses.values())
        )
        if evse and evse.get("id") not in (0, *self._evses):
            return call_result.ChangeAvailability(status="Rejected")
        for e in targets:
            e.operative = operational == "Operative"
            self._emit(self._status(e))
        return call_result.ChangeAvailability(status="Accepted")

    def on_trigger(self, requested: str, evse: dict[str, Any] | None) -> str:
        evse_ids = [evse["id"]] if evse and evse.get("id") in self._evses else list(self._evses)
        if requested == "BootNotification":
            self._emit(self._boot_request("Triggered"))
        elif requested == "Heartbeat":
            self._emit(call.Heartbeat())
        elif requested == "StatusNotification":
            for i in evse_ids:
                self._emit(self._status(self._evses[i]))
        elif requested == "MeterValues":
            for i in evse_ids:
                self._emit(
                    call.MeterValues(
                        evse_id=i, meter_value=self._meter_value(self._evses[i], "Trigger")
                    )
                )
        elif requested == "TransactionEvent":
            for i in evse_ids:
                e = self._evses[i]
                if e.tx_id is not None:
                    self._emit(self._tx_event(e, "Updated", "Trigger", context="Trigger"))
        else:
            return "NotImplemented"
        return "Accepted"

    def _pick_evse(self, evse_id: int | None) -> _Evse | None:
        if evse_id is not None:
            return self._evses.get(evse_id)
        return next((e for e in self._evses.values() if e.ev is not None), None)

    async def reset(self, *, power_cut: bool = False) -> None:
        """Reboot. With `power_cut` the charger forgets its transactions and profiles, as after
        a power cut, and starts a new transaction for a car still plugged in once it is back."""
        self._boot_reason = "PowerUp" if power_cut else "RemoteReset"
        if power_cut:
            self.installed = []
            for evse in self._evses.values():
                evse.tx_id = None
                evse.tx_start = None
                evse.power_w = 0.0
            self._restart_transactions = True
        if self._session is not None:
            await self._session.connection.close()


def _rejected_profile(code: str, info: str) -> call_result.SetChargingProfile:
    return call_result.SetChargingProfile(
        status="Rejected", status_info={"reason_code": code, "additional_info": info[:512]}
    )


def _resolve(done: asyncio.Future[Any] | None, value: Any) -> None:
    if done is not None and not done.done():
        done.set_result(value)
