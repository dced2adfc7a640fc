"""Table tests of the site plan: PV, the house, the grid connection and two cars in one LP."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "planner"))
from planner_helpers import slots, vehicle

from v2g_gateway.dispatch.plan_types import DepartureTarget
from v2g_gateway.dispatch.planner import plan
from v2g_gateway.dispatch.site import plan_site
from v2g_gateway.dispatch.site_types import (
    ChargeMode,
    EndValue,
    SiteCar,
    SiteRequest,
)
from v2g_gateway.errors import PlanError

TOL = 1e-4


def site(prices: Any, cars: Any, **kw: Any) -> SiteRequest:
    base: dict[str, Any] = {
        "now": prices[0].start,
        "prices": prices,
        "cars": cars,
        "degradation_cost_per_kwh": 0.03,
    }
    base.update(kw)
    return SiteRequest(**base)


def car(n: int, **kw: Any) -> SiteCar:
    extra = {k: kw.pop(k) for k in ("mode", "targets", "min_charge_kw", "v2g_enabled") if k in kw}
    return SiteCar(vehicle(**kw), [True] * n, **extra)


def test_one_car_without_a_home_is_the_one_car_plan() -> None:
    prices = slots([0.30, 0.10, 0.45, 0.20, 0.12, 0.50], [0.1, 0.05, 0.40, 0.1, 0.05, 0.45])
    one = plan(__import__("planner_helpers").request(prices))
    s = plan_site(site(prices, [car(6)])).cars["car"]
    assert [x.net_kw for x in s.slots] == pytest.approx([x.net_kw for x in one.slots], abs=1e-4)


def test_pv_surplus_goes_into_the_car_instead_of_export() -> None:
    # flat import 0.30, export 0.08: a kWh of PV is worth more in the car than on the grid
    prices = slots([0.30] * 6, [0.08] * 6)
    pv = [0.0, 5.0, 5.0, 5.0, 0.0, 0.0]
    load = [0.5] * 6
    p = plan_site(site(prices, [car(6, soc_kwh=20.0)], pv_kw=pv, load_kw=load))
    c = p.cars["car"]
    for i in (1, 2, 3):
        assert c.slots[i].charge_kw == pytest.approx(4.5, abs=1e-3)
        assert p.slots[i].export_kw == pytest.approx(0.0, abs=1e-4)
        assert p.slots[i].import_kw == pytest.approx(0.0, abs=1e-4)
        assert "PV surplus" in c.slots[i].reason
    # no grid charging at the flat price: tomorrow is valued at the median
    assert c.slots[0].charge_kw == 0.0 and c.slots[4].charge_kw == 0.0


def test_the_fuse_holds_for_two_cars_together() -> None:
    # 3 x 16 A x 230 V = 11.04 kW for the whole site; both cars want 11 kW in the cheap hour
    prices = slots([0.40, 0.05, 0.40, 0.40])
    limit = 3 * 16 * 230 / 1000.0
    cars = [
        car(4, vehicle_id="a", soc_kwh=20.0, targets=[DepartureTarget(prices[2].start, 25.0)]),
        car(4, vehicle_id="b", soc_kwh=20.0, targets=[DepartureTarget(prices[2].start, 25.0)]),
    ]
    p = plan_site(site(prices, cars, load_kw=[1.0] * 4, import_limit_kw=limit))
    for i, s in enumerate(p.slots):
        assert s.import_kw <= limit + TOL
        total = sum(p.cars[k].slots[i].charge_kw for k in ("a", "b"))
        assert total + 1.0 <= limit + TOL
    assert p.slots[1].import_kw == pytest.approx(limit, abs=1e-3)
    assert "limited by the grid connection" in p.cars["b"].slots[1].reason
    # both targets still met: the rest is taken in the first hour
    for k in ("a", "b"):
        assert p.cars[k].slots[1].soc_end_kwh >= 25.0 - 1e-3


def test_export_limit_is_shared_by_the_cars() -> None:
    prices = slots([0.30, 0.80, 0.30], [0.05, 0.70, 0.05])
    cars = [car(3, vehicle_id="a", soc_kwh=50.0), car(3, vehicle_id="b", soc_kwh=50.0)]
    p = plan_site(site(prices, cars, export_limit_kw=7.0))
    peak = p.slots[1]
    assert peak.export_kw == pytest.approx(7.0, abs=1e-3)
    dis = sum(p.cars[k].slots[1].discharge_kw for k in ("a", "b"))
    assert dis == pytest.approx(7.0, abs=1e-3)  # not 2 x 7 kW


def test_v2h_covers_the_evening_peak_without_exporting() -> None:
    # export pays nothing, import is dear at the peak: discharge exactly the house load
    prices = slots([0.20, 0.20, 0.55, 0.55, 0.20], [0.0] * 5)
    load = [0.4, 0.4, 2.5, 1.8, 0.4]
    p = plan_site(site(prices, [car(5, soc_kwh=45.0)], load_kw=load, v2h_only=True))
    c = p.cars["car"]
    assert c.slots[2].discharge_kw == pytest.approx(2.5, abs=1e-3)
    assert c.slots[3].discharge_kw == pytest.approx(1.8, abs=1e-3)
    assert all(s.export_kw == pytest.approx(0.0, abs=1e-5) for s in p.slots)
    assert "powering the home" in c.slots[2].reason


def test_v2h_only_still_exports_pv() -> None:
    prices = slots([0.30, 0.30], [0.10, 0.10])
    p = plan_site(
        site(prices, [car(2, soc_kwh=57.0)], pv_kw=[6.0, 6.0], load_kw=[1.0, 1.0], v2h_only=True)
    )
    assert p.slots[0].export_kw == pytest.approx(5.0, abs=1e-3)  # full car: PV goes out


def test_departure_met_with_pv_and_house() -> None:
    prices = slots([0.50, 0.45, 0.30, 0.60, 0.60, 0.60], minutes=60)
    target = DepartureTarget(prices[3].start, 50.0)
    p = plan_site(
        site(prices, [car(6, soc_kwh=30.0, targets=[target])], pv_kw=[2.0] * 6, load_kw=[3.0] * 6)
    )
    assert p.cars["car"].slots[2].soc_end_kwh >= 50.0 - 1e-3
    assert not p.cars["car"].target_at_risk


def test_pv_only_never_imports_for_the_car() -> None:
    prices = slots([0.05, 0.30, 0.30, 0.05], [0.01] * 4)
    pv = [0.0, 3.0, 1.0, 0.0]
    p = plan_site(
        site(prices, [car(4, soc_kwh=20.0, mode=ChargeMode.PV_ONLY)], pv_kw=pv, load_kw=[0.5] * 4)
    )
    c = p.cars["car"]
    assert [s.charge_kw for s in c.slots] == pytest.approx([0.0, 2.5, 0.5, 0.0], abs=1e-3)
    assert all(s.discharge_kw == 0 for s in c.slots)
    assert c.slots[0].reason.startswith("PV only")


def test_min_pv_charges_the_minimum_plus_surplus() -> None:
    prices = slots([0.30] * 3, [0.05] * 3)
    p = plan_site(
        site(
            prices,
            [car(3, soc_kwh=20.0, mode=ChargeMode.MIN_PV, min_charge_kw=1.4)],
            pv_kw=[0.0, 4.0, 0.0],
            load_kw=[0.5] * 3,
        )
    )
    c = p.cars["car"]
    # like evcc: the surplus when it is more than the minimum (buying the minimum on top of
    # it from the grid would not pay at 0.30)
    assert [s.charge_kw for s in c.slots] == pytest.approx([1.4, 3.5, 1.4], abs=1e-3)
    assert "plus 2.1 kW of PV surplus" in c.slots[1].reason


def test_charge_now_and_hold_modes() -> None:
    prices = slots([0.60, 0.05], [0.5, 0.0])
    cars = [
        car(2, vehicle_id="now", soc_kwh=20.0, mode=ChargeMode.CHARGE_NOW),
        car(2, vehicle_id="hold", soc_kwh=50.0, mode=ChargeMode.HOLD),
    ]
    p = plan_site(site(prices, cars))
    assert p.cars["now"].slots[0].charge_kw == pytest.approx(11.0)
    assert all(s.net_kw == 0 for s in p.cars["hold"].slots)
    assert p.cars["hold"].slots[0].reason.startswith("hold")


def test_house_over_the_limit_makes_the_cars_discharge_first() -> None:
    prices = slots([0.30, 0.30], [0.05, 0.05])
    p = plan_site(site(prices, [car(2, soc_kwh=50.0)], load_kw=[14.0, 1.0], import_limit_kw=11.0))
    assert p.cars["car"].slots[0].discharge_kw == pytest.approx(3.0, abs=1e-3)
    assert p.slots[0].import_kw <= 11.0 + TOL


def test_end_value_with_pv_after_the_horizon_buys_less_tonight() -> None:
    # tomorrow is dearer (0.40): without PV after the horizon the car fills up tonight; with
    # PV forecast to cover all above 30 kWh, it buys only what the target needs
    prices = slots([0.30] * 4, [0.08] * 4)
    need = [car(4, soc_kwh=20.0, targets=[DepartureTarget(prices[-1].end, 30.0)])]
    grid = plan_site(site(prices, need, end_value=EndValue(0.40 * 0.95)))
    pv = plan_site(site(prices, need, end_value=EndValue(0.40 * 0.95, 0.08, grid_kwh=(30.0,))))
    charged = [sum(s.charge_kw * s.hours for s in x.cars["car"].slots) for x in (grid, pv)]
    assert charged[1] == pytest.approx(10.0 / 0.95, abs=1e-3)  # the target only
    assert charged[0] > charged[1] + 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cars": []}, "at least one car"),
        ({"pv_kw": [1.0]}, "pv_kw has 1 entries"),
        ({"import_limit_kw": -1.0}, "import_limit_kw must be"),
        ({"load_kw": [float("nan")] * 2}, "load_kw must be finite"),
    ],
)
def test_bad_requests_are_named(change: dict[str, Any], message: str) -> None:
    prices = slots([0.3, 0.3])
    req = site(prices, [car(2)])
    with pytest.raises(PlanError, match=message):
        plan_site(
            SiteRequest(**{**{f: getattr(req, f) for f in req.__dataclass_fields__}, **change})
        )


def test_duplicate_cars_are_refused() -> None:
    prices = slots([0.3, 0.3])
    with pytest.raises(PlanError, match="duplicate"):
        plan_site(site(prices, [car(2), car(2)]))


def test_a_low_spike_threshold_discharges_and_cannot_be_farmed() -> None:
    # a threshold under every price makes every slot a discharge slot; its bonus must not pay
    # for charging and discharging in the same slot (the meter nets them to nothing)
    prices = slots([0.30, 0.30, 0.30], [0.25, 0.25, 0.25])
    p = plan_site(site(prices, [car(3, soc_kwh=50.0)], spike_threshold_per_kwh=0.01))
    c = p.cars["car"]
    assert c.slots[0].discharge_kw == pytest.approx(10.0, abs=1e-3)
    assert all(not (s.charge_kw > 1e-3 and s.discharge_kw > 1e-3) for s in c.slots)
    assert "at or above your threshold" in c.slots[0].reason
