"""docs/operations.md, run: every command of its Install and Secrets blocks, in order, against a
root folder standing in for /, with the service run as another uid the way its unit says.

A command the test does not know fails it, so the doc cannot grow a step nobody checked. Steps
that need a real systemd or apt are replaced by what they do (service_support.py), and the
test asserts that the unit really asks for exactly that.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_support import Notify
from mosquitto import free_port, start_broker
from service_support import (
    REPO,
    SERVICE_UID,
    can_switch_uid,
    interpreter_for_others,
    load_credentials,
    open_dir,
    start_as_service,
    state_directory,
)
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

DOC = REPO / "docs" / "operations.md"
UNIT = REPO / "systemd" / "v2g-gateway.service"

pytestmark = pytest.mark.skipif(not can_switch_uid(), reason="needs root to act as systemd")


def block(heading: str) -> list[str]:
    text = DOC.read_text()
    part = text[text.index(f"## {heading}\n") :]
    body = part[part.index("```sh\n") + 6 : part.index("```", part.index("```sh\n") + 6)]
    return [line.split("  #")[0].strip() for line in body.splitlines() if line.strip()]


def unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


async def boot(port: int, password: str) -> str:
    token = base64.b64encode(f"garage:{password}".encode()).decode()
    async with connect(
        f"ws://127.0.0.1:{port}/garage",
        subprotocols=[Subprotocol("ocpp2.0.1")],
        additional_headers={"Authorization": f"Basic {token}"},
    ) as ws:
        boot = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
        await ws.send(json.dumps([2, "b1", "BootNotification", boot]))
        while True:
            msg = json.loads(await ws.recv())
            if msg[0] == 3 and msg[1] == "b1":
                return str(msg[2]["status"])


class Install:
    """Runs the doc's commands; `root` stands in for /."""

    def __init__(self, root: Path, broker_port: int, broker_password: str) -> None:
        self.root = root
        self.cwd = REPO
        self.ocpp_port = free_port()
        self.broker_port = broker_port
        self.broker_password = broker_password
        self.proc: subprocess.Popen[bytes] | None = None
        self.notify: Notify | None = None
        self.log = root / "journal.log"
        self.checked: list[str] = []
        self.edits: dict[str, list[Callable[[Path], None]]] = {
            "/etc/v2g-gateway/gateway.toml": [self.edit_config, self.edit_config_mqtt],
            "/etc/v2g-gateway/credentials/mqtt-password": [self.edit_mqtt_password],
        }
        self.interp = interpreter_for_others()
        assert self.interp is not None

    def path(self, p: str) -> Path:
        return self.root / p.lstrip("/") if p.startswith(("/etc/", "/opt/", "/var/")) else Path(p)

    def map_args(self, args: list[str]) -> list[str]:
        return [str(self.path(a)) if a.startswith("/") else a for a in args]

    # ------------------------------------------------------------------ steps

    def run(self, line: str) -> None:
        words = shlex.split(line.replace('"$PWD"', str(REPO)))
        if words[0] == "sudo":
            words = words[1:]
        for pattern, handler in self.steps():
            if re.fullmatch(pattern, " ".join(words)):
                handler(words)
                self.checked.append(line)
                return
        raise AssertionError(f"docs/operations.md has a step no test checks: {line!r}")

    def steps(self) -> list[tuple[str, Callable[[list[str]], None]]]:
        return [
            (r"apt-get install -y .*", self.apt),
            (r"git clone \S+ /opt/v2g-gateway", self.clone),
            (r"cd /opt/v2g-gateway", self.cd),
            (r"python3 -m venv \.venv", self.venv),
            (r"\.venv/bin/pip install \.", self.venv),
            (r"\.venv/bin/v2g-gateway .*", self.cli),
            (r"sudoedit \S+", self.sudoedit),
            (r"install -m 0644 systemd/v2g-gateway\.service /etc/systemd/system/", self.install),
            (r"install -m 0600 /dev/null \S+", self.install_empty),
            (r"systemd-analyze verify \S+", self.verify),
            (r"systemctl daemon-reload", self.daemon_reload),
            (r"systemctl enable --now v2g-gateway", self.start),
            (r"systemctl restart v2g-gateway", self.restart),
            (r"journalctl -u v2g-gateway -f", self.journal),
        ]

    def apt(self, words: list[str]) -> None:
        assert {"python3-venv", "git"} <= set(words[3:])  # what the steps below use

    def clone(self, words: list[str]) -> None:
        dest = self.path(words[3])
        subprocess.run(["git", "clone", "-q", words[2], str(dest)], check=True, timeout=120)
        # The clone has what the next steps use; they run on the working tree, so uncommitted
        # edits are tested too.
        assert (dest / "pyproject.toml").is_file() and (dest / "systemd").is_dir()

    def cd(self, words: list[str]) -> None:
        assert self.path(words[1]).is_dir()
        self.cwd = REPO

    def venv(self, words: list[str]) -> None:
        # This very test runs in a .venv made the same way (scripts/bootstrap); the entry point
        # the unit starts is there.
        assert (Path(sys.prefix) / "bin" / "v2g-gateway").exists()

    def cli(self, words: list[str]) -> None:
        r = subprocess.run(
            [sys.executable, "-m", "v2g_gateway.cli", *self.map_args(words[1:])],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, f"{words}: {r.stdout}{r.stderr}"
        if words[1:3] == ["config", "init"]:
            cfg = self.path("/etc/v2g-gateway/gateway.toml")
            assert cfg.stat().st_mode & 0o777 == 0o644
            for name in ("charger-garage", "web-password"):
                secret = self.path(f"/etc/v2g-gateway/credentials/{name}")
                assert secret.stat().st_mode & 0o777 == 0o600 and secret.stat().st_uid == 0
        if words[1:3] == ["config", "check"]:
            assert "only root can read" not in r.stdout, r.stdout  # the service can read it
            assert "V2G is off" in r.stdout

    def sudoedit(self, words: list[str]) -> None:
        target = self.path(words[1])
        mode = target.stat().st_mode
        self.edits[words[1]].pop(0)(target)
        assert target.stat().st_mode == mode  # sudoedit keeps owner and mode

    def edit_config(self, path: Path) -> None:
        text = path.read_text()
        text = text.replace('"/var/lib/v2g-gateway"', f'"{self.root}/var/lib/v2g-gateway"')
        text = text.replace('host = "0.0.0.0"', 'host = "127.0.0.1"')
        text = text.replace("port = 9000 ", f"port = {self.ocpp_port} ")
        text = text.replace("port = 1883 ", f"port = {self.broker_port} ")
        text = text.replace("port = 8080 ", "port = 0 ")  # the web app: any free port
        path.write_text(text)

    def edit_config_mqtt(self, path: Path) -> None:
        text = re.sub(
            r'# username = "v2g"\n# credential = "mqtt-password" +#[^\n]*',
            'username = "v2g"\ncredential = "mqtt-password"',
            path.read_text(),
        )
        assert 'credential = "mqtt-password"\n' in text
        path.write_text(text)

    def edit_mqtt_password(self, path: Path) -> None:
        path.write_text(self.broker_password + "\n")

    def install(self, words: list[str]) -> None:
        dest = self.path(words[4])
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["install", "-m", "0644", str(self.cwd / words[3]), str(dest)], check=True)

    def install_empty(self, words: list[str]) -> None:
        subprocess.run(["install", "-m", "0600", "/dev/null", str(self.path(words[4]))], check=True)

    def verify(self, words: list[str]) -> None:
        unit = self.path(words[2])
        assert unit.is_file()
        if shutil.which("systemd-analyze") is None:
            return  # tests/e2e/test_service_user.py skips its verify for the same reason
        copy = self.root / "verify" / "v2g-gateway.service"
        copy.parent.mkdir(exist_ok=True)
        exe = Path(sys.prefix) / "bin" / "v2g-gateway"
        copy.write_text(
            unit.read_text().replace("/opt/v2g-gateway/.venv/bin/v2g-gateway", str(exe))
        )
        r = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stdout and not r.stderr, r.stdout + r.stderr

    def daemon_reload(self, words: list[str]) -> None:
        """What the test does for systemd is what the installed unit asks for."""
        s = unit_settings()
        assert s["Type"] == ["notify"] and s["DynamicUser"] == ["yes"]
        assert s["StateDirectory"] == ["v2g-gateway"] and s["StateDirectoryMode"] == ["0700"]
        assert s["LoadCredential"] == ["v2g-gateway:/etc/v2g-gateway/credentials"]
        assert s["ExecStart"] == [
            "/opt/v2g-gateway/.venv/bin/v2g-gateway run --config /etc/v2g-gateway/gateway.toml"
        ]
        assert "User" not in s and "Group" not in s and "SupplementaryGroups" not in s

    def start(self, words: list[str]) -> None:
        creds = load_credentials(self.path("/etc/v2g-gateway/credentials"), self.root / "run")
        if not self.path("/var/lib/v2g-gateway").exists():
            state_directory(self.root)
        self.notify = Notify(self.root / "notify.sock")
        os.chmod(self.notify.path, 0o777)
        assert self.interp is not None
        self.proc = start_as_service(
            self.interp,
            ["run", "--config", str(self.path("/etc/v2g-gateway/gateway.toml"))],
            extra_env={"CREDENTIALS_DIRECTORY": str(creds), "NOTIFY_SOCKET": str(self.notify.path)},
            stderr=self.log,
        )
        try:
            self.notify.wait_for("READY=1", timeout=30)
        except AssertionError:
            raise AssertionError(self.log.read_text()[-3000:]) from None
        password = self.path("/etc/v2g-gateway/credentials/charger-garage").read_text().strip()
        assert asyncio.run(boot(self.ocpp_port, password)) == "Accepted"

    def stop(self) -> None:
        if self.proc is None:
            return
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(10) == 0, self.log.read_text()[-2000:]
        assert time.monotonic() - t0 < 5
        self.proc = None
        if self.notify is not None:
            self.notify.close()
            self.notify.path.unlink()
        shutil.rmtree(self.root / "run")

    def restart(self, words: list[str]) -> None:
        self.stop()
        self.start(words)

    def journal(self, words: list[str]) -> None:
        lines = [json.loads(x) for x in self.log.read_text().splitlines() if x.startswith("{")]
        url = f"ws://127.0.0.1:{self.ocpp_port}/garage"
        said = [x for x in lines if x.get("url") == url]
        assert said and "credential 'charger-garage'" in said[0]["event"], lines
        assert not [x for x in lines if x.get("level") == "error"], lines


def test_operations_doc_install_and_secrets(tmp_path: Path) -> None:
    if interpreter_for_others() is None:
        pytest.skip("no Python interpreter another uid may run")
    broker = start_broker(tmp_path / "broker", users={"v2g": "broker-secret-17"})
    root = open_dir("v2g-ops-")
    inst = Install(root, broker.port, "broker-secret-17")
    try:
        for line in block("Install"):
            inst.run(line)
        for line in block("Secrets"):
            inst.run(line)
        deadline = time.monotonic() + 15
        while '"mqtt.connected"' not in inst.log.read_text():  # the password reached the broker
            assert time.monotonic() < deadline, inst.log.read_text()[-2000:]
            time.sleep(0.1)
        state = root / "var" / "lib" / "v2g-gateway" / "state.sqlite"
        assert state.stat().st_uid == SERVICE_UID  # written by the service's uid, not root
        inst.stop()
        assert len(inst.checked) == len(block("Install")) + len(block("Secrets"))
    finally:
        if inst.proc is not None:
            inst.proc.kill()
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)
