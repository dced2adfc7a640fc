"""A home in the backtest: a CSV of house load and PV (`start,load_w,pv_w`, UTC ISO starts, any
slot length), laid onto the price slots, and the money of a slot counted at the meter.

With a home every strategy pays for what the meter sees: the house load minus PV plus what the
car takes minus what it gives, imported at the import price or exported at the export price (PV
above the export limit is curtailed). Without one the meter sees only the car.
"""

from __future__ import annotations

import bisect
import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from v2g_gateway.backtest.results import SlotRecord
from v2g_gateway.backtest.stays import Run
from v2g_gateway.config import Config
from v2g_gateway.dispatch.plan_types import PlanRequest
from v2g_gateway.dispatch.site_types import EndValue, SiteCar, SiteRequest
from v2g_gateway.errors import HomeError
from v2g_gateway.model import UserPriceSlot


@dataclass(frozen=True, slots=True)
class HomeRow:
    start: datetime
    end: datetime
    load_w: float
    pv_w: float


@dataclass(frozen=True, slots=True)
class HomeSeries:
    """Mean house load and PV (kW) per price slot."""

    load_kw: tuple[float, ...]
    pv_kw: tuple[float, ...]


def _time(value: str, where: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise HomeError(f"{where}: start {value!r} is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise HomeError(f"{where}: start {value!r} has no offset (use UTC, e.g. ...Z)")
    return t


def _watts(value: str, column: str, where: str) -> float:
    try:
        w = float(value)
    except ValueError:
        raise HomeError(f"{where}: {column} {value!r} is not a number") from None
    if not (0.0 <= w < 1e7):
        raise HomeError(f"{where}: {column} {w:g} W is out of range (0 .. 10 MW)")
    return w


def load_home_csv(path: Path) -> list[HomeRow]:
    """Rows in time order; each lasts until the next row starts (the last as long as the one
    before). Raises HomeError naming the line for anything unreadable."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise HomeError(f"--home {path}: cannot read: {exc.strerror or exc}") from None
    reader = csv.DictReader(text.splitlines())
    need = {"start", "load_w", "pv_w"}
    if reader.fieldnames is None or not need <= {f.strip() for f in reader.fieldnames}:
        raise HomeError(f"--home {path}: expected the columns start,load_w,pv_w")
    raw: list[tuple[datetime, float, float]] = []
    for n, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "") for k, v in row.items() if k is not None}
        where = f"--home {path} line {n}"
        raw.append(
            (
                _time(row["start"], where),
                _watts(row["load_w"], "load_w", where),
                _watts(row["pv_w"], "pv_w", where),
            )
        )
    if len(raw) < 2:
        raise HomeError(f"--home {path}: needs at least two rows")
    raw.sort(key=lambda r: r[0])
    rows: list[HomeRow] = []
    for i, (t, load, pv) in enumerate(raw):
        end = raw[i + 1][0] if i + 1 < len(raw) else t + (t - raw[i - 1][0])
        if end <= t:
            raise HomeError(f"--home {path}: two rows start at {t.isoformat()}")
        rows.append(HomeRow(t, end, load, pv))
    return rows


def covered(rows: Sequence[HomeRow], prices: Sequence[UserPriceSlot]) -> list[UserPriceSlot]:
    """The price slots inside the home file's period."""
    return [p for p in prices if rows[0].start <= p.start and p.end <= rows[-1].end]


def align(rows: Sequence[HomeRow], prices: Sequence[UserPriceSlot]) -> HomeSeries:
    """Energy-weighted means of the home rows over every price slot."""
    starts = [r.start for r in rows]
    load: list[float] = []
    pv: list[float] = []
    for p in prices:
        i = max(0, bisect.bisect_right(starts, p.start) - 1)
        e_load = e_pv = seen = 0.0
        while i < len(rows) and rows[i].start < p.end:
            r = rows[i]
            overlap = (min(r.end, p.end) - max(r.start, p.start)).total_seconds()
            if overlap > 0:
                e_load += r.load_w * overlap
                e_pv += r.pv_w * overlap
                seen += overlap
            i += 1
        if seen < 0.5 * (p.end - p.start).total_seconds():
            raise HomeError(f"the home file does not cover {p.start.isoformat()}")
        load.append(e_load / seen / 1000.0)
        pv.append(e_pv / seen / 1000.0)
    return HomeSeries(tuple(load), tuple(pv))


def account(
    run: Run,
    p: UserPriceSlot,
    plugged: bool,
    charge_kw: float,
    discharge_kw: float,
    home: HomeSeries | None,
    i: int,
    export_limit_kw: float | None,
) -> None:
    """Count one slot at the meter (the car's SoC is the caller's)."""
    h = p.hours
    load = 0.0 if home is None else home.load_kw[i]
    pv = 0.0 if home is None else home.pv_kw[i]
    net = load - pv + charge_kw - discharge_kw
    grid_in, grid_out = max(0.0, net), max(0.0, -net)
    if export_limit_kw is not None:
        grid_out = min(grid_out, export_limit_kw)  # the rest of the PV is curtailed
    run.cost += p.import_per_kwh * grid_in * h
    run.revenue += p.export_per_kwh * grid_out * h
    run.charged += charge_kw * h
    run.exported += discharge_kw * h
    run.records.append(
        SlotRecord(
            p.start,
            p.end,
            plugged,
            charge_kw,
            discharge_kw,
            run.soc,
            p.import_per_kwh,
            p.export_per_kwh,
            load,
            pv,
            grid_in,
            grid_out,
        )
    )


def as_site(
    req: PlanRequest,
    cfg: Config,
    home: HomeSeries | None,
    i: int,
    end_value: EndValue | None = None,
) -> SiteRequest:
    """The one-car request of the backtest as the daemon plans it: the whole site."""
    n = len(req.prices)
    ev = end_value
    if req.terminal_value_per_kwh is not None:
        ev = EndValue(req.terminal_value_per_kwh)
    return SiteRequest(
        now=req.now,
        prices=req.prices,
        cars=[SiteCar(req.vehicle, req.plugged, req.targets, v2g_enabled=req.v2g_enabled)],
        pv_kw=None if home is None else home.pv_kw[i : i + n],
        load_kw=None if home is None else home.load_kw[i : i + n],
        import_limit_kw=cfg.home.import_limit_kw(),
        export_limit_kw=cfg.home.export_limit_kw(cfg.preferences.grid_export_limit_w),
        v2h_only=req.v2h_only,
        degradation_cost_per_kwh=req.degradation_cost_per_kwh,
        spike_threshold_per_kwh=req.spike_threshold_per_kwh,
        dr_events=req.dr_events,
        max_cycles_per_day=req.max_cycles_per_day,
        end_value=ev,
        currency=req.currency,
    )
