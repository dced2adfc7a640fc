"""Planner solve time for 48, 96 and 192 slots, against a greedy baseline in the same process,
and the site plan (2 cars, PV, house load, the connection's limits) beside the one-car figure.

Run: .venv/bin/python bench/bench_planner.py
The baseline (sort the slots, charge in the cheapest until the target is met) is the cheapest
thing a planner could do; the ratio says what the LP costs on top of it on this machine.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from v2g_gateway.dispatch.planner import (
    DepartureTarget,
    PlanRequest,
    PlanVehicle,
    plan,
)
from v2g_gateway.dispatch.site import plan_site
from v2g_gateway.dispatch.site_types import SiteCar, SiteRequest
from v2g_gateway.model import UserPriceSlot

T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
RUNS = 200


def make_request(n: int, minutes: int, rng: random.Random) -> PlanRequest:
    prices, plugged = [], []
    t = T0
    for _ in range(n):
        hour = (t.hour + t.minute / 60) % 24
        base = 0.25 + (0.2 if 17 <= hour < 21 else 0.0) + rng.uniform(-0.05, 0.05)
        end = t + timedelta(minutes=minutes)
        prices.append(UserPriceSlot(t, end, base, base - 0.15 + rng.uniform(-0.02, 0.02)))
        plugged.append(not 7 <= hour < 17)  # away at work
        t = end
    v = PlanVehicle("car", 60.0, 25.0, 18.0, 57.0, 11.0, 10.0, 0.95, 0.95, True)
    return PlanRequest(
        now=T0,
        vehicle=v,
        prices=prices,
        plugged=plugged,
        targets=[DepartureTarget(T0 + timedelta(hours=19), 48.0)],
        degradation_cost_per_kwh=0.03,
        spike_threshold_per_kwh=0.5,
        max_cycles_per_day=1.0,
    )


def site_request(req: PlanRequest) -> SiteRequest:
    """The one-car request's day with a second car at home all day, a 6 kWp roof and a house."""
    pv, load = [], []
    for p in req.prices:
        hour = p.start.hour + p.start.minute / 60
        pv.append(max(0.0, 6.0 * math.sin(math.pi * (hour - 6) / 12)))
        load.append(0.4 + (1.6 if 17 <= hour < 21 else 0.0) + (0.8 if 7 <= hour < 8 else 0.0))
    second = replace(req.vehicle, vehicle_id="car2", soc_kwh=30.0)
    return SiteRequest(
        now=req.now,
        prices=req.prices,
        cars=[
            SiteCar(req.vehicle, req.plugged, req.targets),
            SiteCar(second, [True] * len(req.prices)),
        ],
        pv_kw=pv,
        load_kw=load,
        import_limit_kw=3 * 25 * 230 / 1000.0,
        export_limit_kw=7.0,
        degradation_cost_per_kwh=req.degradation_cost_per_kwh,
        spike_threshold_per_kwh=req.spike_threshold_per_kwh,
        max_cycles_per_day=req.max_cycles_per_day,
    )


def greedy(req: PlanRequest) -> list[float]:
    """Charge in the cheapest plugged slots until the first target is met."""
    v = req.vehicle
    need = max(0.0, req.targets[0].soc_kwh - v.soc_kwh)
    power = [0.0] * len(req.prices)
    order = sorted(
        (i for i, p in enumerate(req.prices) if req.plugged[i] and p.end <= req.targets[0].at),
        key=lambda i: (req.prices[i].import_per_kwh, i),
    )
    for i in order:
        if need <= 0:
            break
        e = min(need, v.eta_c * v.max_charge_kw * req.prices[i].hours)
        power[i] = e / (v.eta_c * req.prices[i].hours)
        need -= e
    return power


def timings(fn: Callable[[], object]) -> list[float]:
    fn()  # warm up
    out = []
    for _ in range(RUNS):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def p95(xs: list[float]) -> float:
    return sorted(xs)[int(0.95 * (len(xs) - 1))]


def main() -> None:
    rng = random.Random(7)
    print(f"planner solve time, {RUNS} runs each (ms)")
    print(f"{'slots':>6} {'minutes':>7} {'median':>8} {'p95':>8} {'greedy':>8} {'ratio':>7}")
    for n, minutes in ((48, 60), (96, 30), (192, 15)):
        req = make_request(n, minutes, rng)
        lp = timings(lambda req=req: plan(req))  # type: ignore[misc]
        base = timings(lambda req=req: greedy(req))  # type: ignore[misc]
        med, med_base = statistics.median(lp), statistics.median(base)
        print(
            f"{n:>6} {minutes:>7} {med:>8.2f} {p95(lp):>8.2f} {med_base:>8.3f} "
            f"{med / med_base:>6.0f}x"
        )
        if n == 192:
            one = med
    print("budget: 50 ms for 192 slots")
    site = site_request(make_request(192, 15, random.Random(7)))
    lp = timings(lambda: plan_site(site))
    print(
        f"site plan, 192 quarter-hours, 2 cars + PV + house + fuse: median {statistics.median(lp):.2f} ms, "
        f"p95 {p95(lp):.2f} ms ({statistics.median(lp) / one:.1f}x the one-car plan; budget 50 ms)"
    )


if __name__ == "__main__":
    main()
