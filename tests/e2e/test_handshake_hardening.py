"""Hardening of the OCPP port against the running gateway: a refused handshake reaches MQTT and
the web app's setup page; a flood of half-open connections on a daemon with a low file limit
hits EMFILE without a traceback, and a charger still boots afterwards (docs/security.md)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from daemon_support import Notify
from e2e_helpers import PASSWORD, TZ, running, skeleton_config
from mosquitto import free_port
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from simulators.charger import SimulatedCharger
from simulators.handshake_flood import half_open
from v2g_gateway.app import Gateway
from v2g_gateway.clock import ManualClock

WEB_PASSWORD = "hardening-web-password"


async def refused(port: int, ident: str, password: str) -> int:
    try:
        ws = await connect(
            f"ws://127.0.0.1:{port}/ocpp/{ident}",
            subprotocols=[Subprotocol("ocpp2.0.1")],
            additional_headers={"Authorization": _basic(ident, password)},
        )
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_refused_handshake_reaches_mqtt_and_the_setup_page(
    tmp_path: Path, mosquitto: Any
) -> None:
    cfg = skeleton_config(
        tmp_path / "state",
        mosquitto.port,
        web={"host": "127.0.0.1", "port": 0, "password": WEB_PASSWORD, "live_interval_s": 0.0},
    )
    clock = ManualClock(datetime(2026, 1, 15, 12, 0, tzinfo=TZ))
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as sub:
        await sub.subscribe("v2g/e2e/events")
        async with running(Gateway(cfg, clock)) as gw:
            assert await refused(gw.csms.port, "garage", "not-the-password-123") == 401
            assert await refused(gw.csms.port, "intruder", PASSWORD) == 401
            bodies: list[dict[str, Any]] = []
            async with asyncio.timeout(10):
                async for m in sub.messages:
                    body = json.loads(bytes(m.payload))  # type: ignore[arg-type]
                    if body["kind"] == "handshake_refused":
                        bodies.append(body)
                        if len(bodies) == 2:
                            break
            assert [b["data"] for b in bodies] == [
                {
                    "identity": "garage",
                    "address": "127.0.0.1",
                    "reason": "wrong user or password",
                    "count": 1,
                },
                {
                    "identity": "intruder",
                    "address": "127.0.0.1",
                    "reason": "unknown identity",
                    "count": 1,
                },
            ]
            assert bodies[0]["charger_id"] == "garage" and bodies[0]["level"] == "warning"
            assert gw.web is not None
            async with httpx.AsyncClient(base_url=gw.web.url, timeout=10) as web:
                r = await web.post("/api/login", json={"password": WEB_PASSWORD})
                assert r.status_code == 200, r.text
                setup = (await web.get("/api/setup")).json()
    [garage] = setup["chargers"]
    assert [(r["identity"], r["remote"], r["reason"]) for r in garage["refused"]] == [
        ("garage", "127.0.0.1", "wrong user or password")
    ]
    assert [(r["identity"], r["reason"]) for r in setup["refused_unknown"]] == [
        ("intruder", "unknown identity")
    ]
    assert "not-the-password" not in json.dumps(setup)


# ---------------------------------------------------------------- the daemon, few files

FILE_LIMIT = 64


def _config(tmp: Path, port: int) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(
        f"""
[gateway]
id = "flood"
state_dir = "state"
timezone = "Europe/Berlin"
log_format = "json"
[ocpp]
host = "0.0.0.0"
port = {port}
handshake_timeout_s = 1
[[chargers]]
id = "garage"
password = "{PASSWORD}"
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
    return path


def _few_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = free_port()
    notify = Notify(tmp_path / "notify.sock")
    log = tmp_path / "daemon.log"
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path)}
    env.pop("WATCHDOG_USEC", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "v2g_gateway.cli", "run", "--config", str(_config(tmp_path, port))],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        preexec_fn=_few_files,  # what a unit without LimitNOFILE and a small default gives
    )
    try:
        for _ in range(30):
            if proc.poll() is not None:
                raise AssertionError(f"the daemon exited {proc.returncode}: {log.read_text()}")
            with contextlib.suppress(TimeoutError, AssertionError):
                notify.wait_for("READY=1", timeout=1)
                break
        else:
            raise AssertionError(f"the daemon never got ready: {log.read_text()}")
        yield port, log
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()


async def test_flood_on_the_daemon_with_a_low_file_limit(daemon: tuple[int, Path]) -> None:
    port, log = daemon
    # 8 devices with 15 unfinished handshakes each: more than the daemon has files for.
    flood = await half_open(
        "127.0.0.1", port, 120, sources=tuple(f"127.0.0.{i}" for i in range(40, 48))
    )
    try:
        sim = SimulatedCharger(
            f"ws://127.0.0.1:{port}",
            "garage",
            password=PASSWORD,
            clock=ManualClock(datetime(2026, 1, 15, 12, 0, tzinfo=TZ)),
            reconnect_min_s=0.2,
            reconnect_max_s=1.0,
        )
        task = asyncio.create_task(sim.run())
        try:
            started = time.perf_counter()
            # Out of files: the handshake timeout (1 s) frees them, then the charger gets in.
            await asyncio.wait_for(sim.booted.wait(), 15)
            boot_s = time.perf_counter() - started
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        flood.close()
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    out_of_files = [e for e in lines if "out of file descriptors" in e.get("event", "")]
    assert len(out_of_files) == 1, out_of_files  # one line a minute, with a count
    assert "Traceback" not in text
    assert text.count("Too many open files") == 1  # that line's error, nowhere else
    assert boot_s < 15, boot_s
