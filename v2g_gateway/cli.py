"""`v2g-gateway` command line. User mistakes end as one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import tomli_w

from v2g_gateway import __version__
from v2g_gateway.config import default_config_dict, load_config, parse_config
from v2g_gateway.errors import GatewayError
from v2g_gateway.log import setup_logging

EXIT_USAGE = 2

# Sub-command groups that live in their own modules, each with add_subparsers(sub).
_PLUGINS = (
    "v2g_gateway.cli_prices",
    "v2g_gateway.cli_backtest",
    "v2g_gateway.cli_ocpp",
    "v2g_gateway.cli_charger",
)


def _cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    setup_logging(cfg.gateway.log_format, cfg.gateway.log_level)
    from v2g_gateway.app import run_daemon

    return asyncio.run(run_daemon(cfg))


def _cmd_demo(args: argparse.Namespace) -> int:
    from v2g_gateway.demo import run_demo

    return run_demo(args)


def _cmd_config_init(args: argparse.Namespace) -> int:
    text = tomli_w.dumps(default_config_dict())
    parse_config(default_config_dict(), "<default>")  # what we write must itself be valid
    if args.output is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if out.exists() and not args.force:
        print(f"{out}: exists; use --force to overwrite", file=sys.stderr)
        return EXIT_USAGE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    out.chmod(0o600)  # it holds the charger password
    print(f"wrote {out}")
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    print(
        f"{args.config}: OK (gateway {cfg.gateway.id!r}, {len(cfg.chargers)} charger(s), "
        f"{len(cfg.vehicles)} vehicle(s), prices from {cfg.prices.source})"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="v2g-gateway",
        description="Local OCPP 2.0.1 vehicle-to-grid and vehicle-to-home gateway.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the gateway daemon")
    run.add_argument("--config", required=True, help="path to the TOML config file")
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser(
        "demo", help="a simulated day: gateway, bidirectional charger, EV and real prices"
    )
    demo.add_argument(
        "--scenario",
        default=None,
        help="scenario name (default, week) or TOML file (see simulators/scenarios/)",
    )
    demo.add_argument(
        "--speed", type=float, default=None, help="clock speed-up (default: the scenario's)"
    )
    demo.add_argument("--output", default="demo-output", help="folder for the picture and summary")
    demo.add_argument("--quiet", action="store_true", help="no progress line")
    demo.set_defaults(func=_cmd_demo)

    config = sub.add_parser("config", help="write or check a config file")
    csub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    init = csub.add_parser("init", help="write a complete default config")
    init.add_argument("--output", default=None, help="file to write (default: stdout)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(func=_cmd_config_init)
    check = csub.add_parser("check", help="validate a config file")
    check.add_argument("--config", required=True)
    check.set_defaults(func=_cmd_config_check)

    for name in _PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        add: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = (
            module.add_subparsers
        )
        add(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except GatewayError as exc:
        print(f"v2g-gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
