"""Real time between plans, as a table: the connection's caps from the measured grid power
(a breach takes the excess from the charging cars, silence shares the limit evenly) and the
followed setpoint (PV surplus, the house load) with hysteresis and a minimum interval."""

from __future__ import annotations

from typing import Any

import pytest

from v2g_gateway.config import parse_config
from v2g_gateway.dispatch.home_follow import Follower, breach, caps
from v2g_gateway.dispatch.site_types import ChargeMode
from v2g_gateway.home.meter import HomeNow

A, B = ("garage", 1), ("carport", 1)


def home(**kw: Any) -> Any:
    return parse_config({"home": {"import_limit_w": 16000, "limit_margin_w": 0, **kw}}).home


def now(grid: float | None) -> HomeNow:
    return HomeNow(grid, None, None, None)


@pytest.mark.parametrize(
    ("grid", "powers", "want"),
    [
        # 4 kW of room, shared: each may take what it takes plus half of it
        (12000.0, {A: 5000.0, B: 3000.0}, {A: 7000.0, B: 5000.0}),
        # a 4 kW breach: the charging cars give it up in proportion (5:3)
        (20000.0, {A: 5000.0, B: 3000.0}, {A: 2500.0, B: 1500.0}),
        # the house alone is over the limit: the cars take nothing
        (25000.0, {A: 5000.0, B: 3000.0}, {A: 0.0, B: 0.0}),
        # silence: unknown, never zero: the limit split evenly, whatever the house does
        (None, {A: 5000.0, B: 3000.0}, {A: 8000.0, B: 8000.0}),
    ],
)
def test_import_caps(grid: float | None, powers: dict[Any, float], want: dict[Any, float]) -> None:
    got = caps(home(), now(grid), powers, None)
    assert {k: c.charge_w for k, c in got.items()} == pytest.approx(want)
    # whatever it is, the cars together stay within what the house leaves
    if grid is not None:
        house = grid - sum(powers.values())
        assert sum(c.charge_w or 0 for c in got.values()) + house <= 16000 + 1e-6 or house > 16000


def test_export_caps_share_the_limit() -> None:
    got = caps(home(import_limit_w=None), now(-9000.0), {A: -5000.0, B: -4000.0}, 7.0)
    assert got[A].discharge_w == pytest.approx(5000 - 2000 * 5 / 9)
    assert got[B].discharge_w == pytest.approx(4000 - 2000 * 4 / 9)
    assert got[A].charge_w is None


def test_breach_and_no_limits() -> None:
    assert breach(home(), 16001.0, None) and not breach(home(), 16000.0, None)
    assert breach(home(import_limit_w=None), -7100.0, 7.0)
    assert caps(home(import_limit_w=None), now(0.0), {A: 0.0}, None) == {}


def test_pv_only_follows_the_measured_surplus_with_hysteresis() -> None:
    f = Follower(home(follow_step_w=300, follow_min_interval_s=10))

    def at(mono: float, grid: float, own: float) -> float | None:
        w, why = f.setpoint(A, mono, ChargeMode.PV_ONLY, 0.0, "PV only", now(grid), own, 1,
                            11000.0, 10000.0, 1400.0)  # fmt: skip
        assert why is not None and why.startswith("PV only")
        return w

    assert at(0.0, -3000.0, 0.0) == 3000.0  # 3 kW exported: into the car
    assert at(5.0, -1500.0, 3000.0) == 3000.0  # a bigger move, but too soon after the last
    assert at(12.0, -1500.0, 3000.0) == 4500.0
    assert at(30.0, -200.0, 4500.0) == 4500.0  # within the 300 W step: held
    assert at(31.0, 2000.0, 4500.0) == 2500.0  # a cloud: importing 2 kW, so 2 kW less


def test_smart_follows_only_pv_and_v2h_slots() -> None:
    f = Follower(home(follow_step_w=0, follow_min_interval_s=0))
    w, _ = f.setpoint(A, 0.0, ChargeMode.SMART, 3000.0, "PV surplus 3.0 kW stored", now(-1000.0),
                      3000.0, 1, 11000.0, 10000.0, 0.0)  # fmt: skip
    assert w == 4000.0
    w, why = f.setpoint(A, 1.0, ChargeMode.SMART, -1000.0, "powering the home instead of importing",
                        now(600.0), -1000.0, 1, 11000.0, 10000.0, 0.0)  # fmt: skip
    assert w == -1600.0 and why is not None and "measured load" in why
    w, why = f.setpoint(A, 2.0, ChargeMode.SMART, 5000.0, "cheapest hours", now(-3000.0),
                        5000.0, 1, 11000.0, 10000.0, 0.0)  # fmt: skip
    assert (w, why) == (5000.0, "cheapest hours")  # the plan as it is
    w, why = f.setpoint(A, 3.0, ChargeMode.PV_ONLY, 0.0, "x", now(None), 0.0, 1, 1, 1, 0.0)
    assert (w, why) == (0.0, "x")  # the meter is silent: no surplus is assumed
