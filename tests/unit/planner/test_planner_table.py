"""Table-driven planner cases: one price story per row, one expectation each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from planner_helpers import T0, charged_kwh, exported_kwh, replay, request, slots, vehicle

from v2g_gateway.dispatch.planner import DemandResponse, DepartureTarget, Plan, PlanRequest, plan
from v2g_gateway.errors import PlanError

PEAK_IMP = [0.20] * 5 + [0.45] * 4 + [0.20] * 15  # hours 17..20 UTC-ish after a 12:00 start
PEAK_EXP = [0.05] * 5 + [0.35] * 4 + [0.05] * 15
PEAK = range(5, 9)


@dataclass
class Case:
    name: str
    req: PlanRequest
    check: Callable[[Plan, PlanRequest], None]
    notes: dict[str, Any] = field(default_factory=dict)


def _no_cycling(p: Plan, r: PlanRequest) -> None:
    assert exported_kwh(p) == 0.0


def _peak_arbitrage(p: Plan, r: PlanRequest) -> None:
    for i, s in enumerate(p.slots):
        if i in PEAK:
            assert s.discharge_kw > 0, s
            assert "above break-even" in s.reason
        else:
            assert s.discharge_kw == 0, s
    assert sum(s.charge_kw for s in p.slots[PEAK.stop :]) > 0  # recharges when cheap


def _target_met(p: Plan, r: PlanRequest) -> None:
    t = r.targets[0]
    at_departure = [s for s in p.slots if s.end <= t.at][-1]
    assert at_departure.soc_end_kwh >= t.soc_kwh - 1e-4
    assert not p.target_at_risk
    assert any("by" in s.reason for s in p.slots if s.charge_kw > 0)


def _reserve_kept(p: Plan, r: PlanRequest) -> None:
    assert min(replay(p, r.vehicle)) >= r.vehicle.reserve_kwh - 1e-4
    assert exported_kwh(p) > 0
    assert any(s.reason == "reserve reached" for s in p.slots)


def _negative_charges(p: Plan, r: PlanRequest) -> None:
    for s in p.slots:
        if s.import_per_kwh < 0:
            assert s.charge_kw > 0, s


def _at_risk_full_power(p: Plan, r: PlanRequest) -> None:
    assert p.target_at_risk
    before = [s for s in p.slots if s.end <= r.targets[0].at]
    assert all(s.charge_kw == pytest.approx(r.vehicle.max_charge_kw, abs=1e-3) for s in before)
    assert any("out of reach" in n for n in p.notes)


def _spike(p: Plan, r: PlanRequest) -> None:
    s = p.slots[3]
    assert s.discharge_kw == pytest.approx(r.vehicle.max_discharge_kw)
    assert "threshold" in s.reason
    assert r.spike_threshold_per_kwh is not None
    assert r.spike_threshold_per_kwh < p.break_even_per_kwh
    assert any("break-even" in n for n in p.notes)


def _v2h(p: Plan, r: PlanRequest) -> None:
    assert r.home_load_kw is not None
    assert any(s.discharge_kw > 0 for s in p.slots)
    for s, load in zip(p.slots, r.home_load_kw, strict=True):
        assert s.discharge_kw <= load + 1e-6


def _export_limit(p: Plan, r: PlanRequest) -> None:
    assert max(s.discharge_kw for s in p.slots) == pytest.approx(3.0)


def _dr(p: Plan, r: PlanRequest) -> None:
    for i, s in enumerate(p.slots):
        if i in (2, 3):
            assert s.discharge_kw >= 5.0 - 1e-6
            assert s.reason == "demand-response event"
        else:
            assert s.discharge_kw == 0


def _mixed(p: Plan, r: PlanRequest) -> None:
    assert [round(s.hours, 2) for s in p.slots[:5]] == [0.25, 0.25, 0.25, 0.25, 1.0]
    # the cheap quarter-hours are used at full power, the SoC column matches the physics
    assert p.slots[1].charge_kw == pytest.approx(11.0)
    for s, e in zip(p.slots, replay(p, r.vehicle), strict=True):
        assert s.soc_end_kwh == pytest.approx(e, abs=1e-4)
    _target_met(p, r)


def _below_reserve(p: Plan, r: PlanRequest) -> None:
    for s in p.slots:
        if s.discharge_kw > 0:
            assert s.soc_start_kwh >= r.vehicle.reserve_kwh - 1e-6
    # 8 kWh short of the reserve: the first hour charges exactly that, even at 0.90/kWh
    assert p.slots[0].soc_end_kwh == pytest.approx(r.vehicle.reserve_kwh, abs=1e-4)
    assert "reserve" in p.slots[0].reason


def _unplugged(p: Plan, r: PlanRequest) -> None:
    for s, plugged in zip(p.slots, r.plugged, strict=True):
        if not plugged:
            assert (s.charge_kw, s.discharge_kw, s.reason) == (0.0, 0.0, "not plugged in")


def _cycles(p: Plan, r: PlanRequest) -> None:
    usable = r.vehicle.max_kwh - r.vehicle.reserve_kwh
    assert 0 < exported_kwh(p) <= 0.25 * usable + 1e-6


def _no_v2g(p: Plan, r: PlanRequest) -> None:
    assert exported_kwh(p) == 0.0
    assert charged_kwh(p) >= 0.0


CASES = [
    Case(
        "flat prices, wear above the spread: no cycling",
        request(slots([0.30, 0.31, 0.30, 0.32] * 6, [0.29, 0.30, 0.29, 0.31] * 6)),
        _no_cycling,
    ),
    Case(
        "evening peak: discharge at it, recharge when cheap",
        request(
            slots(PEAK_IMP, PEAK_EXP), targets=[DepartureTarget(T0 + timedelta(hours=20), 45.0)]
        ),
        _peak_arbitrage,
    ),
    Case(
        "departure target met",
        request(
            slots([0.3, 0.2, 0.25, 0.1, 0.4, 0.3, 0.15, 0.3] * 3),
            targets=[DepartureTarget(T0 + timedelta(hours=19, minutes=30), 48.0)],
        ),
        _target_met,
    ),
    Case(
        "reserve never crossed on a long peak",
        request(slots([0.2] + [0.9] * 10 + [0.2] * 13, [0.05] + [0.8] * 10 + [0.05] * 13)),
        _reserve_kept,
    ),
    Case(
        "negative prices charge",
        request(
            slots([0.3, 0.3, 0.3, -0.05, -0.08, 0.3, 0.3, 0.3], [0.1] * 3 + [-0.1] * 2 + [0.1] * 3)
        ),
        _negative_charges,
    ),
    Case(
        "unreachable target: full power and at risk",
        request(
            slots([0.5, 0.1, 0.5, 0.1, 0.5, 0.5]),
            vehicle=vehicle(soc_kwh=10.0),
            targets=[DepartureTarget(T0 + timedelta(hours=3), 57.0)],
        ),
        _at_risk_full_power,
    ),
    Case(
        "spike threshold obeyed below break-even",
        request(
            slots([0.30] * 8, [0.10, 0.10, 0.10, 0.22, 0.10, 0.10, 0.10, 0.10]),
            spike_threshold_per_kwh=0.20,
        ),
        _spike,
    ),
    Case(
        "V2H-only never exceeds the home load",
        request(
            slots(PEAK_IMP, PEAK_EXP),
            v2h_only=True,
            home_load_kw=[0.4] * 5 + [2.5] * 4 + [0.4] * 15,
        ),
        _v2h,
    ),
    Case(
        "grid export limit",
        request(slots(PEAK_IMP, PEAK_EXP), grid_export_limit_kw=3.0),
        _export_limit,
    ),
    Case(
        "demand-response power request",
        request(
            slots([0.30] * 8, [0.10] * 8),
            dr_events=[
                DemandResponse(T0 + timedelta(hours=2), T0 + timedelta(hours=4), power_kw=5.0)
            ],
        ),
        _dr,
    ),
    Case(
        "mixed 15- and 60-minute slots",
        request(
            slots(
                [0.30, 0.05, 0.30, 0.30] + [0.25, 0.20, 0.28, 0.22] * 5,
                minutes=[15] * 4 + [60] * 20,
            ),
            vehicle=vehicle(soc_kwh=20.0),
            targets=[DepartureTarget(T0 + timedelta(hours=9), 50.0)],
        ),
        _mixed,
    ),
    Case(
        "arriving below the reserve: charge first, never discharge below it",
        request(
            slots([0.9] * 3 + [0.2] * 5, [0.8] * 3 + [0.05] * 5), vehicle=vehicle(soc_kwh=10.0)
        ),
        _below_reserve,
    ),
    Case(
        "not plugged in",
        request(slots(PEAK_IMP, PEAK_EXP), plugged=[False] * 6 + [True] * 18),
        _unplugged,
    ),
    Case(
        "max cycles per day",
        request(slots(PEAK_IMP, PEAK_EXP), max_cycles_per_day=0.25),
        _cycles,
    ),
    Case("V2G off", request(slots(PEAK_IMP, PEAK_EXP), v2g_enabled=False), _no_v2g),
    Case(
        "charger cannot discharge",
        request(slots(PEAK_IMP, PEAK_EXP), vehicle=vehicle(can_discharge=False)),
        _no_v2g,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_planner_table(case: Case) -> None:
    p = plan(case.req)
    assert len(p.slots) > 0
    case.check(p, case.req)


def test_now_inside_first_slot_counts_only_the_rest() -> None:
    prices = slots([0.2] * 4)
    now = T0 + timedelta(minutes=40)
    p = plan(request(prices, now=now))
    assert p.slots[0].start == now
    assert p.slots[0].hours == pytest.approx(20 / 60)
    assert p.slots[0].charge_kw * p.slots[0].hours <= 11.0 * 20 / 60 + 1e-9
    assert len(p.slots) == 4


def test_equal_prices_give_stable_plans_charging_earliest() -> None:
    req = request(
        slots([0.2] * 12),
        vehicle=vehicle(soc_kwh=20.0),
        targets=[DepartureTarget(T0 + timedelta(hours=12), 40.0)],
        terminal_value_per_kwh=0.0,
    )
    a, b = plan(req), plan(req)
    assert a == b
    charged = [s.charge_kw for s in a.slots]
    assert charged[0] == pytest.approx(11.0)
    assert charged[-1] == 0.0


def test_to_json_has_iso_times_and_units() -> None:
    p = plan(request(slots(PEAK_IMP, PEAK_EXP)))
    doc = p.to_json()
    assert doc["created_at"] == T0.isoformat()
    assert doc["slots"][0]["start"] == T0.isoformat()
    assert {"charge_kw", "discharge_kw", "soc_start_kwh", "import_per_kwh", "reason"} <= set(
        doc["slots"][0]
    )
    assert doc["break_even_per_kwh"] > 0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"plugged": [True] * 3}, "plugged has 3 entries"),
        ({"home_load_kw": [1.0]}, "home_load_kw has 1 entries"),
        ({"prices": []}, "no prices"),
        ({"now": T0 + timedelta(days=3)}, "price horizon has ended"),
        ({"vehicle": vehicle(eta_c=1.5)}, "efficiencies"),
        ({"vehicle": vehicle(soc_kwh=float("nan"))}, "soc_kwh must be a finite"),
        ({"now": T0.replace(tzinfo=None)}, "timezone-aware"),
    ],
)
def test_impossible_inputs_raise_plan_error(kw: dict[str, Any], match: str) -> None:
    if kw.get("prices") == []:
        base = PlanRequest(now=T0, vehicle=vehicle(), prices=[], plugged=[])
    else:
        base = request(slots([0.2] * 4), **kw)
    with pytest.raises(PlanError, match=match):
        plan(base)


def test_gap_in_prices_is_a_plan_error() -> None:
    prices = slots([0.2] * 2) + slots([0.2], start=T0 + timedelta(hours=3))
    with pytest.raises(PlanError, match="not where slot 1 ends"):
        plan(request(prices))


def test_departure_beyond_known_prices_stays_reachable() -> None:
    # prices for 6 h, departure 2 h after they end: at most 2 * 11 * 0.95 kWh can come later
    req = request(
        slots([0.9] * 6, [0.8] * 6),
        vehicle=vehicle(soc_kwh=50.0),
        targets=[DepartureTarget(T0 + timedelta(hours=8), 55.0)],
        terminal_value_per_kwh=0.1,
    )
    p = plan(req)
    assert p.slots[-1].soc_end_kwh >= 55.0 - 2 * 11 * 0.95 - 1e-4
    assert exported_kwh(p) > 0  # the peak is still used, down to what keeps the target
    assert p.slots[-1].soc_end_kwh == pytest.approx(55.0 - 2 * 11 * 0.95, abs=1e-3)
    assert any("beyond the known prices" in n for n in p.notes)
