"""The home's measurements: silence is unknown (never zero), JSON paths, a derived house load,
an inverted meter, bad payloads that change nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import parse_config
from v2g_gateway.home.meter import HomeMeter

T0 = datetime(2026, 6, 21, 12, 0, tzinfo=UTC)


def meter(cars: float | None = 0.0, **home: Any) -> tuple[HomeMeter, ManualClock]:
    cfg = parse_config({"home": {"grid_power_topic": "m/grid", "silence_timeout_s": 60, **home}})
    clock = ManualClock(T0)
    return HomeMeter(cfg.home, clock, lambda: cars), clock


async def test_silence_means_unknown_not_zero() -> None:
    m, clock = meter()
    assert m.now().grid_w is None
    m.handle("grid", "m/grid", b"1500")
    assert m.now().grid_w == 1500.0
    await clock.advance(60)
    assert m.now().grid_w == 1500.0  # at the limit still heard
    await clock.advance(1)
    now = m.now()
    assert now.grid_w is None and now.load_w is None


def test_json_path_and_invert() -> None:
    m, _ = meter(grid_power_json_path="em:0.total_act_power", grid_power_invert=True)
    m.handle("grid", "m/grid", b'{"em:0": {"total_act_power": 2500.5}}')
    assert m.now().grid_w == -2500.5


def test_load_is_derived_from_grid_pv_and_cars() -> None:
    m, _ = meter(cars=4000.0, pv_power_topic="m/pv")
    m.handle("grid", "m/grid", b"1000")
    assert m.now().load_w is None  # PV configured but not heard yet: unknown
    m.handle("pv", "m/pv", b"3500")
    now = m.now()
    assert now.load_w == pytest.approx(500.0)  # 1000 + 3500 - 4000
    assert now.surplus_w == pytest.approx(3000.0)


def test_cars_unknown_make_the_load_unknown() -> None:
    m, _ = meter(cars=None)
    m.handle("grid", "m/grid", b"800")
    assert m.now().load_w is None


def test_measured_house_load_wins() -> None:
    m, _ = meter(house_load_topic="m/load")
    m.handle("grid", "m/grid", b"800")
    m.handle("load", "m/load", b"650")
    assert m.now().load_w == 650.0


@pytest.mark.parametrize("payload", [b"", b"abc", b"nan", b'{"x": 1}', b"\xff", b"true"])
async def test_bad_payloads_leave_the_last_reading(payload: bytes) -> None:
    m, clock = meter()
    m.handle("grid", "m/grid", b"1200")
    await clock.advance(30)
    m.handle("grid", "m/grid", payload)
    assert m.now().grid_w == 1200.0
    await clock.advance(31)
    assert m.now().grid_w is None  # and it ages out: a bad message is not a fresh one


def test_listeners_only_for_configured_topics() -> None:
    m, _ = meter(pv_power_topic="m/pv")
    assert [t for t, _ in m.listeners()] == ["m/grid", "m/pv"]
