"""A full disk under the real `v2g-gateway run` process: what it acknowledges is in the file.

The in-process test (test_fault_store.py) counts every frame; this one is the daemon as systemd
runs it, on a real tmpfs that fills up (root only), with a charger that does what OCPP 2.0.1
asks of it: it sends again what was answered with a CALLERROR.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from fault_support import BOOT, Link, Notify, config_dict, free_port, integrity, start_daemon


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "small"
    where.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def ts(ago_s: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=ago_s)).isoformat().replace("+00:00", "Z")


def soc_meter(soc: float, ago_s: float) -> dict[str, Any]:
    """A reading measured `ago_s` seconds ago (a charger samples a second apart or more)."""
    sampled = [{"value": soc, "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}}]
    return {"evseId": 1, "meterValue": [{"timestamp": ts(ago_s), "sampledValue": sampled}]}


def tx(seq: int, kind: str = "Updated") -> dict[str, Any]:
    info: dict[str, Any] = {"transactionId": "T-disk", "chargingState": "Charging"}
    if kind == "Ended":
        info["stoppedReason"] = "Local"
    return {
        "eventType": kind,
        "timestamp": ts(),
        "triggerReason": "CablePluggedIn" if kind == "Started" else "MeterValuePeriodic",
        "seqNo": seq,
        "transactionInfo": info,
        "evse": {"id": 1, "connectorId": 1},
    }


def fill(where: Path) -> Path:
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


async def test_daemon_on_a_full_disk_acknowledges_only_what_it_stored(
    tmp_path: Path, tmpfs: Path, notify: Notify
) -> None:
    port = free_port()
    d = config_dict(tmpfs / "state", ocpp={"port": port})
    config = tmp_path / "gateway.toml"
    config.write_text(tomli_w.dumps(d))
    config.chmod(0o600)
    proc = start_daemon(config, notify, tmp_path / "daemon.log")
    frames: dict[str, tuple[str, dict[str, Any]]] = {}
    try:
        await asyncio.to_thread(notify.wait_for, "READY=1")
        link = await Link.open(port)
        assert (await link.call("b", "BootNotification", BOOT))[2]["status"] == "Accepted"
        status = {"timestamp": ts(), "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}
        assert (await link.call("s", "StatusNotification", status))[0] == 3
        assert (await link.call("t0", "TransactionEvent", tx(0, "Started")))[0] == 3
        filler = fill(tmpfs)

        for i in range(60):
            frames[f"m{i}"] = ("MeterValues", soc_meter(40.0 + i / 10, 120.0 - i))
        for i in range(1, 21):
            frames[f"t{i}"] = ("TransactionEvent", tx(i))
        frames["t-end"] = ("TransactionEvent", tx(21, "Ended"))
        refused = []
        for uid, (action, payload) in frames.items():
            answer = await link.call(uid, action, payload)
            if answer[0] == 4:
                assert answer[2] == "InternalError", answer
                refused.append(uid)
        assert refused  # the disk is full: not everything can have been stored

        filler.unlink()
        for uid in refused:  # the charger sends again what it was not told was received
            action, payload = frames[uid]
            again = await link.call(f"{uid}-again", action, payload)
            assert again[0] == 3, again
        await link.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 15) == 0

    path = tmpfs / "state" / "state.sqlite"
    assert integrity(path) == "ok"
    with contextlib.closing(sqlite3.connect(path)) as db:
        socs = [round(r[0], 2) for r in db.execute("SELECT soc_percent FROM soc_samples")]
        seen, ended = db.execute(
            "SELECT seen_seq_nos, ended_at FROM transactions WHERE transaction_id='T-disk'"
        ).fetchone()
    assert sorted(socs) == [round(40.0 + i / 10, 2) for i in range(60)]  # each once, none lost
    assert json.loads(seen) == list(range(22)) and ended is not None
