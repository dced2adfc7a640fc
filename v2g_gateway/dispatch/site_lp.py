"""The site's linear program: every car, PV, the house and the grid connection, solved with HiGHS.

Kept apart from site.py (which decides the numbers: bounds, values, modes) so the solver plumbing
lives in one place. Per car k and slot i: charge c, discharge d (kW at the meter), stored energy E
at the slot's end, and m, the shortfall below a minimum charge power; per car two end-of-horizon
columns t1 (valued at the grid refill price, up to a bound) and t2 (valued at the PV price).
Per slot for the site: grid import g+, export g-, PV curtailed, import over the limit (a slack
the house alone may force, priced so high that the cars do all they can first), and the
demand-response shortfall. The site balance of every slot:

    g+ + over - g- = load - pv + curtailed + sum(c) - sum(d)

The matrix is assembled with numpy (no row-by-row Python), so 2 cars x 192 slots build in
about a millisecond; HiGHS does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np

from v2g_gateway.dispatch.lp_model import TIE_EPS, Vec, _new_solver
from v2g_gateway.errors import PlanError

INF = highspy.kHighsInf
MIN_PENALTY = 10.0  # per kWh short of a minimum charge power (min + PV, charge now)
OVER_PENALTY = 100.0  # per kWh imported above the connection limit (the house alone)


@dataclass(frozen=True, slots=True)
class CarLp:
    soc0: float
    eta_c: float
    eta_d: float
    c_max: Vec
    d_max: Vec
    e_lower: Vec
    e_upper: Vec
    drive: Vec  # kWh stored taken out per slot (trips); zeros in the daemon
    cost_d: Vec  # per kWh at the meter: wear minus any priority bonus
    cost_c: Vec  # per kWh at the meter: the same bonus, so it pays only on the net discharge
    floor_c: Vec  # soft minimum charge power (kW)
    surplus_c: Vec  # 1 where this car's charge must come from PV surplus (plus floor_c)
    cycle_blocks: tuple[tuple[int, int, float], ...]
    end_grid: float  # per kWh stored at the end, for the first `end_split` kWh
    end_pv: float  # per kWh beyond it
    end_split: float  # kWh (inf: all at end_grid)


@dataclass(frozen=True, slots=True)
class SiteLp:
    hours: Vec
    imp: Vec  # import price
    exp: Vec  # export price (at most the import price: the meter nets within a slot)
    pv: Vec
    load: Vec
    imp_max: Vec  # INF where unlimited
    exp_max: Vec
    dr_kw: Vec
    dr_penalty: Vec
    over_max: Vec  # what the house alone needs above the import limit
    cars: tuple[CarLp, ...]


@dataclass(frozen=True, slots=True)
class CarResult:
    charge_kw: Vec
    discharge_kw: Vec
    soc_end_kwh: Vec


@dataclass(frozen=True, slots=True)
class SiteResult:
    cars: tuple[CarResult, ...]
    import_kw: Vec
    export_kw: Vec
    curtailed_kw: Vec
    over_kw: Vec


class _Rows:
    """Rows in COO form, added a block at a time."""

    def __init__(self) -> None:
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.count = 0

    def block(self, lo: Vec, hi: Vec) -> np.ndarray:
        """Reserve len(lo) rows; returns their indexes."""
        idx = np.arange(self.count, self.count + len(lo))
        self.count += len(lo)
        self.lo.append(np.asarray(lo, dtype=np.float64))
        self.hi.append(np.asarray(hi, dtype=np.float64))
        return idx

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray | float) -> None:
        self.r.append(np.asarray(rows, dtype=np.int64))
        self.c.append(np.asarray(cols, dtype=np.int64))
        self.v.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), np.shape(rows)).copy())


def solve_site(lp: SiteLp) -> SiteResult:
    n = len(lp.hours)
    h = lp.hours
    ar = np.arange(n)
    tie = TIE_EPS * (1.0 + ar / max(n, 1))
    k_cols = 4 * n + 2
    site0 = k_cols * len(lp.cars)
    g_imp, g_exp, curt, over, drs = (site0 + j * n for j in range(5))
    ncol = site0 + 5 * n
    cost = np.zeros(ncol)
    lower = np.zeros(ncol)
    upper = np.zeros(ncol)
    rows = _Rows()

    cost[g_imp : g_imp + n] = (lp.imp + tie) * h
    cost[g_exp : g_exp + n] = (-lp.exp + tie) * h
    cost[curt : curt + n] = tie * h
    cost[over : over + n] = OVER_PENALTY * h
    cost[drs : drs + n] = lp.dr_penalty * h
    upper[g_imp : g_imp + n] = lp.imp_max
    upper[g_exp : g_exp + n] = lp.exp_max
    upper[curt : curt + n] = lp.pv
    upper[over : over + n] = lp.over_max
    upper[drs : drs + n] = lp.dr_kw

    balance = rows.block(lp.load - lp.pv, lp.load - lp.pv)
    rows.add(balance, g_imp + ar, 1.0)
    rows.add(balance, over + ar, 1.0)
    rows.add(balance, g_exp + ar, -1.0)
    rows.add(balance, curt + ar, -1.0)
    surplus_cars = [k for k, car in enumerate(lp.cars) if np.any(car.surplus_c > 0)]
    if surplus_cars:
        room = np.maximum(0.0, lp.pv - lp.load) + sum(
            (lp.cars[k].floor_c for k in surplus_cars), np.zeros(n)
        )
        pv_rows = rows.block(np.full(n, -INF), room)
    if np.any(lp.dr_kw > 0):
        dr_i = np.flatnonzero(lp.dr_kw > 0)
        dr_rows = rows.block(lp.dr_kw[dr_i], np.full(len(dr_i), INF))
        rows.add(dr_rows, drs + dr_i, 1.0)

    for k, car in enumerate(lp.cars):
        b = k * k_cols
        c0, d0, e0, m0, t1, t2 = b, b + n, b + 2 * n, b + 3 * n, b + 4 * n, b + 4 * n + 1
        cost[c0 : c0 + n] = (car.cost_c + tie) * h
        cost[d0 : d0 + n] = (car.cost_d + tie) * h
        cost[m0 : m0 + n] = MIN_PENALTY * h
        cost[t1] = -car.end_grid
        cost[t2] = -car.end_pv
        upper[c0 : c0 + n] = car.c_max
        upper[d0 : d0 + n] = car.d_max
        lower[e0 : e0 + n] = car.e_lower
        upper[e0 : e0 + n] = car.e_upper
        upper[m0 : m0 + n] = car.floor_c
        upper[t1] = car.end_split
        upper[t2] = INF
        # Energy: E_i - E_{i-1} - eta_c h c_i + h / eta_d d_i = -drive_i
        rhs = -car.drive.copy()
        rhs[0] += car.soc0
        energy = rows.block(rhs, rhs)
        rows.add(energy, e0 + ar, 1.0)
        rows.add(energy[1:], e0 + ar[:-1], -1.0)
        rows.add(energy, c0 + ar, -car.eta_c * h)
        rows.add(energy, d0 + ar, h / car.eta_d)
        # One charger does one thing at a time: within a slot it may split its time.
        both = np.flatnonzero((car.c_max > 1e-6) & (car.d_max > 1e-6))
        if len(both):
            excl = rows.block(np.full(len(both), -INF), np.ones(len(both)))
            rows.add(excl, c0 + both, 1.0 / car.c_max[both])
            rows.add(excl, d0 + both, 1.0 / car.d_max[both])
        floor_i = np.flatnonzero(car.floor_c > 0)
        if len(floor_i):
            fl = rows.block(car.floor_c[floor_i], np.full(len(floor_i), INF))
            rows.add(fl, c0 + floor_i, 1.0)
            rows.add(fl, m0 + floor_i, 1.0)
        end = rows.block(np.zeros(1), np.zeros(1))
        rows.add(np.repeat(end, 3), np.array([e0 + n - 1, t1, t2]), np.array([1.0, -1.0, -1.0]))
        for first, last, limit in car.cycle_blocks:
            cyc = rows.block(np.array([-INF]), np.array([limit]))
            span = np.arange(first, last)
            rows.add(np.repeat(cyc, len(span)), d0 + span, h[span])
        rows.add(balance, c0 + ar, -1.0)
        rows.add(balance, d0 + ar, 1.0)
        if surplus_cars and k in surplus_cars:
            on = np.flatnonzero(car.surplus_c > 0)
            rows.add(pv_rows[on], c0 + on, 1.0)
        if np.any(lp.dr_kw > 0):
            rows.add(dr_rows, d0 + dr_i, 1.0)

    x = _run(rows, cost, lower, upper, ncol)
    cars = tuple(
        CarResult(
            charge_kw=x[k * k_cols : k * k_cols + n],
            discharge_kw=x[k * k_cols + n : k * k_cols + 2 * n],
            soc_end_kwh=x[k * k_cols + 2 * n : k * k_cols + 3 * n],
        )
        for k in range(len(lp.cars))
    )
    return SiteResult(
        cars=cars,
        import_kw=x[g_imp : g_imp + n],
        export_kw=x[g_exp : g_exp + n],
        curtailed_kw=x[curt : curt + n],
        over_kw=x[over : over + n],
    )


def _run(rows: _Rows, cost: Vec, lower: Vec, upper: Vec, ncol: int) -> Vec:
    r = np.concatenate(rows.r) if rows.r else np.zeros(0, dtype=np.int64)
    c = np.concatenate(rows.c) if rows.c else np.zeros(0, dtype=np.int64)
    v = np.concatenate(rows.v) if rows.v else np.zeros(0)
    keep = v != 0.0
    r, c, v = r[keep], c[keep], v[keep]
    order = np.lexsort((c, r))
    r, c, v = r[order], c[order], v[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=rows.count))])
    model = highspy.HighsLp()
    model.num_col_ = ncol
    model.num_row_ = rows.count
    model.col_cost_ = cost
    model.col_lower_ = lower
    model.col_upper_ = upper
    model.row_lower_ = np.concatenate(rows.lo)
    model.row_upper_ = np.concatenate(rows.hi)
    model.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    model.a_matrix_.num_col_ = ncol
    model.a_matrix_.num_row_ = rows.count
    model.a_matrix_.start_ = starts.astype(np.int32)
    model.a_matrix_.index_ = c.astype(np.int32)
    model.a_matrix_.value_ = v
    solver = _new_solver()
    solver.setOptionValue("output_flag", False)
    solver.setOptionValue("threads", 1)
    solver.setOptionValue("random_seed", 0)
    if solver.passModel(model) == highspy.HighsStatus.kError:
        raise PlanError("the site plan could not be built (inconsistent bounds)")
    solver.run()
    status = solver.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise PlanError(f"no site plan found: solver says {solver.modelStatusToString(status)}")
    return np.asarray(solver.getSolution().col_value, dtype=np.float64)
