"""The planner's linear program, built as sparse arrays and solved with HiGHS.

Kept apart from planner.py so that the economics and safety rules (which bounds, which bonuses)
live in one place and the solver plumbing in another. Columns are grouped by kind, n each:
charge c, discharge to the home dh, discharge exported dx, SoC at slot end E, DR shortfall s.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt

from v2g_gateway.errors import PlanError

Vec = npt.NDArray[np.float64]
INF = highspy.kHighsInf


@dataclass(frozen=True, slots=True)
class LpInput:
    """Everything per slot the LP needs; the planner decides the numbers, this module solves."""

    hours: Vec
    soc0: float
    eta_c: float
    eta_d: float
    c_max: Vec
    dh_max: Vec
    dx_max: Vec
    d_max: Vec  # combined discharge limit (dh + dx)
    e_lower: Vec
    e_upper: Vec
    cost_c: Vec  # per kWh at the meter
    value_dh: Vec  # per kWh at the meter (negative cost)
    value_dx: Vec
    dr_request_kw: Vec
    dr_penalty: Vec
    terminal_value: float
    cycle_blocks: tuple[tuple[int, int, float], ...]  # (first, end, max kWh discharged)


@dataclass(frozen=True, slots=True)
class LpResult:
    charge_kw: Vec
    home_kw: Vec
    export_kw: Vec
    soc_end_kwh: Vec


# Ties (equal prices) are broken towards earlier slots by a cost far below a cent, so plans
# stay stable from one replan to the next instead of hopping between equivalent slots.
TIE_EPS = 1e-4


_banner_lock = threading.Lock()
_banner_done = False


def _new_solver() -> highspy.Highs:
    """A quiet HiGHS instance: its C++ banner goes to fd 1 on the first one and would corrupt
    `--json` output, so that first construction runs with fd 1 pointed at /dev/null."""
    global _banner_done
    if _banner_done:
        return highspy.Highs()  # type: ignore[no-untyped-call]
    with _banner_lock:
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            solver = highspy.Highs()  # type: ignore[no-untyped-call]
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _banner_done = True
    return solver


def solve(lp_in: LpInput) -> LpResult:
    n = len(lp_in.hours)
    h = lp_in.hours
    tie = TIE_EPS * (1.0 + np.arange(n, dtype=np.float64) / max(n, 1))
    cost = np.concatenate(
        [
            (lp_in.cost_c + tie) * h,
            (-lp_in.value_dh + tie) * h,
            (-lp_in.value_dx + tie) * h,
            np.zeros(n),
            lp_in.dr_penalty * h,
        ]
    )
    cost[4 * n - 1] -= lp_in.terminal_value
    lower = np.concatenate([np.zeros(3 * n), lp_in.e_lower, np.zeros(n)])
    upper = np.concatenate(
        [lp_in.c_max, lp_in.dh_max, lp_in.dx_max, lp_in.e_upper, lp_in.dr_request_kw]
    )

    starts: list[int] = [0]
    index: list[int] = []
    value: list[float] = []
    row_lo: list[float] = []
    row_hi: list[float] = []

    def row(cols: list[int], vals: list[float], lo: float, hi: float) -> None:
        index.extend(cols)
        value.extend(vals)
        starts.append(len(index))
        row_lo.append(lo)
        row_hi.append(hi)

    c0, dh0, dx0, e0, s0 = 0, n, 2 * n, 3 * n, 4 * n
    for i in range(n):
        hi_ = float(h[i])
        out = hi_ / lp_in.eta_d
        cols = [e0 + i, c0 + i, dh0 + i, dx0 + i]
        vals = [1.0, -lp_in.eta_c * hi_, out, out]
        rhs = lp_in.soc0
        if i > 0:
            cols.append(e0 + i - 1)
            vals.append(-1.0)
            rhs = 0.0
        row(cols, vals, rhs, rhs)
        d_max = float(lp_in.d_max[i])
        if d_max > 0.0:
            # One charger does one thing at a time: within a slot it may split its time.
            cols, vals = [dh0 + i, dx0 + i], [1.0 / d_max, 1.0 / d_max]
            if lp_in.c_max[i] > 0.0:
                cols.append(c0 + i)
                vals.append(1.0 / float(lp_in.c_max[i]))
            row(cols, vals, -INF, 1.0)
        if lp_in.dr_request_kw[i] > 0.0:
            row([s0 + i, dh0 + i, dx0 + i], [1.0, 1.0, 1.0], float(lp_in.dr_request_kw[i]), INF)
    for first, end, limit in lp_in.cycle_blocks:
        cols = [dh0 + i for i in range(first, end)] + [dx0 + i for i in range(first, end)]
        vals = [float(h[i]) for i in range(first, end)] * 2
        row(cols, vals, -INF, limit)

    model = highspy.HighsLp()
    model.num_col_ = 5 * n
    model.num_row_ = len(row_lo)
    model.col_cost_ = cost
    model.col_lower_ = lower
    model.col_upper_ = upper
    model.row_lower_ = np.array(row_lo, dtype=np.float64)
    model.row_upper_ = np.array(row_hi, dtype=np.float64)
    model.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    model.a_matrix_.num_col_ = 5 * n
    model.a_matrix_.num_row_ = len(row_lo)
    model.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    model.a_matrix_.index_ = np.array(index, dtype=np.int32)
    model.a_matrix_.value_ = np.array(value, dtype=np.float64)

    solver = _new_solver()
    solver.setOptionValue("output_flag", False)
    solver.setOptionValue("threads", 1)
    solver.setOptionValue("random_seed", 0)
    status = solver.passModel(model)
    if status == highspy.HighsStatus.kError:
        raise PlanError("the planning problem could not be built (inconsistent bounds)")
    solver.run()
    model_status = solver.getModelStatus()
    if model_status != highspy.HighsModelStatus.kOptimal:
        raise PlanError(f"no plan found: solver says {solver.modelStatusToString(model_status)}")
    x = np.asarray(solver.getSolution().col_value, dtype=np.float64)
    return LpResult(
        charge_kw=x[c0:dh0],
        home_kw=x[dh0:dx0],
        export_kw=x[dx0:e0],
        soc_end_kwh=x[e0:s0],
    )
