from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from csms_client import RawCharger, basic

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import Config, parse_config
from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.model import ChargerEvent

PASSWORD = "Correct-Horse-Battery-9"
T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def make_config(**ocpp: Any) -> Config:
    return parse_config(
        {
            "ocpp": {"host": "127.0.0.1", "port": 0, **ocpp},
            "chargers": [
                {"id": "garage", "password": PASSWORD},
                {"id": "carport:2", "password": PASSWORD + "x"},
            ],
            "vehicles": [{"id": "car", "battery_kwh": 60, "id_tokens": ["TAG1"]}],
        }
    )


class Events(list[ChargerEvent]):
    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self if isinstance(e, kind)]


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


BOOT = {
    "reason": "PowerUp",
    "chargingStation": {
        "vendorName": "Acme",
        "model": "Bidi-11",
        "serialNumber": "SN1",
        "firmwareVersion": "1.2.3",
    },
}
