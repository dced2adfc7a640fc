"""Property: whatever the prices, PV, house and cars, the site plan never exceeds the grid
connection's limits (DESIGN.md invariant 8) except where the house alone forces it, never takes a
car below its reserve by discharging, and keeps the site balance in every slot."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "planner"))
from planner_helpers import slots, vehicle

from v2g_gateway.dispatch.plan_types import DepartureTarget
from v2g_gateway.dispatch.site import plan_site
from v2g_gateway.dispatch.site_types import ChargeMode, SiteCar, SiteRequest

TOL = 1e-4
price = st.floats(min_value=-0.2, max_value=1.0, allow_nan=False)
power = st.floats(min_value=0.0, max_value=12.0, allow_nan=False)


@st.composite
def requests(draw: st.DrawFn) -> SiteRequest:
    n = draw(st.integers(min_value=2, max_value=32))
    minutes = draw(st.lists(st.sampled_from([15, 30, 60]), min_size=n, max_size=n))
    imp = draw(st.lists(price, min_size=n, max_size=n))
    exp = [p - draw(st.floats(min_value=-0.05, max_value=0.3)) for p in imp]
    prices = slots(imp, exp, minutes=minutes)
    cars = []
    for k in range(draw(st.integers(min_value=1, max_value=3))):
        cap = draw(st.floats(min_value=20, max_value=100))
        max_kwh = cap * draw(st.floats(min_value=0.6, max_value=1.0))
        reserve = max_kwh * draw(st.floats(min_value=0.0, max_value=0.8))
        arrive = draw(st.integers(min_value=0, max_value=n - 1))
        leave = draw(st.integers(min_value=arrive + 1, max_value=n))
        targets = []
        if draw(st.booleans()) and leave < n:
            want = draw(st.floats(min_value=0, max_value=max_kwh))
            targets.append(DepartureTarget(prices[leave].start, want))
        v = vehicle(
            vehicle_id=f"car{k}",
            capacity_kwh=cap,
            max_kwh=max_kwh,
            reserve_kwh=reserve,
            soc_kwh=draw(st.floats(min_value=0.0, max_value=max_kwh)),
            max_charge_kw=draw(st.floats(min_value=1.0, max_value=11.0)),
            max_discharge_kw=draw(st.floats(min_value=0.0, max_value=10.0)),
        )
        cars.append(
            SiteCar(
                v,
                [arrive <= i < leave for i in range(n)],
                targets,
                mode=draw(st.sampled_from(list(ChargeMode))),
                min_charge_kw=draw(st.floats(min_value=0.0, max_value=4.0)),
            )
        )
    return SiteRequest(
        now=prices[0].start,
        prices=prices,
        cars=cars,
        pv_kw=draw(st.none() | st.lists(power, min_size=n, max_size=n)),
        load_kw=draw(st.none() | st.lists(power, min_size=n, max_size=n)),
        import_limit_kw=draw(st.none() | st.floats(min_value=0.0, max_value=25.0)),
        export_limit_kw=draw(st.none() | st.floats(min_value=0.0, max_value=25.0)),
        v2h_only=draw(st.booleans()),
        spike_threshold_per_kwh=draw(st.none() | price),
        max_cycles_per_day=draw(st.none() | st.floats(min_value=0.1, max_value=3.0)),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_site_plan_keeps_the_connection_limits(r: SiteRequest) -> None:
    p = plan_site(r)
    n = len(p.slots)
    load = [0.0] * n if r.load_kw is None else [max(0.0, x) for x in r.load_kw]
    pv = [0.0] * n if r.pv_kw is None else list(r.pv_kw)
    for i, s in enumerate(p.slots):
        charge = sum(p.cars[c.vehicle.vehicle_id].slots[i].charge_kw for c in r.cars)
        dis = sum(p.cars[c.vehicle.vehicle_id].slots[i].discharge_kw for c in r.cars)
        # the balance: what the meter sees is the house, the PV and the cars
        net = load[i] - pv[i] + s.curtailed_kw + charge - dis
        assert abs((s.import_kw - s.export_kw) - net) < 1e-3
        if r.import_limit_kw is not None:
            # above the limit only by what the house alone needs, with every car idle or
            # discharging
            assert s.import_kw <= r.import_limit_kw + s.over_limit_kw + TOL
            if s.over_limit_kw > TOL:
                assert charge < TOL
        if r.export_limit_kw is not None:
            assert s.export_kw <= r.export_limit_kw + TOL
        if r.v2h_only:
            assert s.export_kw <= max(0.0, pv[i] - load[i]) + TOL
    for c in r.cars:
        plan = p.cars[c.vehicle.vehicle_id]
        for s in plan.slots:
            if s.discharge_kw > TOL:
                assert c.mode == ChargeMode.SMART
                assert min(s.soc_start_kwh, s.soc_end_kwh) >= c.vehicle.reserve_kwh - TOL
            if c.mode == ChargeMode.HOLD:
                assert s.charge_kw == 0.0
