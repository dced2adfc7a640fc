"""Fixtures shared by every test folder: a real mosquitto broker per test, and the socket a
daemon started as a process tells its readiness on (sd_notify)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import Notify
from mosquitto import Broker, start_broker


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A fresh broker on a free loopback port (never the system one on 1883)."""
    broker = start_broker(tmp_path / "mosquitto")
    yield broker
    broker.stop()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[Notify]:
    """The NOTIFY_SOCKET of a daemon run as a process (READY=1, STOPPING=1)."""
    n = Notify(tmp_path / "notify.sock")
    yield n
    n.close()
