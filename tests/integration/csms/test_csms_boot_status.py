"""BootNotification answers other than Accepted: Pending while the gateway cannot keep what a
charger says, Rejected for a charger the user took out of service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from csms_client import RawCharger, basic
from csms_fixtures import BOOT, PASSWORD, T0, Events, make_config

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import parse_config
from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.csms.session import BOOT_RETRY_S
from v2g_gateway.model import ChargerBooted


async def open_charger(server: CsmsServer) -> RawCharger:
    return await RawCharger.open(
        f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
    )


async def test_boot_is_pending_until_the_gateway_is_ready(events: Events) -> None:
    ready = {"ok": False}
    server = CsmsServer(make_config(), events.append, ManualClock(T0), ready=lambda: ready["ok"])
    await server.start()
    charger = await open_charger(server)
    try:
        answer = await charger.call("BootNotification", BOOT)
        assert answer[2]["status"] == "Pending"
        assert answer[2]["interval"] == BOOT_RETRY_S
        assert not events.of(ChargerBooted)
        ready["ok"] = True
        again = await charger.call("BootNotification", BOOT)
        assert again[2]["status"] == "Accepted"
        assert len(events.of(ChargerBooted)) == 1
    finally:
        await charger.close()
        await server.close()


async def test_a_disabled_charger_is_rejected(
    make_server: Callable[..., Any], events: Events
) -> None:
    base = make_config().model_dump(mode="json")
    base["chargers"][0]["enabled"] = False
    server = await make_server(parse_config(base))
    charger = await open_charger(server)
    try:
        answer = await charger.call("BootNotification", BOOT)
        assert answer[2]["status"] == "Rejected"
        assert answer[2]["interval"] > BOOT_RETRY_S
        assert not events.of(ChargerBooted)
    finally:
        await charger.close()
