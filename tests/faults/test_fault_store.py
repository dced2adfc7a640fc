"""SQLite locked by another process, or the disk full: clear errors, no corruption, chargers served.

The store writes through to disk at once; when it cannot, the charger must still get its answer,
health must say the store is failing, the file must stay intact, and writing must resume by
itself once the cause is gone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fault_support import BOOT, Link, integrity, make_config, running, state_file, until
from structlog.testing import capture_logs

from v2g_gateway.clock import ManualClock
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


class SmallDisk:
    """A disk that really fills up: an 8 MiB tmpfs (room for SQLite's
    WAL, which grows to 4 MB before it starts over) where the machine lets us mount one (root),
    else the state file capped with `PRAGMA max_page_count` (SQLITE_FULL all the same)."""

    def __init__(self, where: Path, tmpfs: bool) -> None:
        self.where = where
        self.tmpfs = tmpfs
        self._filler = where / "filler"
        self._db: sqlite3.Connection | None = None

    def attach(self, db: sqlite3.Connection) -> None:
        self._db = db  # the store's own connection: max_page_count is per connection

    def fill(self) -> None:
        if self.tmpfs:
            fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT)
            try:
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
            finally:
                os.close(fd)
        else:
            assert self._db is not None
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            self._db.execute(f"PRAGMA max_page_count={pages}")

    def free(self) -> None:
        if self.tmpfs:
            self._filler.unlink()
        else:
            assert self._db is not None
            self._db.execute("PRAGMA max_page_count=1073741823")


@pytest.fixture(params=["tmpfs", "page_limit"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmallDisk]:
    where = tmp_path / "small"
    where.mkdir()
    mounted = False
    if request.param == "tmpfs":
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs (the page_limit variant runs): {r.stderr}")
        mounted = True
    try:
        yield SmallDisk(where, tmpfs=mounted)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


def tx_event(seq: int, soc: float | None, at: datetime, kind: str = "Updated") -> dict[str, Any]:
    ts = at.isoformat().replace("+00:00", "Z")
    p: dict[str, Any] = {
        "eventType": kind,
        "timestamp": ts,
        "triggerReason": "CablePluggedIn" if kind == "Started" else "MeterValuePeriodic",
        "seqNo": seq,
        "transactionInfo": {"transactionId": "T1", "chargingState": "Charging"},
        "evse": {"id": 1, "connectorId": 1},
    }
    if soc is not None:
        p["meterValue"] = [
            {
                "timestamp": ts,
                "sampledValue": [
                    {"value": soc, "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}}
                ],
            }
        ]
    if kind == "Ended":
        p["transactionInfo"]["stoppedReason"] = "Local"
    return p


def stored(path: Path) -> tuple[set[float], set[int], str | None]:
    """SoC values, TransactionEvent seqNos and the transaction's end as the file holds them."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        socs = {round(r[0], 3) for r in db.execute("SELECT soc_percent FROM soc_samples")}
        row = db.execute(
            "SELECT seen_seq_nos, ended_at FROM transactions WHERE transaction_id='T1'"
        ).fetchone()
    return socs, set(json.loads(row[0])) if row else set(), row[1] if row else None


async def test_disk_full_acknowledges_only_what_is_stored(small_disk: SmallDisk) -> None:
    """The issue's figure: 299 of 300 acknowledged MeterValues were never stored. Now every
    CALLRESULT means stored; the rest get CALLERROR InternalError, wait in memory, and once
    space is freed they are written, and the charger's resends are recognised."""
    clock = ManualClock(T0)
    # 800 messages in a few seconds: above the flood guard's default, not what is tested here.
    cfg = make_config(small_disk.where / "state", ocpp={"max_messages_per_minute": 5000})
    path = state_file(cfg)
    async with running(cfg, clock) as gw:
        small_disk.attach(gw.store._db)
        notes = gw.store.notifications.subscribe()
        link = await Link.open(gw.csms.port)
        assert (await link.call("b", "BootNotification", BOOT))[0] == 3
        assert (await link.call("s0", "StatusNotification", status("Occupied")))[0] == 3
        started = tx_event(0, 50.0, clock.now(), "Started")
        assert (await link.call("t0", "TransactionEvent", started))[0] == 3
        await clock.advance(1)
        small_disk.fill()

        # A burst of real traffic against a full disk: 300 MeterValues, 100 TransactionEvents.
        frames: dict[str, tuple[str, dict[str, Any]]] = {}
        for i in range(300):
            frames[f"m{i}"] = ("MeterValues", meter(50.0 + (i + 1) / 100))
        for i in range(1, 101):
            frames[f"t{i}"] = ("TransactionEvent", tx_event(i, None, clock.now()))
        frames["t-end"] = ("TransactionEvent", tx_event(101, None, clock.now(), "Ended"))
        acked: list[str] = []
        refused: list[str] = []
        with capture_logs() as logs:
            for uid, (action, payload) in frames.items():
                answer = await link.call(uid, action, payload)
                (acked if answer[0] == 3 else refused).append(uid)
                if answer[0] == 4:
                    assert answer[2] == "InternalError" and "not stored" in answer[3], answer
            assert (await link.call("h", "Heartbeat", {}))[0] == 3  # still served
        errors = write_errors(logs)
        assert errors and all(str(path) in e for e in errors)
        assert any("full" in e or "disk" in e for e in errors), errors
        assert refused, "a full disk must refuse something"
        health = gw.health()
        assert health["store"] == "failing"
        assert health["store_write"]["state"] == "degraded"
        assert health["store_write"]["kept_in_memory"] >= len(refused)
        assert integrity(path) == "ok"
        degraded = [n for n in drain(notes) if n.kind == "store_degraded"]
        assert [n.level for n in degraded] == ["error"]  # one notification, not one per write

        small_disk.free()  # the user frees space: what waited in memory is written
        await clock.advance(10)  # the spill retry, without a charger message to trigger it
        await until(lambda: gw.store.write_state().kept == 0, "the spill written")
        assert gw.health()["store"] == "ok"
        assert gw.health()["store_write"]["state"] == "ok"
        assert [n.level for n in drain(notes) if n.kind == "store_degraded"] == ["info"]
        # ... and the charger sends again what it was not told was received: recognised.
        for uid in refused:
            action, payload = frames[uid]
            again = await link.call(f"{uid}-again", action, payload)
            assert again[0] == 3, again
        await link.close()
    assert integrity(path) == "ok"
    socs, seqs, ended = stored(path)
    want_socs = {50.0} | {round(50.0 + (i + 1) / 100, 3) for i in range(300)}
    assert socs == want_socs  # every one acknowledged in the end, every one stored
    assert max(seqs) == 101 and ended is not None
    with contextlib.closing(sqlite3.connect(path)) as db:
        n_samples = db.execute("SELECT count(*) FROM soc_samples").fetchone()[0]
    assert n_samples == len(want_socs)  # resends were not stored twice


def drain(q: Any) -> list[Any]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out
