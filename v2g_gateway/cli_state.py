"""`v2g-gateway state check|backup|restore`: the state file's health and the way back.

The gateway refuses to start on an empty or damaged state file rather than starting empty over
the user's data; these commands say what is wrong, make a copy, and put a backup back
(docs/operations.md, "State file and backups").
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from v2g_gateway.config import load_config
from v2g_gateway.errors import StoreError
from v2g_gateway.store.backup import (
    backup_dir,
    backup_file,
    check_file,
    list_backups,
    made_at,
    restore,
)


def _state_file(args: argparse.Namespace) -> Path:
    from v2g_gateway.app import STATE_FILE

    cfg = load_config(args.config)
    return cfg.gateway.state_dir / STATE_FILE


def _backups_line(path: Path) -> str:
    backups = list_backups(path)
    if not backups:
        return f"no backups in {backup_dir(path)}"
    when = made_at(backups[0])
    at = "" if when is None else f", made {when.isoformat()}"
    return f"{len(backups)} backups in {backup_dir(path)}, newest {backups[0].name}{at}"


def cmd_check(args: argparse.Namespace) -> int:
    path = _state_file(args)
    if not path.exists():
        raise StoreError(f"{path}: no state file yet (the gateway makes one at its first start)")
    checked = check_file(path, full=True)
    size_kb = path.stat().st_size / 1024
    print(f"{path}: ok (integrity check passed, schema {checked.schema}, {size_kb:.0f} KB)")
    print(_backups_line(path))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    path = _state_file(args)
    if not path.exists():
        raise StoreError(f"{path}: no state file to back up")
    target = backup_file(path, datetime.now(UTC))
    print(f"{path}: backed up to {target}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    path = _state_file(args)
    source = Path(args.source) if args.source else None
    used, aside = restore(path, source, datetime.now(UTC))
    print(f"{path}: restored from {used}")
    if aside is not None:
        print(f"the file it replaced is kept as {aside}")
    return 0


def add_subparsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("state", help="the state file: check it, back it up, restore a backup")
    ssub = p.add_subparsers(dest="state_command", required=True, metavar="ACTION")
    check = ssub.add_parser("check", help="full integrity check and schema version; lists backups")
    backup = ssub.add_parser("backup", help="copy the state file into the backups folder now")
    rest = ssub.add_parser(
        "restore",
        help="put the newest good backup (or --from FILE) in place; the gateway must be stopped",
    )
    rest.add_argument("--from", dest="source", default=None, help="the backup file to restore")
    for cmd, func in ((check, cmd_check), (backup, cmd_backup), (rest, cmd_restore)):
        cmd.add_argument("--config", required=True, help="path to the TOML config file")
        cmd.set_defaults(func=func)
