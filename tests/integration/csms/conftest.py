from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from csms_client import RawCharger, basic
from csms_fixtures import PASSWORD, T0, Events, make_config

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import Config
from v2g_gateway.csms.server import CsmsServer


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
async def make_server(events: Events, clock: ManualClock) -> AsyncIterator[Callable[..., Any]]:
    servers: list[CsmsServer] = []

    async def factory(cfg: Config | None = None) -> CsmsServer:
        server = CsmsServer(cfg or make_config(), events.append, clock)
        await server.start()
        servers.append(server)
        return server

    yield factory
    for s in servers:
        await s.close()


@pytest.fixture
async def server(make_server: Callable[..., Any]) -> CsmsServer:
    s: CsmsServer = await make_server()
    return s


@pytest.fixture
async def charger(server: CsmsServer) -> AsyncIterator[RawCharger]:
    c = await RawCharger.open(
        f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
    )
    yield c
    await c.close()
