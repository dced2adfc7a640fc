"""Shared parts of the quirky-charger tests: the real gateway against simulators/quirks.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from e2e_helpers import TZ

from simulators.battery import EvBattery
from v2g_gateway.app import Gateway

PEAK = datetime(2026, 1, 15, 17, 0, tzinfo=TZ)  # export 0.35 > 0.30: the plan discharges


def car(soc: float) -> EvBattery:
    return EvBattery(10, soc, max_charge_w=11000, max_discharge_w=10000, min_soc_percent=5)


def notices(gw: Gateway) -> list[dict[str, Any]]:
    return list(reversed(gw.store.recent_notifications(200)))


def kinds(gw: Gateway) -> list[str]:
    return [n["kind"] for n in notices(gw)]


def notice(gw: Gateway, kind: str) -> dict[str, Any]:
    found = [n for n in notices(gw) if n["kind"] == kind]
    assert found, f"no {kind} notification in {kinds(gw)}"
    return found[0]


def caps(gw: Gateway) -> dict[str, Any]:
    return dict(gw.store.snapshot(gw.clock.now()).chargers["garage"].capabilities)


def units(sim: Any) -> list[str]:
    return [p["chargingProfile"]["chargingSchedule"][0]["chargingRateUnit"] for p in sim.profiles]
