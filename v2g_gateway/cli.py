"""`v2g-gateway` command line. User mistakes end as one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from v2g_gateway import __version__
from v2g_gateway.cli_config import preflight
from v2g_gateway.config import load_config
from v2g_gateway.errors import ConfigError, GatewayError
from v2g_gateway.log import setup_logging

EXIT_USAGE = 2

# Sub-command groups that live in their own modules, each with add_subparsers(sub).
_PLUGINS = (
    "v2g_gateway.cli_config",
    "v2g_gateway.cli_prices",
    "v2g_gateway.cli_backtest",
    "v2g_gateway.cli_ocpp",
    "v2g_gateway.cli_charger",
    "v2g_gateway.cli_state",
)


def _cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    warnings = preflight(cfg, Path(args.config))  # what `config check` calls an error stops
    setup_logging(cfg.gateway.log_format, cfg.gateway.log_level)
    for w in warnings:  # e.g. a secret file others can read
        structlog.get_logger("v2g_gateway.config").warning(w.line(args.config))
    from v2g_gateway.app import run_daemon

    try:
        return asyncio.run(run_daemon(cfg))
    except ConfigError as exc:  # found at start (a port taken, ...): name the file too
        if exc.source != "config":
            raise
        raise ConfigError(args.config, exc.key, exc.problem) from None


def _cmd_demo(args: argparse.Namespace) -> int:
    from v2g_gateway.demo import run_demo

    return run_demo(args)


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
    demo.add_argument(
        "--ocpp",
        choices=("2.0.1", "2.1"),
        default="2.0.1",
        help="the OCPP version the simulated charger speaks (2.1: setpoints, V2X parameters)",
    )
    demo.add_argument(
        "--mqtt",
        metavar="HOST[:PORT]",
        default=None,
        help="publish the demo on this broker (Home Assistant sees it); its retained topics are "
        "removed at the end. Default: no broker",
    )
    demo.set_defaults(func=_cmd_demo)

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
