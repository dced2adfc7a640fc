"""Driving the real `v2g-gateway run` process: the systemd notify socket and the start command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path


class Notify:
    """The systemd side of sd_notify: collects what the daemon says on a datagram socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.seen: list[str] = []

    def wait_for(self, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while what not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} from the daemon; saw {self.seen}")
            self.sock.settimeout(left)
            self.seen.extend(self.sock.recv(4096).decode().splitlines())

    def close(self) -> None:
        self.sock.close()


def start_daemon(
    config: Path, notify: Notify, log: Path, *, watchdog_usec: int | None = None
) -> subprocess.Popen[bytes]:
    """`v2g-gateway run --config` as systemd would start it (stderr appended to `log`)."""
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path)}
    env.pop("WATCHDOG_USEC", None)
    env.pop("WATCHDOG_PID", None)
    if watchdog_usec is not None:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    return subprocess.Popen(
        [sys.executable, "-m", "v2g_gateway.cli", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
