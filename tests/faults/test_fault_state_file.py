"""An empty or damaged state file: the real daemon refuses it with one line, and a backup restores.

Before, a zero-length state file started the gateway as new (overrides and history silently
gone) and random damage inside it gave a raw traceback and exit 1.
"""

from __future__ import annotations

import contextlib
import io
import random
import signal
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import tomli_w
from fault_support import Notify, config_dict, free_port, integrity, start_daemon

from v2g_gateway.cli import main
from v2g_gateway.config import parse_config
from v2g_gateway.model import Override, OverrideKind
from v2g_gateway.store import Store

EXIT_USAGE = 2


def setup(tmp_path: Path) -> tuple[Path, Path]:
    """A config and a state file holding the user's override (what must never be lost)."""
    d = config_dict(tmp_path / "state", ocpp={"port": free_port()})
    config = tmp_path / "gateway.toml"
    config.write_text(tomli_w.dumps(d))
    config.chmod(0o600)  # it holds the charger's password inline (else a warning line too)
    state = tmp_path / "state" / "state.sqlite"
    now = datetime.now(UTC)
    store = Store.open(state, parse_config(d))
    store.put_override(
        Override("keep-me", "car", OverrideKind.CHARGE_NOW, now, now + timedelta(days=2), 80.0)
    )
    store.close()
    return config, state


def damage(state: Path, table: str = "overrides") -> None:
    """Random bytes over the start of a table's page: a bad sector, a torn SD-card write."""
    with sqlite3.connect(state) as db:
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()
    db.close()
    data = bytearray(state.read_bytes())
    page_size = 4096
    offset = (root[0] - 1) * page_size
    data[offset : offset + 64] = random.Random(table).randbytes(64)
    state.write_bytes(bytes(data))


def refused(config: Path, notify: Notify, log: Path) -> str:
    proc = start_daemon(config, notify, log)
    try:
        assert proc.wait(30) == EXIT_USAGE
    finally:
        if proc.poll() is None:
            proc.kill()
    return log.read_text()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The command line in this process (the daemon runs are the real processes here)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def one_line_naming(out: str, state: Path) -> str:
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert str(state) in lines[0] and "Traceback" not in out
    return lines[0]


def test_zero_length_state_file_is_refused_not_started_empty(
    tmp_path: Path, notify: Notify
) -> None:
    config, state = setup(tmp_path)
    state.write_bytes(b"")  # what a full SD card or a bad copy leaves
    line = one_line_naming(refused(config, notify, tmp_path / "d.log"), state)
    assert "empty" in line and "state restore" in line
    assert "READY=1" not in notify.seen
    assert state.stat().st_size == 0  # not overwritten with a new, empty database


def test_damaged_state_file_is_refused_then_restored_from_a_backup(
    tmp_path: Path, notify: Notify
) -> None:
    config, state = setup(tmp_path)
    made = cli("state", "backup", "--config", str(config))
    assert made.returncode == 0, made.stderr
    damage(state)

    line = one_line_naming(refused(config, notify, tmp_path / "d.log"), state)
    assert "damaged" in line and "state restore" in line
    check = cli("state", "check", "--config", str(config))
    assert check.returncode == EXIT_USAGE
    assert "damaged" in one_line_naming(check.stderr, state)

    done = cli("state", "restore", "--config", str(config))
    assert done.returncode == 0, done.stderr
    aside = [p for p in state.parent.glob("state.sqlite.replaced-*") if p.suffix != ".sqlite"]
    kept = [p for p in aside if p.name[-4:] not in ("-wal", "-shm")]
    assert len(kept) == 1 and kept[0].stat().st_size > 0  # the damaged file is kept, not deleted
    assert cli("state", "check", "--config", str(config)).returncode == 0
    assert integrity(state) == "ok"

    proc = start_daemon(config, notify, tmp_path / "d2.log")
    try:
        notify.wait_for("READY=1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    cfg = parse_config(config_dict(tmp_path / "state"))
    store = Store.open(state, cfg)
    try:
        assert "keep-me" in {o.override_id for o in store.active_overrides(datetime.now(UTC))}
    finally:
        store.close()
