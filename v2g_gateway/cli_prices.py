"""`v2g-gateway prices load|show`: look at normalised prices without running the daemon."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from v2g_gateway.config import load_config
from v2g_gateway.errors import GatewayError
from v2g_gateway.model import PriceSlot, UserPriceSlot
from v2g_gateway.prices.compose import compose
from v2g_gateway.prices.csvfile import VARIANTS
from v2g_gateway.prices.load import FORMATS, load_price_file
from v2g_gateway.prices.source import cache_key
from v2g_gateway.prices.tariff import tariff_prices

EXIT_USAGE = 2
STATE_FILE = "state.sqlite"  # the daemon's file under [gateway] state_dir


def add_subparsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("prices", help="load a price file or show the prices the daemon holds")
    psub = p.add_subparsers(dest="prices_command", required=True, metavar="ACTION")
    load = psub.add_parser("load", help="print the normalised slots of a recorded response or CSV")
    load.add_argument("file", help="the price file")
    load.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    load.add_argument("--area", default=None, help="area to pick (Nord Pool, Energi Data Service)")
    load.add_argument(
        "--csv-format",
        default="auto",
        choices=VARIANTS,
        help="CSV variant, as [prices] csv_format (default auto: told apart by the file)",
    )
    load.add_argument("--json", action="store_true", help="a JSON list of {start, end, price}")
    load.set_defaults(func=cmd_load)
    show = psub.add_parser("show", help="today's and tomorrow's user prices as a table")
    show.add_argument("--config", required=True, help="the gateway TOML config")
    show.set_defaults(func=cmd_show)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def cmd_load(args: argparse.Namespace) -> int:
    try:
        slots = load_price_file(Path(args.file), args.fmt, args.area, args.csv_format)
    except GatewayError as exc:
        print(f"v2g-gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        rows = [{"start": _iso(s.start), "end": _iso(s.end), "price": s.price} for s in slots]
        json.dump(rows, sys.stdout)
        sys.stdout.write("\n")
        return 0
    print("start,end,price,currency")
    for s in slots:
        print(f"{_iso(s.start)},{_iso(s.end)},{s.price:.6g},{s.currency}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
        tz = cfg.gateway.tz
        today = datetime.now(tz).date()
        start = datetime.combine(today, time(0), tzinfo=tz)
        end = datetime.combine(today + timedelta(days=2), time(0), tzinfo=tz)
        spot: dict[datetime, PriceSlot] = {}
        if cfg.prices.source == "tariff":
            user = tariff_prices(cfg.prices.tariff, tz, start, end)
        else:
            db = cfg.gateway.state_dir / STATE_FILE
            if not db.exists():
                print(
                    f"v2g-gateway: {db}: no state database (has the daemon run?)", file=sys.stderr
                )
                return EXIT_USAGE
            from v2g_gateway.store.db import Store

            store = Store.open(db, cfg)
            try:
                slots = store.load_price_slots(cache_key(cfg.prices), start, end)
            finally:
                store.close()
            spot = {s.start: s for s in slots}
            user = compose(slots, cfg.prices, tz)
    except GatewayError as exc:
        print(f"v2g-gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _table(user, spot, cfg.prices.currency, tz)
    return 0


def _table(
    user: list[UserPriceSlot], spot: dict[datetime, PriceSlot], cur: str, tz: ZoneInfo
) -> None:
    if not user:
        print("no prices held for today and tomorrow")
        return
    print(
        f"{'start (' + tz.key + ')':<28} {'min':>4} {'spot':>9} {'import':>9} {'export':>9}  {cur}/kWh"
    )
    for u in user:
        s = spot.get(u.start)
        shown = u.start.astimezone(tz)
        sp = f"{s.price:9.4f}" if s is not None else f"{'':9}"
        mins = int(u.hours * 60)
        print(
            f"{shown:%a %Y-%m-%d %H:%M %Z}".ljust(28)
            + f" {mins:>4} {sp} {u.import_per_kwh:9.4f} {u.export_per_kwh:9.4f}"
        )
