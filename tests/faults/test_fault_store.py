"""SQLite locked by another process, or the disk full: clear errors, no corruption, chargers served.

The store writes through to disk at once; when it cannot, the charger must still get its answer,
health must say the store is failing, the file must stay intact, and writing must resume by
itself once the cause is gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fault_support import BOOT, Link, integrity, make_config, running, state_file
from structlog.testing import capture_logs

from v2g_gateway.clock import ManualClock
from v2g_gateway.store import Store
from v2g_gateway.store.db import BUSY_TIMEOUT_MS

T0 = datetime(2025, 1, 15, 12, tzinfo=UTC)


def busy_timeout_ms(gw: Any) -> int:
    return int(gw.store._db.execute("PRAGMA busy_timeout").fetchone()[0])


def meter(soc: float) -> dict[str, Any]:
    return {
        "evseId": 1,
        "meterValue": [
            {
                "timestamp": T0.isoformat().replace("+00:00", "Z"),
                "sampledValue": [
                    {"value": soc, "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}}
                ],
            }
        ],
    }


def status(state: str) -> dict[str, Any]:
    ts = T0.isoformat().replace("+00:00", "Z")
    return {"timestamp": ts, "connectorStatus": state, "evseId": 1, "connectorId": 1}


def write_errors(logs: list[dict[str, Any]]) -> list[str]:
    return [str(e.get("error")) for e in logs if e["event"] == "store.write_failed"]


async def test_locked_database_is_a_clear_error_and_chargers_are_still_answered(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    cfg = make_config(tmp_path / "state")
    async with running(cfg, clock) as gw:
        link = await Link.open(gw.csms.port)
        assert (await link.call("b", "BootNotification", BOOT))[0] == 3
        other = sqlite3.connect(state_file(cfg), isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # e.g. someone's sqlite3 shell on the live file
        try:
            with capture_logs() as logs:
                answer = await link.call("h1", "Heartbeat", {})
            assert answer[0] == 3 and "currentTime" in answer[2]  # still served
            errors = write_errors(logs)
            assert errors and all("locked" in e and str(state_file(cfg)) in e for e in errors)
            assert gw.health()["store"] == "failing"
            # Only the first write waits out the busy timeout; the next ones fail at once.
            assert busy_timeout_ms(gw) == 0
            with capture_logs() as logs:
                assert (await link.call("h1b", "Heartbeat", {}))[0] == 3
            assert write_errors(logs)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert (await link.call("h2", "Heartbeat", {}))[0] == 3
        assert gw.health()["store"] == "ok"
        assert busy_timeout_ms(gw) == BUSY_TIMEOUT_MS
        await link.close()
    assert integrity(state_file(cfg)) == "ok"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs: a disk that really fills up (needs root; skipped otherwise)."""
    where = tmp_path / "small"
    where.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


async def test_disk_full_is_a_clear_error_without_corruption(small_disk: Path) -> None:
    clock = ManualClock(T0)
    cfg = make_config(small_disk / "state")
    filler = small_disk / "filler"
    async with running(cfg, clock) as gw:
        link = await Link.open(gw.csms.port)
        assert (await link.call("b", "BootNotification", BOOT))[0] == 3
        assert (await link.call("s0", "StatusNotification", status("Occupied")))[0] == 3
        await clock.advance(1)
        fill(filler)
        with capture_logs() as logs:
            for i in range(20):  # a burst of real traffic against a full disk
                assert (await link.call(f"m{i}", "MeterValues", meter(50.0 + i)))[0] == 3
                assert (await link.call(f"h{i}", "Heartbeat", {}))[0] == 3
        errors = write_errors(logs)
        assert errors, "writes to a full disk must fail loudly"
        assert all(str(state_file(cfg)) in e for e in errors)
        assert any("full" in e or "disk" in e for e in errors), errors
        assert gw.health()["store"] == "failing"
        assert integrity(state_file(cfg)) == "ok"

        filler.unlink()  # the user frees space: writing resumes by itself
        assert (await link.call("m-ok", "MeterValues", meter(77.0)))[0] == 3
        assert gw.health()["store"] == "ok"
        await link.close()
    assert integrity(state_file(cfg)) == "ok"
    store = Store.open(state_file(cfg), cfg)  # what a restart would read
    try:
        car = store.snapshot(clock.now()).vehicles["car"]
        assert car.soc_percent == 77.0
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(state_file(cfg))) as db:
        socs = [r[0] for r in db.execute("SELECT soc_percent FROM soc_samples")]
    assert socs and all(0 <= s <= 100 for s in socs)
