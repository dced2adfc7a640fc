"""`v2g-gateway config init|check`: a safe commented start, and every mistake before `run`."""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path

from v2g_gateway.cli_ocpp import generate_password
from v2g_gateway.config import Config, parse_config
from v2g_gateway.config_check import CheckContext, Finding, errors, run_checks
from v2g_gateway.config_init import DEFAULT_CHARGER, InitValues, render
from v2g_gateway.config_load import config_problems
from v2g_gateway.errors import ConfigError

EXIT_USAGE = 2
CHARGER_CREDENTIAL = f"charger-{DEFAULT_CHARGER}"
WEB_CREDENTIAL = "web-password"


def add_subparsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = sub.add_parser("config", help="write or check a config file")
    csub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    init = csub.add_parser(
        "init",
        help="write a commented starting config (and the charger's password as a credential)",
    )
    init.add_argument(
        "--output",
        default=None,
        help="file to write; its charger password goes to credentials/ beside it "
        "(default: print the config, password inline)",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing config file")
    init.set_defaults(func=cmd_init)
    chk = csub.add_parser("check", help="list every mistake in a config file, one line each")
    chk.add_argument("--config", required=True)
    chk.set_defaults(func=cmd_check)


def _write_private(path: Path, text: str) -> None:
    """A root-only file, created with its mode (never readable by others, not even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def cmd_init(args: argparse.Namespace) -> int:
    if args.output is None:
        text = render(InitValues(password=generate_password(), web_password=generate_password()))
        parse_config(tomllib.loads(text), "<config init>")  # what we print must itself be valid
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if out.exists() and not args.force:
        print(f"v2g-gateway: {out}: exists; use --force to overwrite", file=sys.stderr)
        return EXIT_USAGE
    text = render(InitValues(credential=CHARGER_CREDENTIAL, web_credential=WEB_CREDENTIAL))
    parse_config(tomllib.loads(text), "<config init>")
    folder = out.parent / "credentials"
    secrets = [
        (folder / CHARGER_CREDENTIAL, "the charger's password"),
        (folder / WEB_CREDENTIAL, "the web app's password"),
    ]
    kept: list[bool] = []
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)
        for secret, _what in secrets:
            kept.append(secret.exists())
            if not kept[-1]:
                _write_private(secret, generate_password() + "\n")
        # No secret inside: readable by the service's dynamic user (and by you, to edit).
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(out)
    except OSError as exc:
        where = exc.filename or out
        print(f"v2g-gateway: {where}: cannot write: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {out} (no secrets inside; readable by the service)")
    for (secret, what), was in zip(secrets, kept, strict=True):
        if was:
            print(f"kept {secret} ({what}; unchanged)")
        else:
            print(f"wrote {secret} ({what}; only its owner can read it)")
    print(f"next: edit {out.name}, then: v2g-gateway config check --config {out}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    path = Path(args.config)
    cfg, problems = config_problems(path)
    if cfg is None:
        for p in problems:
            print(f"v2g-gateway: {p}", file=sys.stderr)
        return EXIT_USAGE
    findings = run_checks(CheckContext(cfg, path))
    for f in findings:
        stream = sys.stderr if f.level == "error" else sys.stdout
        print(("v2g-gateway: " if f.level == "error" else "") + f.line(str(path)), file=stream)
    if errors(findings):
        return EXIT_USAGE
    print(
        f"{path}: OK (gateway {cfg.gateway.id!r}, {len(cfg.chargers)} charger(s), "
        f"{len(cfg.vehicles)} vehicle(s), prices from {cfg.prices.source})"
    )
    return 0


def preflight(cfg: Config, cfg_path: Path) -> list[Finding]:
    """What `run` refuses before it binds anything: the error-level checks, as the daemon.
    Returns the warnings, for the daemon to log once logging is set up."""
    found = run_checks(CheckContext(cfg, cfg_path, purpose="start"))
    bad = errors(found)
    if bad:
        first = bad[0]
        more = f" (+{len(bad) - 1} more; 'config check' lists all)" if len(bad) > 1 else ""
        raise ConfigError(str(cfg_path), first.key, first.message + more)
    return [f for f in found if f.level == "warning"]
