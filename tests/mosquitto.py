"""A real mosquitto broker for tests: plain, with a password file, or with TLS.

Each broker gets its own free port on 127.0.0.1 and a generated config in a temp directory, so the
system broker on 1883 is never touched. `stop()` / `start()` restart it on the same port (the
broker-restart tests). TLS material is made here with `cryptography`: a CA, a server certificate
for 127.0.0.1/localhost and a client certificate signed by the same CA.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from pki import TestCA

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TlsFiles:
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@dataclass
class Broker:
    """A running mosquitto; `host`/`port` for clients, `users` name -> password."""

    directory: Path
    port: int
    host: str = "127.0.0.1"
    users: dict[str, str] = field(default_factory=dict)
    tls: TlsFiles | None = None
    require_client_cert: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_file(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def log_file(self) -> Path:
        return self.directory / "mosquitto.log"

    def write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            "persistence false",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "user root",
        ]
        if self.users:
            pw = self.directory / "passwd"
            pw.write_text("")
            for name, password in self.users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(pw), name, password], check=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
                f"require_certificate {'true' if self.require_client_cert else 'false'}",
            ]
        self.config_file.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        """Start (or restart) on the same port; returns once the port accepts connections."""
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                log = self.log_file.read_text() if self.log_file.exists() else ""
                self.process = None
                raise RuntimeError(f"mosquitto exited at start: {err} {log}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"mosquitto did not listen on {self.port}") from None
                time.sleep(0.02)  # polling a port that is not open yet, not synchronisation

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def make_tls(directory: Path) -> TlsFiles:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    ca = TestCA(directory, "v2g test CA")
    server = ca.issue("localhost", server=True)
    client = ca.issue("v2g-gateway", server=False)
    return TlsFiles(ca.pair.cert, server.cert, server.key, client.cert, client.key)


def start_broker(
    directory: Path,
    *,
    users: dict[str, str] | None = None,
    tls: bool = False,
    require_client_cert: bool = False,
) -> Broker:
    """Start mosquitto on a free port; call `.stop()` when done (the fixtures do)."""
    directory.mkdir(parents=True, exist_ok=True)
    broker = Broker(
        directory=directory,
        port=free_port(),
        users=dict(users or {}),
        tls=make_tls(directory / "tls") if tls else None,
        require_client_cert=require_client_cert,
    )
    broker.write_config()
    broker.start()
    return broker


# ---------------------------------------------------------------------- the shipped config

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "mosquitto"
SHIPPED_DIR = "/etc/mosquitto/v2g/"
SHIPPED_PORTS = (1883, 8883, 8884)  # loopback password, TLS password, TLS client certificate


@dataclass
class ShippedBroker:
    """mosquitto running config/mosquitto/ as shipped: only paths and ports are rewritten."""

    broker: Broker
    ports: dict[int, int]  # shipped port -> the free port it listens on here
    ca: TestCA
    users: dict[str, str]

    @property
    def host(self) -> str:
        return self.broker.host

    def port(self, shipped: int) -> int:
        return self.ports[shipped]

    def client_cert(self, cn: str) -> tuple[Path, Path]:
        pair = self.ca.issue(cn, server=False)
        return pair.cert, pair.key

    def stop(self) -> None:
        self.broker.stop()


def start_shipped_broker(directory: Path, users: dict[str, str]) -> ShippedBroker:
    """The shipped v2g-gateway.conf and acl, with `users` in its password file."""
    directory.mkdir(parents=True, exist_ok=True)
    ports = {p: free_port() for p in SHIPPED_PORTS}
    ca = TestCA(directory / "pki", "v2g broker CA")
    server = ca.issue("localhost", server=True)
    certs = directory / "certs"
    certs.mkdir()
    shutil.copy(ca.pair.cert, certs / "ca.crt")
    shutil.copy(server.cert, certs / "broker.crt")
    shutil.copy(server.key, certs / "broker.key")
    shutil.copy(SHIPPED / "acl", directory / "acl")
    pw = directory / "passwd"
    pw.write_text("")
    for name, password in users.items():
        subprocess.run([MOSQUITTO_PASSWD, "-b", str(pw), name, password], check=True)
    text = (SHIPPED / "v2g-gateway.conf").read_text().replace(SHIPPED_DIR, f"{directory}/")
    lines = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["listener"]:
            line = f"listener {ports[int(words[1])]} 127.0.0.1"  # never the LAN in a test
        lines.append(line)
    log = directory / "mosquitto.log"
    # What a test adds: a log, no persistence, and no privilege drop (root cannot hand the temp
    # files to the mosquitto user).
    lines += ["persistence false", f"log_dest file {log}", "log_type all", "user root"]
    broker = Broker(directory=directory, port=ports[1883])
    broker.config_file.write_text("\n".join(lines) + "\n")
    broker.start()
    return ShippedBroker(broker, ports, ca, dict(users))
