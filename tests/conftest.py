"""Fixtures shared by every test folder: a real mosquitto broker per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mosquitto import Broker, start_broker


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A fresh broker on a free loopback port (never the system one on 1883)."""
    broker = start_broker(tmp_path / "mosquitto")
    yield broker
    broker.stop()
