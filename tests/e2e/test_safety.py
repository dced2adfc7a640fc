"""The safety rules against the real daemon (websocket, mosquitto, SQLite) and real-world data:
skewed and offset-less charger clocks, a retained SoC, a guest after the home car, no SoC at a
peak, and a pause during a discharge. (A reboot mid-discharge is in test_dispatch.py; a refusal
for a wrong unit followed by a charger that accepts is test_quirks_control.py's A-only charger.)
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from e2e_helpers import TZ, charger, follow, running, simulating, skeleton_config, step_until

from simulators.battery import EvBattery
from simulators.quirks import Quirks
from v2g_gateway.app import Gateway
from v2g_gateway.clock import AcceleratedClock

PEAK = datetime(2026, 1, 15, 17, 0, tzinfo=TZ)  # export 0.35 >= threshold 0.30 until 21:00
SOC_TOPIC = "cars/car/soc"
VEHICLE = {
    "id": "car",
    "battery_kwh": 10,
    "reserve_soc_percent": 40.0,
    "id_tokens": ["car-token"],
    "soc_topic": SOC_TOPIC,
}


def ev(soc: float) -> EvBattery:
    return EvBattery(10, soc, max_charge_w=11000, max_discharge_w=10000, min_soc_percent=5)


def first_limits(sim: Any) -> list[float]:
    """What each profile makes the charger do at once."""
    return [
        p["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"]
        for p in sim.profiles
    ]


def config(tmp_path: Path, port: int, **extra: Any) -> Any:
    return skeleton_config(tmp_path / "state", port, vehicles=[VEHICLE], **extra)


async def publish(port: int, topic: str, payload: Any, *, retain: bool = False) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as c:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        await c.publish(topic, body, qos=1, retain=retain)


def sources(gw: Gateway) -> list[str]:
    """The sources of the readings taken, in the order they were taken."""
    with sqlite3.connect(gw.store.path) as db:
        return [r[0] for r in db.execute("SELECT source FROM soc_samples ORDER BY rowid")]


def vehicle(gw: Gateway) -> Any:
    v = gw.store.vehicle_view("car")
    assert v is not None
    return v


@pytest.mark.parametrize(
    "quirky",
    [Quirks(clock_skew_s=7200), Quirks(local_utc_offset_h=1)],
    ids=["clock-2h-ahead", "local-time-without-offset"],
)
async def test_a_skewed_charger_clock_neither_freshens_nor_blocks_readings(
    tmp_path: Path, mosquitto: Any, quirky: Quirks
) -> None:
    clock = AcceleratedClock(PEAK, speed=360)
    cfg = config(tmp_path, mosquitto.port)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, quirks=quirky, dc=True)) as sim,
    ):
        car = ev(70.0)
        await sim.plug_in(car)
        await step_until(sim, lambda: sim.power_w() < 0, "never discharged", 3600)
        # The car's own (correct) reading, later than the charger's "future" ones: taken; and
        # the charger's next one after it too: receipt order, not the charger's clock.
        await publish(mosquitto.port, SOC_TOPIC, {"soc_percent": round(car.soc_percent - 1, 1)})
        await step_until(
            sim, lambda: "mqtt" in sources(gw), "a correct later MQTT reading was dropped", 600
        )
        await step_until(
            sim,
            lambda: sources(gw)[sources(gw).index("mqtt") :].count("charger") > 0,
            "the charger's next reading was dropped",
            600,
        )
        # Its age is the gateway's: never "hours in the future".
        r = vehicle(gw).soc
        assert r is not None and r.age_s(clock.monotonic()) < 300
        assert car.soc_percent >= 40.0


async def test_a_retained_soc_before_start_is_never_used_to_discharge(
    tmp_path: Path, mosquitto: Any
) -> None:
    # From yesterday, retained: the broker hands it to the gateway at every (re)connect.
    await publish(mosquitto.port, SOC_TOPIC, b"80", retain=True)
    clock = AcceleratedClock(PEAK, speed=360)
    cfg = config(tmp_path, mosquitto.port)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, report_soc=False)) as sim,  # AC: the charger sees no SoC
    ):
        car = ev(45.0)
        await sim.plug_in(car)
        await step_until(sim, lambda: len(sim.profiles) >= 1, "no profile", 600)
        await follow(sim, 900)  # a quarter of an hour at the peak
        assert all(w >= 0 for w in first_limits(sim)), first_limits(sim)
        assert car.soc_percent >= 45.0 - 1e-6
        v = vehicle(gw)
        assert v.soc_percent == 80.0 and not v.shown_soc.age_known  # shown, not used
        # A live reading (not retained) of this plug-in: now the gateway may act on it.
        await publish(mosquitto.port, SOC_TOPIC, {"soc_percent": car.soc_percent})
        await step_until(sim, lambda: sim.power_w() < 0, "never discharged on a fresh SoC", 900)
        assert car.soc_percent >= 40.0


async def test_a_guest_after_the_home_car_is_never_discharged(
    tmp_path: Path, mosquitto: Any
) -> None:
    clock = AcceleratedClock(PEAK, speed=360)
    cfg = config(tmp_path, mosquitto.port)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, dc=True)) as sim,
    ):
        await sim.plug_in(ev(70.0), id_token="car-token")
        await step_until(sim, lambda: sim.power_w() < 0, "the home car never discharged", 3600)
        await sim.plug_out()
        await step_until(sim, lambda: not vehicle(gw).plugged, "the home car never left", 600)
        assert vehicle(gw).session is None and vehicle(gw).charger_id is None
        seen = len(sim.profiles)
        guest = ev(90.0)
        await sim.plug_in(guest, id_token="guest-card")  # someone else's car, peak price
        await follow(sim, 1800)
        assert all(w >= 0 for w in first_limits(sim)[seen:]), first_limits(sim)[seen:]
        assert guest.soc_percent >= 90.0 - 1e-6
        session = gw.store.charger_state("garage").evses[1].session  # type: ignore[union-attr]
        assert session is not None and session.guest and session.soc is not None
        assert not vehicle(gw).plugged  # the guest's SoC was never credited to the home car
        dispatch = gw.store.dispatch_state("garage", 1)
        assert dispatch is not None and dispatch["mode"] != "discharge"


async def test_no_soc_at_a_peak_with_a_far_departure_charges_by_price(
    tmp_path: Path, mosquitto: Any
) -> None:
    clock = AcceleratedClock(PEAK, speed=720)
    cfg = config(
        tmp_path,
        mosquitto.port,
        preferences={
            "discharge_above_per_kwh": 0.30,
            "departures": [{"time": "07:30", "target_soc_percent": 80}],
        },
    )
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, report_soc=False)) as sim,  # no SoC, no soc_topic message
    ):
        car = ev(50.0)
        await sim.plug_in(car)
        await step_until(sim, lambda: len(sim.profiles) >= 1, "no profile", 600)
        await follow(sim, 60)
        # Through the peak (17:00-21:00): neither discharged nor charged at the peak price.
        # (The charger charged on its own for the moment before its first profile.)
        at_first = car.soc_percent
        socs = await follow(sim, 4 * 3600 - 900)
        assert max(socs) - at_first < 0.1 and min(socs) >= at_first - 1e-6
        assert set(first_limits(sim)) == {0}, first_limits(sim)
        reason = (gw.store.dispatch_state("garage", 1) or {}).get("reason", "")
        assert "SoC unknown: charging by price for 8 kWh" in reason, reason
        # ...then it charges in the cheap night, and meets the departure.
        await step_until(sim, lambda: sim.power_w() > 0, "never charged", 4 * 3600)
        assert clock.now().astimezone(TZ).hour >= 21 or clock.now().astimezone(TZ).hour < 7
        await step_until(sim, lambda: car.soc_percent >= 80.0, "departure target missed", 10 * 3600)
        assert clock.now().astimezone(TZ) < datetime(2026, 1, 16, 7, 30, tzinfo=TZ)


async def test_pause_during_a_discharge_holds_the_car_at_0_w(
    tmp_path: Path, mosquitto: Any
) -> None:
    clock = AcceleratedClock(PEAK, speed=360)
    cfg = config(tmp_path, mosquitto.port)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, dc=True)) as sim,
    ):
        car = ev(70.0)
        await sim.plug_in(car)
        await step_until(sim, lambda: sim.power_w() < 0, "never discharged", 3600)
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
            await client.subscribe("v2g/e2e/events")
            await client.publish(
                "v2g/e2e/set/override", json.dumps({"action": "pause", "minutes": 30})
            )
            async with asyncio.timeout(20):
                async for m in client.messages:
                    kind = json.loads(bytes(m.payload))["kind"]  # type: ignore[arg-type]
                    if kind in ("override_accepted", "command_rejected"):
                        assert kind == "override_accepted"
                        break
        await step_until(sim, lambda: sim.power_w() == 0, "pause never held", 600)
        held = car.soc_percent
        socs = await follow(sim, 20 * 60)  # peak price: the charger must not charge either
        assert max(socs) - min(socs) < 0.05 and abs(car.soc_percent - held) < 0.05
        assert first_limits(sim)[-1] == 0
        dispatch = gw.store.dispatch_state("garage", 1)
        assert dispatch is not None and "pause" in dispatch["reason"]
        # When the pause ends the plan takes over again.
        await step_until(sim, lambda: sim.power_w() < 0, "discharge never resumed", 1800)
        assert car.soc_percent >= 40.0
        assert gw.store.snapshot(clock.now()).overrides == ()
        assert "override_expired" in [n["kind"] for n in gw.store.recent_notifications(50)]
        assert clock.now() - PEAK < timedelta(hours=4)
