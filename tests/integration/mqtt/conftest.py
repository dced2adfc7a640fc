from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mqtt_helpers import Broker, Rig, make_rig, start_broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path / "broker")
    yield b
    b.stop()


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path / "broker-pw", users={"gateway": "s3cret-pw", "viewer": "v-pw"})
    yield b
    b.stop()


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path / "broker-tls", tls=True, require_client_cert=True)
    yield b
    b.stop()


@pytest.fixture
async def rig(broker: Broker, tmp_path: Path) -> AsyncIterator[Rig]:
    r = make_rig(broker, tmp_path)
    await r.start()
    yield r
    await r.stop()
    r.store.close()
