"""`v2g-gateway backtest`: replay a price file through the planner and compare with baselines."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, time
from pathlib import Path

from v2g_gateway.backtest import BacktestResult, Trip, compose_prices, load_prices, run_backtest
from v2g_gateway.backtest.home import load_home_csv
from v2g_gateway.config import load_config, parse_hhmm
from v2g_gateway.errors import GatewayError

EXIT_USAGE = 2


def add_subparsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay a price history through the planner",
        description="Run the planner day by day over a price file with the config's first "
        "vehicle, its departure plans and a daily trip; compare with dumb charging and "
        "cheapest-slot charging.",
    )
    p.add_argument("--config", required=True, help="the gateway TOML config")
    p.add_argument("--prices", required=True, help="a price file (e.g. an ENTSO-E CSV export)")
    p.add_argument("--format", required=True, help="price file format (e.g. csv, entsoe)")
    p.add_argument("--from", dest="first", default=None, help="first day, YYYY-MM-DD (local)")
    p.add_argument("--to", dest="last", default=None, help="last day, YYYY-MM-DD (local)")
    p.add_argument("--json", action="store_true", help="print the result and every slot as JSON")
    p.add_argument("--plot", default=None, help="write a PNG picture of prices, power and SoC")
    p.add_argument("--arrive", default="18:00", help="daily arrival time HH:MM (default 18:00)")
    p.add_argument(
        "--depart", default="07:00", help="departure HH:MM on days without a departure plan"
    )
    p.add_argument("--trip-kwh", type=float, default=10.0, help="energy per daily trip (kWh)")
    p.add_argument(
        "--home",
        default=None,
        help="a CSV start,load_w,pv_w (UTC ISO starts, any slot length): the house and its PV",
    )
    p.add_argument(
        "--no-foresight",
        action="store_true",
        help="skip the perfect-foresight plan (one LP over the whole history)",
    )
    p.set_defaults(func=cmd_backtest)


def _day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _UsageError(f"{flag}: expected a date as YYYY-MM-DD, got {value!r}") from None


def _hhmm(value: str, flag: str) -> time:
    try:
        return parse_hhmm(value)
    except ValueError as exc:
        raise _UsageError(f"{flag}: {exc}") from None


class _UsageError(Exception):
    pass


def cmd_backtest(args: argparse.Namespace) -> int:
    try:
        first, last = _day(args.first, "--from"), _day(args.last, "--to")
        if first and last and last < first:
            raise _UsageError(f"--to {last} is before --from {first}")
        if not 0 <= args.trip_kwh < 1000:
            raise _UsageError(f"--trip-kwh: expected 0..1000 kWh, got {args.trip_kwh}")
        trip = Trip(_hhmm(args.arrive, "--arrive"), _hhmm(args.depart, "--depart"), args.trip_kwh)
        cfg = load_config(args.config)
        spot = load_prices(Path(args.prices), args.format, cfg.prices.area)
        prices = compose_prices(spot, cfg.prices, cfg.gateway.tz)
        home = load_home_csv(Path(args.home)) if args.home else None
        result = run_backtest(
            cfg, prices, trip, first, last, home_rows=home, foresight=not args.no_foresight
        )
        if args.plot:
            write_plot(result, Path(args.plot))
    except (_UsageError, GatewayError) as exc:
        print(f"v2g-gateway backtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        json.dump(result.to_json(with_slots=True), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(result.summary())
    return 0


def write_plot(result: BacktestResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.slots
    t = [x.start for x in s]
    fig, (ax_p, ax_w, ax_e) = plt.subplots(3, 1, figsize=(14, 8), sharex=True)
    ax_p.step(t, [x.import_per_kwh for x in s], where="post", lw=0.6, label="import")
    ax_p.step(t, [x.export_per_kwh for x in s], where="post", lw=0.6, label="export")
    ax_p.set_ylabel("per kWh")
    ax_p.legend(loc="upper right")
    ax_w.step(t, [x.charge_kw for x in s], where="post", lw=0.6, color="tab:green", label="charge")
    ax_w.step(
        t, [-x.discharge_kw for x in s], where="post", lw=0.6, color="tab:red", label="discharge"
    )
    ax_w.set_ylabel("kW")
    ax_w.legend(loc="upper right")
    ax_e.plot(t, [x.soc_kwh for x in s], lw=0.6, color="tab:blue")
    ax_e.set_ylabel("SoC kWh")
    fig.suptitle(
        f"{result.vehicle_id} {result.first}..{result.last}: saves "
        f"{result.per_year(result.saving_vs_dumb):.0f}/year vs dumb, "
        f"{result.per_year(result.saving_vs_cheapest):.0f}/year vs cheapest-slot charging"
    )
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise _UsageError(f"--plot {path}: cannot write: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
