"""The backtest's yardsticks beside the planner: perfect foresight and evcc-style PV surplus.

- **Perfect foresight**: one site plan over the whole history, with every price and every trip
  known (the trips as energy leaving the battery on arrival), the same wear cost, reserve, cycle
  limit and departure targets. No planner can do better; the planner's share of its gain over
  plain charging is its capture.
- **PV surplus** (what evcc's "PV" mode with a departure plan does): while plugged, charge with
  what the house does not use of the PV; below the reserve, or when the departure target would
  otherwise be missed, charge at full power from the grid. Never discharges.
"""

from __future__ import annotations

from collections.abc import Sequence

from v2g_gateway.backtest.home import HomeSeries, account
from v2g_gateway.backtest.results import Trip
from v2g_gateway.backtest.stays import Run, Stay
from v2g_gateway.config import Config
from v2g_gateway.dispatch.plan_types import DepartureTarget, PlanVehicle
from v2g_gateway.dispatch.site import plan_site
from v2g_gateway.dispatch.site_types import EndValue, SiteCar, SiteRequest
from v2g_gateway.errors import PlanError
from v2g_gateway.model import UserPriceSlot


def perfect_foresight(
    cfg: Config,
    v: PlanVehicle,
    prices: Sequence[UserPriceSlot],
    stays: Sequence[Stay],
    trip: Trip,
    home: HomeSeries | None,
    stored_value: float,
    run: Run,
) -> bool:
    """Fill `run` with the perfect-foresight plan; False if it has no solution."""
    n = len(prices)
    plugged = [False] * n
    drive = [0.0] * n
    targets: list[DepartureTarget] = []
    for stay in stays:
        for i in range(stay.arrive_i, stay.leave_i):
            plugged[i] = True
        if stay.arrive_i > 0:
            drive[stay.arrive_i] += trip.trip_kwh
        if stay.target_kwh is not None and stay.leave_i < n:
            targets.append(DepartureTarget(stay.leave_at, stay.target_kwh))
    pref = cfg.preferences
    request = SiteRequest(
        now=prices[0].start,
        prices=prices,
        cars=[SiteCar(v, plugged, targets, v2g_enabled=pref.v2g_enabled, drive_kwh=drive)],
        pv_kw=None if home is None else home.pv_kw,
        load_kw=None if home is None else home.load_kw,
        import_limit_kw=cfg.home.import_limit_kw(),
        export_limit_kw=cfg.home.export_limit_kw(pref.grid_export_limit_w),
        v2h_only=pref.v2h_only,
        degradation_cost_per_kwh=pref.degradation_cost_per_kwh,
        max_cycles_per_day=pref.max_cycles_per_day,
        end_value=EndValue(stored_value),
        currency=cfg.prices.currency,
        max_horizon=None,
    )
    try:
        p = plan_site(request).cars[v.vehicle_id]
    except PlanError:
        return False
    limit = request.export_limit_kw
    for i, (price, s) in enumerate(zip(prices, p.slots, strict=True)):
        run.soc = s.soc_end_kwh
        account(run, price, plugged[i], s.charge_kw, s.discharge_kw, home, i, limit)
    return True


def pv_surplus_stay(
    cfg: Config,
    v: PlanVehicle,
    prices: Sequence[UserPriceSlot],
    stay: Stay,
    home: HomeSeries,
    run: Run,
) -> None:
    """One stay of evcc-style PV surplus charging (with a latest-start fallback for targets)."""
    limit = cfg.home.export_limit_kw(cfg.preferences.grid_export_limit_w)
    imp_limit = cfg.home.import_limit_kw()
    target = stay.target_kwh
    for i in range(stay.arrive_i, stay.leave_i):
        p = prices[i]
        room = max(0.0, stay.limit_kwh - run.soc) / (v.eta_c * p.hours)
        surplus = max(0.0, home.pv_kw[i] - home.load_kw[i])
        c = min(v.max_charge_kw, surplus, room)
        left_h = sum(x.hours for x in prices[i + 1 : stay.leave_i])
        late = (
            target is not None
            and run.soc + v.eta_c * (c * p.hours + v.max_charge_kw * left_h) < target - 1e-6
        )
        if run.soc < v.reserve_kwh - 1e-6 or late:
            c = min(v.max_charge_kw, room)
        if imp_limit is not None:
            c = min(c, max(0.0, imp_limit - home.load_kw[i] + home.pv_kw[i]))
        run.soc += v.eta_c * c * p.hours
        account(run, p, True, c, 0.0, home, i, limit)
