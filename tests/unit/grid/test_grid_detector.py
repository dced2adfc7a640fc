"""The outage detector on a ManualClock and a real SQLite store: debounce, hold-off, silence,
combining sources, load following and the energy reported at restoration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from v2g_gateway.bus import Changed
from v2g_gateway.clock import ManualClock
from v2g_gateway.config import Config, parse_config
from v2g_gateway.errors import ConfigError
from v2g_gateway.grid import OutageDetector
from v2g_gateway.model import (
    GRID_HINT,
    ChargerBooted,
    ChargerCapability,
    ChargerDisconnected,
    MeterSample,
)
from v2g_gateway.store import Store

T0 = datetime(2026, 1, 14, 18, 0, tzinfo=UTC)
TOPIC = "home/grid"
HOME = "home/power"


def config(**outage: Any) -> Config:
    return parse_config(
        {
            "chargers": [{"id": "garage", "password": "a-long-random-secret"}],
            "vehicles": [{"id": "car", "battery_kwh": 60}],
            "ocpp": {"meter_interval_s": 10},
            "outage": {
                "mqtt_topic": TOPIC,
                "debounce_s": 2,
                "restore_holdoff_s": 30,
                "silence_timeout_s": 60,
                "fixed_backup_w": 2500,
                **outage,
            },
        }
    )


class Rig:
    def __init__(self, tmp_path: Path, **outage: Any) -> None:
        self.cfg = config(**outage)
        self.clock = ManualClock(T0)
        self.store = Store.open(tmp_path / "state.sqlite", self.cfg, self.clock)
        self.wakes = 0
        self.det = OutageDetector(self.cfg, self.store, self.clock, self._wake)

    def _wake(self) -> None:
        self.wakes += 1

    async def at(self, seconds: float) -> None:
        """Move the clock to T0 + seconds and apply whatever rules came due."""
        await self.clock.set(T0 + timedelta(seconds=seconds))
        self.det.poll()

    def grid(self, payload: str | dict[str, Any]) -> None:
        body = json.dumps(payload) if isinstance(payload, dict) else payload
        self.det.handle_grid_message(TOPIC, body.encode())

    def meter(
        self, volts: float | None, power_w: float = 0.0, export_wh: float | None = None
    ) -> None:
        self.store.apply(
            MeterSample(
                "garage",
                1,
                self.clock.now(),
                power_w=power_w,
                voltage_v=volts,
                energy_export_wh=export_wh,
            )
        )
        self.det.charger_metered("garage")

    def kinds(self) -> list[str]:
        return [n["kind"] for n in reversed(self.store.recent_notifications())]

    def last(self, kind: str) -> dict[str, Any]:
        return next(n for n in self.store.recent_notifications() if n["kind"] == kind)

    @property
    def outage(self) -> bool:
        return self.store.snapshot(self.clock.now()).grid_outage


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.store.close()


async def test_outage_waits_for_the_debounce_then_acts_at_once(rig: Rig) -> None:
    rig.grid("offline")
    assert not rig.outage and rig.det.state(rig.clock.now()) == (False, 0.0)
    await rig.at(1.9)
    assert not rig.outage and rig.wakes == 0
    await rig.at(2.0)
    assert rig.outage
    assert rig.wakes == 1
    assert rig.det.state(rig.clock.now()) == (True, 2500.0)  # no home meter: fixed power
    n = rig.last("grid_outage")
    assert "grid meter home/grid says outage" in n["message"]
    assert "2500 W" in n["message"] and "20 % SoC" in n["message"]
    assert rig.det.status()["state"] == "outage"


async def test_zero_debounce_declares_inside_the_handler(tmp_path: Path) -> None:
    r = Rig(tmp_path, debounce_s=0)
    r.grid("offline")
    assert r.outage and r.wakes == 1  # no timer involved: the controller is already woken
    r.store.close()


async def test_a_flapping_grid_never_declares(rig: Rig) -> None:
    for i in range(20):
        await rig.at(i * 1.5)
        rig.grid("offline" if i % 2 == 0 else "online")
    await rig.at(29.0)
    assert not rig.outage and rig.wakes == 0
    assert "grid_outage" not in rig.kinds()


async def test_restore_waits_for_the_holdoff_and_a_flicker_restarts_it(rig: Rig) -> None:
    rig.grid("offline")
    await rig.at(2)
    assert rig.outage
    await rig.at(10)
    rig.grid("online")
    await rig.at(35)
    rig.grid("offline")  # the grid flickers back out before the hold-off ends
    await rig.at(36)
    rig.grid("online")
    await rig.at(65.9)
    assert rig.outage
    await rig.at(66)
    assert not rig.outage
    assert rig.wakes == 2
    assert rig.det.state(rig.clock.now()) == (False, 0.0)
    n = rig.last("grid_restored")
    assert "after 1 min" in n["message"] and n["data"]["duration_s"] == 64


async def test_a_silent_meter_is_unknown_not_outage(tmp_path: Path) -> None:
    r = Rig(tmp_path, json_path="voltage", voltage_below_v=180)
    r.grid({"voltage": 231})
    await r.at(30)
    r.grid({"voltage": 229})
    await r.at(90)
    assert r.det.status()["state"] == "normal"
    await r.at(90.001)
    st = r.det.status()
    assert st["state"] == "unknown" and st["unknown_sources"] == ["mqtt:home/grid"]
    assert not r.outage
    await r.at(600)
    assert not r.outage and r.kinds().count("grid_unknown") == 1
    assert "silent for over 60 s" in r.last("grid_unknown")["message"]
    r.grid({"voltage": 230})  # speaks again: known again
    assert r.det.status()["state"] == "normal"
    r.store.close()


async def test_silence_during_an_outage_keeps_the_outage(tmp_path: Path) -> None:
    r = Rig(tmp_path, json_path="voltage", voltage_below_v=180, debounce_s=0)
    r.grid({"voltage": 0})
    assert r.outage
    await r.at(3600)
    assert r.outage and r.det.status()["state"] == "outage"
    assert r.det.status()["unknown_sources"] == ["mqtt:home/grid"]
    r.store.close()


async def test_bad_payloads_are_logged_once_and_never_an_outage(rig: Rig) -> None:
    with capture_logs() as logs:
        for _ in range(5):
            rig.grid("garbage")
        rig.det.handle_grid_message(TOPIC, b"\xff")
    await rig.at(100)
    bad = [e for e in logs if e["event"] == "grid.bad_payload"]
    assert len(bad) == 1 and bad[0]["topic"] == TOPIC and "garbage" in bad[0]["error"]
    assert not rig.outage and rig.det.status()["sources"] == {}


async def test_voltage_threshold_with_hysteresis(tmp_path: Path) -> None:
    r = Rig(
        tmp_path,
        json_path="em:0.a_voltage",
        voltage_below_v=180,
        debounce_s=0,
        restore_holdoff_s=0,
        voltage_hysteresis_v=20,
    )
    r.grid({"em:0": {"a_voltage": 150}})
    assert r.outage
    r.grid({"em:0": {"a_voltage": 190}})  # above the trip point, inside the band: still out
    assert r.outage
    r.grid({"em:0": {"a_voltage": 200}})
    assert not r.outage
    r.store.close()


async def test_charger_voltage_on_an_online_charger(rig: Rig) -> None:
    rig.store.apply(ChargerBooted("garage", T0, vendor="Acme", model="BiDi"))
    rig.meter(231.0)
    rig.meter(0.0)
    await rig.at(2)
    assert rig.outage
    assert "charger garage measures 0 V" in rig.last("grid_outage")["message"]


async def test_an_offline_charger_is_no_evidence(rig: Rig) -> None:
    rig.store.apply(ChargerBooted("garage", T0, vendor="Acme", model="BiDi"))
    rig.store.apply(ChargerDisconnected("garage", T0))
    rig.det.charger_metered("garage")  # a stale sample arriving after the disconnect
    await rig.at(10)
    assert not rig.outage and "charger:garage" not in rig.det.status()["sources"]


async def test_restore_needs_every_source_that_spoke(rig: Rig) -> None:
    rig.store.apply(ChargerBooted("garage", T0, vendor="Acme", model="BiDi"))
    rig.grid("offline")
    rig.meter(0.0)
    await rig.at(2)
    assert rig.outage
    rig.grid("online")
    await rig.at(100)
    assert rig.outage  # the charger still sees no voltage
    rig.meter(230.0)
    await rig.at(129)
    assert rig.outage
    await rig.at(130)
    assert not rig.outage


async def test_charger_hint_is_a_source(rig: Rig) -> None:
    rig.det.handle_charger_hint("garage", outage=True)
    await rig.at(2)
    assert (
        rig.outage and "charger garage reported a grid loss" in rig.last("grid_outage")["message"]
    )
    rig.det.handle_charger_hint("garage", outage=False)
    await rig.at(32)
    assert not rig.outage


async def test_load_following_is_stepped_and_rate_limited(tmp_path: Path) -> None:
    r = Rig(tmp_path, home_power_topic=HOME, debounce_s=0, follow_min_interval_s=5)
    r.det.handle_home_power(HOME, b"1200")
    r.grid("offline")
    assert r.det.state(r.clock.now()) == (True, 1200.0) and r.wakes == 1
    assert "following the home's load" in r.last("grid_outage")["message"]
    await r.at(1)
    r.det.handle_home_power(HOME, b"1350")  # within 200 W: the charger keeps its profile
    assert r.det.state(r.clock.now()) == (True, 1200.0) and r.wakes == 1
    r.det.handle_home_power(HOME, b"3000")  # a kettle: but only one re-plan per 5 s
    assert r.det.backup_power_w(r.clock.now()) == 1200.0 and r.wakes == 1
    await r.at(5)
    assert r.det.state(r.clock.now()) == (True, 3000.0) and r.wakes == 2
    await r.at(70)  # the home meter fell silent: back to the fixed power
    assert r.det.state(r.clock.now()) == (True, 2500.0) and r.wakes == 3
    r.store.close()


async def test_energy_from_the_export_register(rig: Rig) -> None:
    rig.store.apply(ChargerBooted("garage", T0, vendor="Acme", model="BiDi"))
    rig.meter(230.0, export_wh=10_000)
    rig.grid("offline")
    await rig.at(2)
    await rig.at(1800)
    rig.meter(230.0, power_w=-2400, export_wh=11_250)
    rig.grid("online")
    await rig.at(1830)
    n = rig.last("grid_restored")
    assert n["data"]["energy_wh"] == 1250.0 and "1.25 kWh" in n["message"]


async def test_energy_from_power_when_there_is_no_register(rig: Rig) -> None:
    rig.store.apply(ChargerBooted("garage", T0, vendor="Acme", model="BiDi"))
    rig.grid("offline")
    await rig.at(2)
    rig.meter(230.0, power_w=-2000)
    await rig.at(1802)
    rig.meter(230.0, power_w=-1000)  # 2000 W for half an hour
    rig.grid("online")
    await rig.at(1832)  # hold-off 30 s, with 1000 W on until the moment of restoration
    assert rig.outage is False
    n = rig.last("grid_restored")
    # 1000 Wh, then 1000 W from 1802 s to 1832 s (restore at the end of the hold-off)
    assert n["data"]["energy_wh"] == pytest.approx(1000 + 1000 * 30 / 3600, abs=0.5)


async def test_disabled_detector_ignores_everything(tmp_path: Path) -> None:
    r = Rig(tmp_path, enabled=False, debounce_s=0)
    r.grid("offline")
    assert not r.outage and r.det.listeners() == []
    r.store.close()


async def test_listeners_cover_the_configured_topics(tmp_path: Path) -> None:
    r = Rig(tmp_path, home_power_topic=HOME)
    assert [t for t, _ in r.det.listeners()] == [TOPIC, HOME]
    r.store.close()


async def test_run_applies_the_debounce_on_the_clock(rig: Rig) -> None:
    """run() owns the timers: the outage is declared with no poll() from the test."""
    changes = rig.store.changes.subscribe()
    task = asyncio.create_task(rig.det.run())
    await asyncio.wait_for(rig.det.running.wait(), 5)
    rig.grid("offline")
    await rig.clock.advance(2.0)
    c = await asyncio.wait_for(_next_grid(changes), 5)
    assert c == Changed("grid") and rig.outage and rig.wakes == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_run_follows_charger_meter_values_from_the_store(tmp_path: Path) -> None:
    r = Rig(tmp_path, debounce_s=0)
    changes = r.store.changes.subscribe()
    task = asyncio.create_task(r.det.run())
    await asyncio.wait_for(r.det.running.wait(), 5)
    r.store.apply(ChargerBooted("garage", T0, vendor="Acme", model="BiDi"))
    r.store.apply(MeterSample("garage", 1, T0, voltage_v=0.0))  # reaches it via store.changes
    await asyncio.wait_for(_next_grid(changes), 5)
    assert r.outage and r.det.status()["sources"]["charger:garage"]["value"] == 0.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    r.store.close()


async def _next_grid(q: asyncio.Queue[Changed]) -> Changed:
    while True:
        c = await q.get()
        if c.kind == "grid":
            return c


async def test_a_charger_notify_event_hint_is_outage_evidence(rig: Rig) -> None:
    rig.store.apply(ChargerBooted("garage", T0, vendor="Acme", model="BiDi"))
    rig.store.apply(ChargerCapability("garage", T0, GRID_HINT, True, "ElectricalFeed.PowerLoss"))
    rig.det._charger_hint("garage")  # what run() does on Changed("charger")
    await rig.at(2)
    assert rig.outage
    rig.store.apply(ChargerCapability("garage", T0, GRID_HINT, False, "ElectricalFeed.PowerLoss"))
    rig.det._charger_hint("garage")
    await rig.at(40)
    assert not rig.outage


async def test_confirm_sources_two_needs_two_independent_origins(tmp_path: Path) -> None:
    """issue 19: one spoofed meter message, or one charger's event plus its own 0 V reading,
    no longer lowers the floor when two independent sources are asked for."""
    r = Rig(tmp_path, confirm_sources=2)
    r.store.apply(ChargerBooted("garage", T0, vendor="Acme", model="BiDi"))
    r.grid("offline")
    await r.at(5)
    assert not r.outage and r.det.status()["outage_evidence"] == [f"mqtt:{TOPIC}"]
    r.grid("online")
    await r.at(40)
    r.det.handle_charger_hint("garage", outage=True)
    r.meter(0.0)  # the same charger twice: one origin
    await r.at(45)
    assert not r.outage
    assert r.det.status()["outage_evidence"] == ["charger:garage", "event:garage"]
    r.grid("offline")  # a second origin agrees
    await r.at(47)
    assert r.outage
    n = r.last("grid_outage")
    assert n["data"]["confirm_sources"] == 2 and f"mqtt:{TOPIC}" in n["data"]["sources"]
    r.grid("online")  # down to one origin: the outage ends after the hold-off
    await r.at(77)
    assert not r.outage
    r.store.close()


async def test_status_lists_the_sources_that_may_lower_the_floor(tmp_path: Path) -> None:
    r = Rig(tmp_path, charger_events=False)
    st = r.det.status()
    assert st["floor_sources"] == [f"mqtt:{TOPIC}", "charger:garage"]
    assert st["confirm_sources"] == 1 and st["outage_evidence"] == []
    r.det.handle_charger_hint("garage", outage=True)  # switched off: no evidence
    await r.at(10)
    assert not r.outage and "event:garage" not in r.det.status()["sources"]
    r.store.close()


async def test_only_the_configured_topic_is_the_grid_meter(rig: Rig) -> None:
    with capture_logs() as logs:
        rig.det.handle_grid_message("home/grid/spoof", b"offline")
        rig.det.handle_grid_message("home/grid/spoof", b"offline")
    await rig.at(10)
    assert not rig.outage and rig.det.status()["sources"] == {}
    assert [e["event"] for e in logs] == ["grid.foreign_topic"]


def test_outage_topic_must_be_one_topic() -> None:
    with pytest.raises(ConfigError, match="must be one topic, not a filter"):
        config(mqtt_topic="home/#")
