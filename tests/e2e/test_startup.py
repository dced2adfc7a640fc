"""The real `run` process at start and stop: a port taken, an address or name it cannot bind, a
state folder it cannot make are one line each (exit 2, no traceback); the log says which URL
to enter in each charger; a charger that never answers does not hold up the stop."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import Notify, start_daemon
from mosquitto import free_port

from v2g_gateway.config import parse_config
from v2g_gateway.startup import charger_urls

PASSWORD = "startup-test-password-1"


def config(tmp: Path, **ocpp: object) -> Path:
    host = ocpp.pop("host", "127.0.0.1")
    port = ocpp.pop("port", free_port())
    mqtt_port = ocpp.pop("mqtt_port", free_port())
    state = ocpp.pop("state_dir", "state")
    path = tmp / "gateway.toml"
    path.write_text(
        f"""
[gateway]
id = "boot"
state_dir = "{state}"
log_format = "json"
[ocpp]
host = "{host}"
port = {port}
[[chargers]]
id = "garage"
password = "{PASSWORD}"
[[chargers]]
id = "carport"
credential = "charger-carport"
[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
"""
    )
    (tmp / "credentials").mkdir(exist_ok=True)
    (tmp / "credentials" / "charger-carport").write_text("carport-password-0001\n")
    return path


def run(path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    return subprocess.run(
        [sys.executable, "-m", "v2g_gateway.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    errors = [x for x in r.stderr.splitlines() if x.startswith("v2g-gateway:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_port_in_use(tmp_path: Path, listening: int) -> None:
    line = one_line(run(config(tmp_path, port=listening)))
    assert line == (
        f"v2g-gateway: {tmp_path / 'gateway.toml'}: ocpp.port: port {listening} on 127.0.0.1 "
        "is already in use (another v2g-gateway or another program listens there)"
    )


def test_port_of_the_mqtt_broker(tmp_path: Path, listening: int) -> None:
    line = one_line(run(config(tmp_path, port=listening, mqtt_port=listening)))
    assert "ocpp.port" in line and "it is [mqtt] port, where the MQTT broker listens" in line


def test_an_address_of_another_machine(tmp_path: Path) -> None:
    line = one_line(run(config(tmp_path, host="192.0.2.77")))  # TEST-NET-1: nobody's address
    assert "ocpp.host: '192.0.2.77' cannot be bound: not an address of this machine" in line


def test_a_name_nobody_knows(tmp_path: Path) -> None:
    line = one_line(run(config(tmp_path, host="no-such-host.invalid")))
    assert "ocpp.host: 'no-such-host.invalid' is not an address or a name" in line


def test_a_state_dir_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    line = one_line(run(config(tmp_path, state_dir=str(tmp_path / "a-file" / "state"))))
    assert f"gateway.state_dir: cannot create {tmp_path / 'a-file' / 'state'}" in line


def test_charger_urls_per_id_scheme_and_profile() -> None:
    base = {
        "chargers": [
            {"id": "garage", "password": PASSWORD},
            {"id": "off", "password": PASSWORD, "enabled": False},
            {"id": "carport", "credential": "charger-carport"},
        ]
    }
    urls = charger_urls(parse_config({**base, "ocpp": {"host": "10.0.0.5"}}), 9000)
    assert [(u.charger_id, u.url, u.base_url) for u in urls] == [
        ("garage", "ws://10.0.0.5:9000/garage", "ws://10.0.0.5:9000/"),
        ("carport", "ws://10.0.0.5:9000/carport", "ws://10.0.0.5:9000/"),
    ]
    assert urls[0].auth == "basic auth: user garage, password from chargers[0].password"
    assert urls[1].auth == "basic auth: user carport, password from credential 'charger-carport'"
    tls = {"tls_cert_file": "c.pem", "tls_key_file": "k.pem", "tls_ca_file": "ca.pem"}
    p2 = charger_urls(
        parse_config({**base, "ocpp": {"host": "::1", "security_profile": 2, **tls}}), 443
    )
    assert p2[0].url == "wss://[::1]:443/garage" and p2[0].security_profile == 2
    p3 = charger_urls(
        parse_config({**base, "ocpp": {"host": "gw.lan", "security_profile": 3, **tls}}), 9443
    )
    assert p3[0].url == "wss://gw.lan:9443/garage"
    assert p3[0].auth.startswith("a client certificate with CN=garage")
    every = charger_urls(parse_config({**base, "ocpp": {"host": "0.0.0.0"}}), 9000)
    assert every and all(not u.url.startswith("ws://0.0.0.0") for u in every)


def silent_charger(port: int) -> socket.socket:
    """A charger that completes the handshake and then never says or answers anything."""
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    auth = base64.b64encode(f"garage:{PASSWORD}".encode()).decode()
    s.sendall(
        (
            f"GET /garage HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: ocpp2.0.1\r\nAuthorization: Basic {auth}\r\n\r\n"
        ).encode()
    )
    assert s.recv(4096).startswith(b"HTTP/1.1 101")
    return s


def test_start_logs_urls_and_a_silent_charger_does_not_hold_up_the_stop(tmp_path: Path) -> None:
    port = free_port()
    path = config(tmp_path, port=port)
    notify = Notify(tmp_path / "notify.sock")
    log = tmp_path / "run.log"
    proc = start_daemon(path, notify, log)
    try:
        notify.wait_for("READY=1")
        charger = silent_charger(port)
        db = tmp_path / "state" / "state.sqlite"
        deadline = time.monotonic() + 10
        while not _online(db):
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        took = time.monotonic() - t0
        charger.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
    # The close handshake is given a second, not websockets' 10 s close_timeout.
    assert took < 3.0, f"stop took {took:.1f} s"
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    assert not [x for x in lines if x.get("level") == "error"], lines  # no closed-database error
    assert not _online(db)  # its disconnection was still stored
    said = {x["charger_id"]: x for x in lines if "url" in x}
    assert said["garage"]["url"] == f"ws://127.0.0.1:{port}/garage"
    assert said["carport"]["base_url"] == f"ws://127.0.0.1:{port}/"
    assert "security profile 1" in said["garage"]["event"]
    assert "credential 'charger-carport'" in said["carport"]["event"]


def _online(db: Path) -> bool:
    if not db.exists():
        return False
    with sqlite3.connect(db) as c:
        row = c.execute("SELECT online FROM chargers WHERE charger_id='garage'").fetchone()
    return bool(row and row[0])
