"""OCPP 2.1 against the real gateway: a 2.1 bidirectional charger and a 2.0.1 one side by side.

The 2.1 charger's car says it discharges at most 6 kW (v2xChargingParameters): the gateway learns
that, and at the peak it discharges by CentralSetpoint within 6 kW, stopping above the reserve;
the 2.0.1 charger beside it discharges by a negative limit as before. In an outage a 2.1 charger
that reports LocalLoadBalancing backs up the house in that mode, bounded by the gate. (kill -9 of the gateway
process and the charger's own fallback after maxOfflineDuration: test_ocpp21_offline.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from pathlib import Path
from typing import Any

from e2e_helpers import PASSWORD, RESERVE, TZ, running, simulating, skeleton_config, step_until

from simulators.battery import EvBattery
from simulators.charger import SimulatedCharger
from simulators.grid import GridSimulator
from v2g_gateway.app import Gateway
from v2g_gateway.clock import AcceleratedClock

PEAK = datetime(2026, 1, 15, 17, 0, tzinfo=TZ)


def _config(tmp_path: Path, broker_port: int) -> Any:
    return skeleton_config(
        tmp_path / "state",
        broker_port,
        chargers=[
            {"id": "garage", "password": PASSWORD, "max_discharge_w": 10000},
            {"id": "carport", "password": PASSWORD, "max_discharge_w": 10000},
        ],
        vehicles=[
            {
                "id": "car",
                "battery_kwh": 10,
                "reserve_soc_percent": RESERVE,
                "id_tokens": ["car-token"],
                "charger": "garage",
            },
            {
                "id": "van",
                "battery_kwh": 10,
                "reserve_soc_percent": RESERVE,
                "id_tokens": ["van-token"],
                "charger": "carport",
            },
        ],
    )


def _sim(gw: Gateway, clock: Any, charger_id: str, **kw: Any) -> SimulatedCharger:
    return SimulatedCharger(
        f"ws://127.0.0.1:{gw.csms.port}",
        charger_id,
        password=PASSWORD,
        clock=clock,
        meter_interval_s=30,
        step_s=5,
        dc=True,
        **kw,
    )


def _periods(sim: SimulatedCharger) -> list[dict[str, Any]]:
    periods: list[dict[str, Any]] = sim.profiles[-1]["chargingProfile"]["chargingSchedule"][0][
        "chargingSchedulePeriod"
    ]
    return periods


async def test_a_2_1_charger_discharges_by_setpoint_beside_a_2_0_1_one(
    tmp_path: Path, mosquitto: Any
) -> None:
    clock = AcceleratedClock(PEAK, speed=600)
    async with (
        running(Gateway(_config(tmp_path, mosquitto.port), clock)) as gw,
        simulating(_sim(gw, clock, "garage", ocpp_version="2.1")) as sim21,
        simulating(_sim(gw, clock, "carport")) as sim201,
    ):
        assert gw.csms.commands.version_of("garage") == "2.1"
        assert gw.csms.commands.version_of("carport") == "2.0.1"
        car = EvBattery(10, 70.0, max_charge_w=11000, max_discharge_w=6000, min_soc_percent=5)
        van = EvBattery(10, 70.0, max_charge_w=11000, max_discharge_w=10000, min_soc_percent=5)
        await sim21.plug_in(car, id_token="car-token")
        await sim201.plug_in(van, id_token="van-token")
        # The car's V2X parameters are learnt for its plug session.
        ch = gw.store.charger_state("garage")
        assert ch is not None
        learnt = ch.capabilities["ev_limits:1"]
        assert learnt["bidirectional"] is True and learnt["max_discharge_w"] == 6000
        await step_until(sim21, lambda: sim21.power_w() < 0, "the 2.1 car never discharged", 1800)
        first = _periods(sim21)[0]
        assert first["operationMode"] == "CentralSetpoint"
        assert -6000 <= first["setpoint"] < 0 and first["dischargeLimit"] == first["setpoint"]
        assert sim21.profiles[-1]["chargingProfile"]["maxOfflineDuration"] == (
            gw.cfg.ocpp.max_offline_s
        )
        assert sim21.power_w() >= -6000
        assert "DC_BPT" in sim21.allowed_energy_transfer.get(sim21.transaction_id() or "", [])
        # The 2.0.1 charger beside it: a negative limit, no 2.1 field.
        await step_until(
            sim201, lambda: sim201.power_w() < 0, "the 2.0.1 van never discharged", 600
        )
        assert "operationMode" not in _periods(sim201)[0] and _periods(sim201)[0]["limit"] < 0
        # The 2.1 car discharges down to its reserve, and not below it.
        socs = await step_until(
            sim21, lambda: sim21.power_w() >= 0, "the 2.1 car never stopped discharging", 7200
        )
        assert min(socs) >= RESERVE and car.soc_percent < 50.0
        assert min(p.get("setpoint", 0) for s in sim21.profiles for p in _sched(s)) >= -6000


def _sched(request: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = request["chargingProfile"]["chargingSchedule"][0][
        "chargingSchedulePeriod"
    ]
    return out


async def test_an_outage_backs_up_the_house_by_local_load_balancing(
    tmp_path: Path, mosquitto: Any
) -> None:
    noon = datetime(2026, 1, 15, 12, 0, tzinfo=TZ)  # off-peak: no discharge but the backup
    clock = AcceleratedClock(noon, speed=60)
    outage = {
        "mqtt_topic": "home/grid",
        "payload_outage": "offline",
        "payload_normal": "online",
        "home_power_topic": "home/power",
        "debounce_s": 2,
        "restore_holdoff_s": 60,
        "silence_timeout_s": 120,
        "floor_soc_percent": 20,
        "fixed_backup_w": 2000,
    }
    cfg = skeleton_config(tmp_path / "state", mosquitto.port, outage=outage)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(_sim(gw, clock, "garage", ocpp_version="2.1")) as sim,
    ):
        grid = GridSimulator(clock, mqtt_port=mosquitto.port, chargers=[sim], publish_interval_s=30)
        task = asyncio.create_task(grid.run())
        try:
            await sim.plug_in(EvBattery(10, 70.0, max_charge_w=11000, max_discharge_w=10000))
            await step_until(
                sim, lambda: gw.grid.status()["home_w"] is not None, "no home power", 300
            )

            def modes() -> list[str]:
                ch = gw.store.charger_state("garage")
                return [] if ch is None else list(ch.capabilities.get("operation_modes", ()))

            await step_until(sim, lambda: "LocalLoadBalancing" in modes(), "modes unknown", 300)
            grid.outage()
            await step_until(sim, lambda: sim.power_w() < 0, "backup never started", 120)
            first = _periods(sim)[0]
            assert first["operationMode"] == "LocalLoadBalancing" and "setpoint" not in first
            assert abs(-first["dischargeLimit"] - grid.home_w()) <= 250  # bounded at the house
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
