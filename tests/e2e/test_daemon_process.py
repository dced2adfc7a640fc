"""The real `v2g-gateway run` process: sd_notify, SIGTERM shutdown, state kept across restarts."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from daemon_support import Notify, start_daemon
from mosquitto import free_port
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

PASSWORD = "daemon-test-password-1"


def write_config(tmp: Path, ocpp_port: int) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(
        f"""
[gateway]
id = "proc"
state_dir = "state"
timezone = "Europe/Berlin"
log_format = "json"
[ocpp]
host = "127.0.0.1"
port = {ocpp_port}
[[chargers]]
id = "garage"
password_file = "garage.secret"
[[vehicles]]
id = "car"
battery_kwh = 60
[prices]
source = "tariff"
[[prices.tariff]]
start = "00:00"
end = "00:00"
import_per_kwh = 0.30
export_per_kwh = 0.05
[mqtt]
host = "127.0.0.1"
port = {free_port()}
"""
    )
    (tmp / "garage.secret").write_text(PASSWORD + "\n")
    return path


def start(config: Path, notify: Notify, log: Path) -> subprocess.Popen[bytes]:
    return start_daemon(config, notify, log, watchdog_usec=400_000)


async def boot_charger(port: int) -> tuple[object, asyncio.Future[int]]:
    token = base64.b64encode(f"garage:{PASSWORD}".encode()).decode()
    ws = await connect(
        f"ws://127.0.0.1:{port}/garage",
        subprotocols=[Subprotocol("ocpp2.0.1")],
        additional_headers={"Authorization": f"Basic {token}"},
    )
    boot = {
        "reason": "PowerUp",
        "chargingStation": {"model": "ProcTest", "vendorName": "Acme", "firmwareVersion": "9.9"},
    }
    await ws.send(json.dumps([2, "1", "BootNotification", boot]))
    closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def read() -> None:
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg[0] == 2:  # answer the gateway's own calls after boot
                    await ws.send(
                        json.dumps([3, msg[1], {"status": "Accepted", "setVariableResult": []}])
                    )
        except ConnectionClosed:
            pass
        assert ws.close_code is not None
        closed.set_result(ws.close_code)

    asyncio.get_running_loop().create_task(read())
    return ws, closed


async def test_sigterm_stops_cleanly_and_state_survives_restart(
    tmp_path: Path, notify: Notify
) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    proc = start(config, notify, tmp_path / "run1.log")
    try:
        await asyncio.to_thread(notify.wait_for, "READY=1")
        await asyncio.to_thread(notify.wait_for, "WATCHDOG=1")
        _ws, closed = await boot_charger(port)
        state = tmp_path / "state" / "state.sqlite"

        def vendor_stored() -> bool:
            with sqlite3.connect(state) as db:
                row = db.execute("SELECT vendor FROM chargers WHERE charger_id='garage'").fetchone()
            return row is not None and row[0] == "Acme"

        deadline = time.monotonic() + 10
        while not vendor_stored():
            assert time.monotonic() < deadline, "BootNotification never reached the store"
            await asyncio.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 10)
        assert code == 0, (tmp_path / "run1.log").read_text()[-2000:]
        assert time.monotonic() - t0 < 5.0
        assert await asyncio.wait_for(closed, 5) == 1001  # going away
        await asyncio.to_thread(notify.wait_for, "STOPPING=1")
    finally:
        if proc.poll() is None:
            proc.kill()
    log_lines = [
        json.loads(x) for x in (tmp_path / "run1.log").read_text().splitlines() if x.startswith("{")
    ]
    events = [x.get("event") for x in log_lines]
    assert "gateway.started" in events and "gateway.stopped" in events
    assert not any(x.get("level") == "error" for x in log_lines), log_lines

    # A second run finds what the first stored.
    notify.seen.clear()
    proc2 = start(config, notify, tmp_path / "run2.log")
    try:
        await asyncio.to_thread(notify.wait_for, "READY=1")
        proc2.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc2.wait, 10) == 0
    finally:
        if proc2.poll() is None:
            proc2.kill()
    with sqlite3.connect(tmp_path / "state" / "state.sqlite") as db:
        vendor, firmware = db.execute(
            "SELECT vendor, firmware FROM chargers WHERE charger_id='garage'"
        ).fetchone()
        started = db.execute(
            "SELECT count(*) FROM notifications WHERE kind='gateway_started'"
        ).fetchone()[0]
    assert (vendor, firmware) == ("Acme", "9.9")
    assert started == 2


def test_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    path = write_config(tmp_path, free_port())
    (tmp_path / "garage.secret").unlink()
    r = subprocess.run(
        [sys.executable, "-m", "v2g_gateway.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "garage.secret" in r.stderr and "Traceback" not in r.stderr
