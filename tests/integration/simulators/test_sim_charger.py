"""The simulated charger against a minimal CSMS written here with the ocpp library."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from websockets.asyncio.server import ServerConnection, serve

from simulators.battery import EvBattery
from simulators.charger import SimulatedCharger, iso
from v2g_gateway.clock import ManualClock

T0 = datetime(2024, 6, 3, 17, 0, tzinfo=UTC)


class MiniCsms(ChargePoint):  # type: ignore[misc]
    """Accepts everything and records what arrives."""

    def __init__(
        self, cid: str, ws: ServerConnection, inbox: asyncio.Queue[tuple[str, dict[str, Any]]]
    ):
        super().__init__(cid, ws, response_timeout=10)
        self.inbox = inbox

    @on("BootNotification")  # type: ignore[untyped-decorator]
    def boot(self, **kw: Any) -> call_result.BootNotification:
        self.inbox.put_nowait(("BootNotification", kw))
        return call_result.BootNotification(current_time=iso(T0), interval=300, status="Accepted")

    @on("StatusNotification")  # type: ignore[untyped-decorator]
    def status(self, **kw: Any) -> call_result.StatusNotification:
        self.inbox.put_nowait(("StatusNotification", kw))
        return call_result.StatusNotification()

    @on("Heartbeat")  # type: ignore[untyped-decorator]
    def heartbeat(self, **kw: Any) -> call_result.Heartbeat:
        self.inbox.put_nowait(("Heartbeat", kw))
        return call_result.Heartbeat(current_time=iso(T0))

    @on("TransactionEvent")  # type: ignore[untyped-decorator]
    def tx(self, **kw: Any) -> call_result.TransactionEvent:
        self.inbox.put_nowait(("TransactionEvent", kw))
        return call_result.TransactionEvent()

    @on("MeterValues")  # type: ignore[untyped-decorator]
    def meter(self, **kw: Any) -> call_result.MeterValues:
        self.inbox.put_nowait(("MeterValues", kw))
        return call_result.MeterValues()

    @on("NotifyEVChargingNeeds")  # type: ignore[untyped-decorator]
    def needs(self, **kw: Any) -> call_result.NotifyEVChargingNeeds:
        self.inbox.put_nowait(("NotifyEVChargingNeeds", kw))
        return call_result.NotifyEVChargingNeeds(status="Accepted")

    @on("NotifyReport")  # type: ignore[untyped-decorator]
    def report(self, **kw: Any) -> call_result.NotifyReport:
        self.inbox.put_nowait(("NotifyReport", kw))
        return call_result.NotifyReport()

    @on("ReportChargingProfiles")  # type: ignore[untyped-decorator]
    def profiles(self, **kw: Any) -> call_result.ReportChargingProfiles:
        self.inbox.put_nowait(("ReportChargingProfiles", kw))
        return call_result.ReportChargingProfiles()


@dataclass
class Csms:
    url: str
    inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = field(default_factory=asyncio.Queue)
    sessions: asyncio.Queue[MiniCsms] = field(default_factory=asyncio.Queue)
    auth: list[str | None] = field(default_factory=list)
    current: MiniCsms | None = None

    async def next(self, action: str) -> dict[str, Any]:
        """The next message of this action (earlier ones of other kinds are skipped)."""
        while True:
            got, payload = await asyncio.wait_for(self.inbox.get(), 10)
            if got == action:
                return payload

    async def session(self) -> MiniCsms:
        self.current = await asyncio.wait_for(self.sessions.get(), 10)
        return self.current


@contextlib.asynccontextmanager
async def csms_server() -> AsyncIterator[Csms]:
    holder: list[Csms] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        csms = holder[0]
        csms.auth.append(ws.request.headers.get("Authorization"))
        cp = MiniCsms(ws.request.path.strip("/"), ws, csms.inbox)
        csms.sessions.put_nowait(cp)
        with contextlib.suppress(Exception):
            await cp.start()

    async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"]) as server:
        port = server.sockets[0].getsockname()[1]
        holder.append(Csms(url=f"ws://127.0.0.1:{port}"))
        yield holder[0]


@contextlib.asynccontextmanager
async def running(charger: SimulatedCharger) -> AsyncIterator[SimulatedCharger]:
    task = asyncio.create_task(charger.run())
    try:
        await asyncio.wait_for(charger.booted.wait(), 10)
        yield charger
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def discharge_profile(
    tx_id: str, start: datetime, minutes: int, limit: float = -6000
) -> call.SetChargingProfile:
    return call.SetChargingProfile(
        evse_id=1,
        charging_profile={
            "id": 7,
            "stack_level": 1,
            "charging_profile_purpose": "TxProfile",
            "charging_profile_kind": "Absolute",
            "transaction_id": tx_id,
            "valid_to": iso(start + timedelta(minutes=minutes)),
            "charging_schedule": [
                {
                    "id": 1,
                    "start_schedule": iso(start),
                    "charging_rate_unit": "W",
                    "charging_schedule_period": [{"start_period": 0, "limit": limit}],
                }
            ],
        },
    )


def car(soc: float = 60) -> EvBattery:
    return EvBattery(60, soc, max_charge_w=11000, max_discharge_w=10000, min_soc_percent=5)


def sampled(payload: dict[str, Any], measurand: str) -> list[float]:
    return [
        float(s["value"])
        for mv in payload.get("meter_value", [])
        for s in mv["sampled_value"]
        if s.get("measurand") == measurand
    ]


async def test_boot_auth_status_and_transaction_start() -> None:
    clock = ManualClock(T0)
    async with csms_server() as csms:
        charger = SimulatedCharger(
            csms.url, "sim-0001", password="secret-password-123", clock=clock
        )
        async with running(charger):
            boot = await csms.next("BootNotification")
            assert boot["charging_station"]["vendor_name"] == "SimuCharge"
            assert (await csms.next("StatusNotification"))["connector_status"] == "Available"
            assert csms.auth == ["Basic c2ltLTAwMDE6c2VjcmV0LXBhc3N3b3JkLTEyMw=="]
            tx_id = await charger.plug_in(car(55), id_token="car-1")
            assert (await csms.next("StatusNotification"))["connector_status"] == "Occupied"
            started = await csms.next("TransactionEvent")
            assert started["event_type"] == "Started"
            assert started["trigger_reason"] == "CablePluggedIn"
            assert started["transaction_info"]["transaction_id"] == tx_id
            assert started["id_token"]["id_token"] == "car-1"
            assert sampled(started, "SoC") == [55.0]
            await charger.plug_out()
            ended = await csms.next("TransactionEvent")
            assert ended["event_type"] == "Ended"
            assert ended["transaction_info"]["stopped_reason"] == "EVDisconnected"
            assert ended["seq_no"] == 1
            assert (await csms.next("StatusNotification"))["connector_status"] == "Available"


async def test_negative_profile_discharges_until_it_expires() -> None:
    clock = ManualClock(T0)
    async with csms_server() as csms:
        charger = SimulatedCharger(
            csms.url, "sim-0001", password=None, clock=clock, meter_interval_s=60
        )
        async with running(charger):
            cp = await csms.session()
            ev = car(60)
            tx_id = await charger.plug_in(ev)
            res = await cp.call(discharge_profile(tx_id, T0, minutes=30), suppress=False)
            assert res.status == "Accepted"
            assert (
                charger.profiles[0]["chargingProfile"]["chargingSchedule"][0][
                    "chargingSchedulePeriod"
                ][0]["limit"]
                == -6000
            )
            await clock.advance(600)
            await charger.settled()
            assert charger.power_w() == pytest.approx(-6000)
            soc_10min = ev.soc_percent
            assert soc_10min < 60
            assert soc_10min == pytest.approx(60 - 6000 / 6 / 0.95 / 600, abs=0.01)
            update = await csms.next("TransactionEvent")
            while update["trigger_reason"] != "MeterValuePeriodic":
                update = await csms.next("TransactionEvent")
            assert sampled(update, "Power.Active.Export") == [6000.0]
            assert sampled(update, "Power.Active.Import") == [0.0]
            assert len(sampled(update, "Voltage")) == 3
            await clock.advance(1800)  # 20 more minutes of discharge, then validTo, then charge
            await charger.settled()
            discharged = 6000 / 2 / 0.95 / 600  # 30 minutes, in % of 60 kWh
            recharged = 11000 / 6 * 0.95 / 600  # 10 minutes at the EVSE maximum
            assert ev.soc_percent == pytest.approx(60 - discharged + recharged, abs=0.01)
            assert charger.installed == []
            assert charger.power_w() == pytest.approx(11000)


@pytest.mark.parametrize("mode", ["reject", "not_implemented"])
async def test_charger_that_cannot_discharge(mode: str) -> None:
    clock = ManualClock(T0)
    async with csms_server() as csms:
        charger = SimulatedCharger(csms.url, "sim-0001", password=None, clock=clock, discharge=mode)  # type: ignore[arg-type]
        async with running(charger):
            cp = await csms.session()
            ev = car(60)
            tx_id = await charger.plug_in(ev)
            if mode == "reject":
                res = await cp.call(discharge_profile(tx_id, T0, 30), suppress=False)
                assert res.status == "Rejected"
            else:
                with pytest.raises(OcppNotImplemented):
                    await cp.call(discharge_profile(tx_id, T0, 30), suppress=False)
            ok = await cp.call(discharge_profile(tx_id, T0, 30, limit=3000), suppress=False)
            assert ok.status == "Accepted"
            await clock.advance(600)
            await charger.settled()
            assert charger.power_w() == pytest.approx(3000)
            assert ev.soc_percent > 60
