"""Quirky chargers, control side: the real gateway, broker and store against simulators/quirks.py.

One test per field behaviour of smart charging (rate unit, foreign profiles, obedience, smart
charging off, external limits): the gateway does the right thing and the user is told.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from e2e_helpers import charger, follow, running, simulating, skeleton_config, step_until
from quirk_helpers import PEAK, caps, car, kinds, notice, units

from simulators.quirks import Quirks
from v2g_gateway.app import Gateway
from v2g_gateway.clock import AcceleratedClock


def _clock() -> AcceleratedClock:
    return AcceleratedClock(PEAK, speed=360)


def _big_car_config(tmp_path: Path, port: int) -> Any:
    """A 60 kWh car: enough energy above the reserve for discharge beyond the 6 A minimum."""
    return skeleton_config(
        tmp_path / "state",
        port,
        vehicles=[{"id": "car", "battery_kwh": 60, "reserve_soc_percent": 40}],  # type: ignore[dict-item]
    )


def big_car(soc: float) -> Any:
    from simulators.battery import EvBattery

    return EvBattery(60, soc, max_charge_w=11000, max_discharge_w=10000, min_soc_percent=5)


def _amps(sim: Any) -> list[float]:
    return [
        per["limit"]
        for p in sim.profiles
        for per in p["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
        if p["chargingProfile"]["chargingSchedule"][0]["chargingRateUnit"] == "A"
    ]


async def test_amps_only_charger_gets_profiles_in_amps(tmp_path: Path, mosquitto: Any) -> None:
    clock = _clock()
    quirky = Quirks(rate_unit="A", report_rate_unit=False)  # learnt from the refusal only
    async with (
        running(Gateway(_big_car_config(tmp_path, mosquitto.port), clock)) as gw,
        simulating(charger(gw, clock, quirks=quirky)) as sim,
    ):
        await sim.plug_in(big_car(80.0))
        await step_until(sim, lambda: sim.power_w() < -4200, "never discharged in A", 3600)
        assert units(sim)[0] == "W" and set(units(sim)[1:]) == {"A"}
        amps = _amps(sim)
        # Per-phase current with numberPhases; nothing between 0 and the 6 A minimum.
        assert all(a == 0 or abs(a) >= 6 for a in amps) and min(amps) < -6
        assert all(
            per["numberPhases"] == 3
            for p in sim.profiles[1:]
            for per in p["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
        )
        in_force = next(a for a in reversed(amps) if a < 0)
        assert abs(sim.power_w() - in_force * 690) < 70  # 230 V x 3 phases, 0.1 A steps
        c = caps(gw)
        assert (c["rate_unit"], c["phases"], c["min_power_w"]) == ("A", 3, 4140.0)
        assert c["discharge"] is True  # a unit refusal is not a discharge refusal
        assert "charger_refused_discharge" not in kinds(gw)
        assert "3 phase(s) at 230 V" in notice(gw, "charger_takes_amps")["message"]


async def test_single_phase_amps_charger_uses_its_supply_phases(
    tmp_path: Path, mosquitto: Any
) -> None:
    clock = _clock()
    cfg = skeleton_config(tmp_path / "state", mosquitto.port)
    quirky = Quirks(rate_unit="A", supply_phases=1)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, quirks=quirky)) as sim,
    ):
        await sim.plug_in(car(60.0))
        await step_until(sim, lambda: sim.power_w() < -1380, "never discharged", 3600)
        assert set(units(sim)) == {"A"}  # RateUnit = A was read at boot: no W attempt
        periods = sim.profiles[0]["chargingProfile"]["chargingSchedule"][0]
        assert periods["chargingSchedulePeriod"][0]["numberPhases"] == 1
        assert caps(gw)["phases"] == 1 and caps(gw)["min_power_w"] == 1380.0


async def test_foreign_profiles_are_cleared_or_stayed_above(tmp_path: Path, mosquitto: Any) -> None:
    def profile(pid: int, level: int, limit: float) -> dict[str, Any]:
        return {
            "id": pid,
            "stackLevel": level,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [
                {
                    "id": pid,
                    "startSchedule": "2026-01-01T00:00:00Z",
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
                }
            ],
        }

    quirky = Quirks(
        foreign_profiles=(
            (0, "CSO", profile(7, 0, 0.0)),  # a former backend's station-wide "no charging"
            (1, "EMS", profile(30, 2, 2000.0)),  # a local energy manager's: not ours to clear
        )
    )
    clock = _clock()
    cfg = skeleton_config(tmp_path / "state", mosquitto.port)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, quirks=quirky)) as sim,
    ):
        await step_until(
            sim, lambda: "charger_foreign_profiles" in kinds(gw), "foreign profiles untold", 600
        )
        assert sorted(p.profile_id for p in sim.installed) == [30]
        message = notice(gw, "charger_foreign_profiles")["message"]
        assert "id 30" in message and "stack level 3" in message
        assert caps(gw)["stack_level"] == 3
        await sim.plug_in(car(60.0))
        await step_until(sim, lambda: sim.power_w() < -1000, "never discharged", 3600)
        assert {p["chargingProfile"]["stackLevel"] for p in sim.profiles} == {3}


async def test_charger_ignoring_profiles_is_found_and_reported(
    tmp_path: Path, mosquitto: Any
) -> None:
    clock = _clock()
    cfg = skeleton_config(tmp_path / "state", mosquitto.port)
    quirky = Quirks(ignore_profiles="discharge")  # accepts -10 kW, lets the car charge
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, quirks=quirky)) as sim,
    ):
        await sim.plug_in(car(50.0))
        await step_until(
            sim, lambda: "charger_ignores_profiles" in kinds(gw), "disobedience not found", 900
        )
        assert caps(gw)["obeys_profiles"] is False
        assert any(
            per["limit"] < 0
            for p in sim.profiles
            for per in p["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
        )
        message = notice(gw, "charger_ignores_profiles")["message"]
        assert "no longer trusts it to discharge" in message and "+11.0" in message
        assert kinds(gw).count("charger_ignores_profiles") == 1


async def test_obedient_charger_is_confirmed(tmp_path: Path, mosquitto: Any) -> None:
    clock = _clock()
    cfg = skeleton_config(tmp_path / "state", mosquitto.port)
    async with running(Gateway(cfg, clock)) as gw, simulating(charger(gw, clock)) as sim:
        await sim.plug_in(car(60.0))
        await step_until(sim, lambda: caps(gw).get("obeys_profiles") is True, "never judged", 900)
        assert "charger_ignores_profiles" not in kinds(gw)


async def test_smart_charging_disabled_is_told_once_without_profile_spam(
    tmp_path: Path, mosquitto: Any
) -> None:
    clock = _clock()
    cfg = skeleton_config(tmp_path / "state", mosquitto.port)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, quirks=Quirks(smart_charging="disabled"))) as sim,
    ):
        await sim.plug_in(car(60.0))
        await step_until(sim, lambda: "charger_smart_charging_off" in kinds(gw), "never told", 600)
        await follow(sim, 1800)
        assert sim.profiles == []  # the gateway read Enabled = false and sent nothing
        assert kinds(gw).count("charger_smart_charging_off") == 1
        assert caps(gw)["smart_charging_enabled"] is False
        message = notice(gw, "charger_smart_charging_off")["message"]
        assert "Turn on smart charging" in message


async def test_smart_charging_not_supported_stops_after_the_refusals(
    tmp_path: Path, mosquitto: Any
) -> None:
    clock = _clock()
    cfg = skeleton_config(tmp_path / "state", mosquitto.port)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, quirks=Quirks(smart_charging="not_supported"))) as sim,
    ):
        await sim.plug_in(car(60.0))
        await step_until(sim, lambda: "charger_smart_charging_off" in kinds(gw), "never told", 3600)
        sent = len(sim.profiles)
        await follow(sim, 1800)
        assert len(sim.profiles) == sent <= 2  # a discharge refusal, then one charge refusal
        assert kinds(gw).count("charger_smart_charging_off") == 1


async def test_external_limit_is_recorded_and_told(tmp_path: Path, mosquitto: Any) -> None:
    clock = _clock()
    cfg = skeleton_config(tmp_path / "state", mosquitto.port)
    async with running(Gateway(cfg, clock)) as gw, simulating(charger(gw, clock)) as sim:
        await sim.plug_in(car(60.0))
        await step_until(sim, lambda: sim.power_w() < -1000, "never discharged", 3600)
        await sim.notify_charging_limit(10, unit="A", source="EMS")
        await step_until(
            sim, lambda: "charger_external_limit" in kinds(gw), "limit never told", 300
        )
        assert caps(gw)["external_limit_w"] == 6900.0
        assert "6.9 kW" in notice(gw, "charger_external_limit")["message"]
        await follow(sim, 60)
        assert abs(sim.power_w()) <= 6900.0 + 1e-6  # the charger itself obeys its EMS
