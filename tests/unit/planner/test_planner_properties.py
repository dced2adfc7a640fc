"""Property tests for DESIGN.md section 4 over random prices, slot lengths and arrivals."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from planner_helpers import T0, replay, request, slots, vehicle

from v2g_gateway.dispatch.planner import DemandResponse, DepartureTarget, PlanRequest, plan

TOL = 1e-4
price = st.floats(min_value=-0.2, max_value=1.0, allow_nan=False)


@st.composite
def requests(draw: st.DrawFn) -> PlanRequest:
    n = draw(st.integers(min_value=2, max_value=48))
    minutes = draw(st.lists(st.sampled_from([15, 30, 60]), min_size=n, max_size=n))
    imp = draw(st.lists(price, min_size=n, max_size=n))
    exp = [p - draw(st.floats(min_value=-0.05, max_value=0.3)) for p in imp]
    cap = draw(st.floats(min_value=20, max_value=100))
    max_kwh = cap * draw(st.floats(min_value=0.6, max_value=1.0))
    reserve = max_kwh * draw(st.floats(min_value=0.0, max_value=0.8))
    soc = draw(st.floats(min_value=0.0, max_value=max_kwh))
    arrive = draw(st.integers(min_value=0, max_value=n - 1))
    leave = draw(st.integers(min_value=arrive + 1, max_value=n))
    plugged = [arrive <= i < leave for i in range(n)]
    prices = slots(imp, exp, minutes=minutes)
    targets = []
    if draw(st.booleans()) and leave < n:
        targets.append(
            DepartureTarget(prices[leave].start, draw(st.floats(min_value=0, max_value=max_kwh)))
        )
    dr = []
    if draw(st.booleans()):
        i = draw(st.integers(min_value=0, max_value=n - 1))
        dr.append(DemandResponse(prices[i].start, prices[i].end, power_kw=5.0))
    return request(
        prices,
        vehicle=vehicle(
            capacity_kwh=cap,
            soc_kwh=soc,
            reserve_kwh=reserve,
            max_kwh=max_kwh,
            max_charge_kw=draw(st.sampled_from([3.7, 7.4, 11.0])),
            max_discharge_kw=draw(st.sampled_from([0.0, 5.0, 10.0])),
        ),
        plugged=plugged,
        targets=targets,
        spike_threshold_per_kwh=draw(st.none() | st.floats(min_value=0.0, max_value=0.8)),
        dr_events=dr,
        max_cycles_per_day=draw(st.none() | st.floats(min_value=0.1, max_value=2.0)),
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("V2G_FUZZ_RANDOM") is None,
)
@given(requests())
def test_safety_invariants(req: PlanRequest) -> None:
    v = req.vehicle
    p = plan(req)
    soc = replay(p, v)
    e_prev = v.soc_kwh
    above = v.soc_kwh >= v.reserve_kwh
    for s, e in zip(p.slots, soc, strict=True):
        assert s.soc_end_kwh == pytest.approx(e, abs=TOL)
        if s.discharge_kw > 0:
            # 1. discharge only from at or above the reserve, and never through it
            assert e_prev >= v.reserve_kwh - TOL
            assert e >= v.reserve_kwh - TOL
        # arriving below the reserve: never lower than on arrival, and once above, stays above
        assert e >= min(v.soc_kwh, v.reserve_kwh) - TOL
        if above:
            assert e >= v.reserve_kwh - TOL
        above = above or e >= v.reserve_kwh - TOL
        assert e <= max(v.max_kwh, v.soc_kwh) + TOL
        e_prev = e
    for s, plugged in zip(p.slots, req.plugged, strict=True):
        if not plugged:
            assert s.charge_kw == 0 and s.discharge_kw == 0


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("V2G_FUZZ_RANDOM") is None,
)
@given(requests())
@example(
    # Found by a random run: a car almost empty (8.5e-8 kWh) whose target is just out of
    # reach; the bound at exactly what full power reaches was infeasible for the solver.
    request(
        slots([0.0, 0.0, 0.0], minutes=15),
        vehicle=vehicle(
            capacity_kwh=20.0,
            soc_kwh=8.542331494762061e-08,
            reserve_kwh=0.0,
            max_kwh=20.0,
            max_charge_kw=3.7,
            max_discharge_kw=0.0,
        ),
        plugged=[False, True, False],
        targets=[DepartureTarget(T0 + timedelta(minutes=30), 1.0)],
    )
)
def test_targets_met_when_reachable(req: PlanRequest) -> None:
    v = req.vehicle
    p = plan(req)
    for t in req.targets:
        before = [i for i, s in enumerate(p.slots) if s.end <= t.at]
        if not before:
            continue
        k = before[-1]
        reach = v.soc_kwh + sum(
            v.eta_c * v.max_charge_kw * s.hours
            for s, plugged in zip(p.slots[: k + 1], req.plugged, strict=False)
            if plugged
        )
        want = min(t.soc_kwh, max(v.max_kwh, v.soc_kwh))
        if want <= min(reach, max(v.max_kwh, v.soc_kwh)) - TOL:
            assert p.slots[k].soc_end_kwh >= want - TOL
            assert not p.target_at_risk
        elif want > reach + TOL:
            assert p.target_at_risk
            assert all(
                s.charge_kw == pytest.approx(v.max_charge_kw, abs=1e-3)  # to the watt
                for s, plugged in zip(p.slots[: k + 1], req.plugged, strict=False)
                if plugged
            )


def test_horizon_ends_at_48_hours() -> None:
    p = plan(request(slots([0.2] * 60)))
    assert p.slots[-1].end == T0 + timedelta(hours=48)
