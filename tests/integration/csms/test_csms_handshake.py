"""Handshake: subprotocol, identity from the path, basic auth, session replacement, close()."""

from __future__ import annotations

import pytest
import structlog
from csms_client import RawCharger, basic
from csms_fixtures import BOOT, PASSWORD, Events
from structlog.testing import capture_logs
from websockets.exceptions import ConnectionClosed, InvalidStatus

from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.model import ChargerConnected, ChargerDisconnected


async def test_good_credentials_connect(
    server: CsmsServer, charger: RawCharger, events: Events
) -> None:
    assert charger.ws.subprotocol == "ocpp2.0.1"
    assert server.connected() == {"garage"}
    assert [e.charger_id for e in events.of(ChargerConnected)] == ["garage"]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/ocpp/garage", basic("garage", "wrong-password-123456")),
        ("/ocpp/garage", {}),
        ("/ocpp/garage", {"Authorization": "Basic !!!notbase64"}),
        ("/ocpp/garage", basic("carport:2", PASSWORD + "x")),  # another charger's credentials
        ("/ocpp/intruder", basic("intruder", PASSWORD)),
        ("/", basic("garage", PASSWORD)),
    ],
)
async def test_refused_with_401(server: CsmsServer, path: str, headers: dict[str, str]) -> None:
    with pytest.raises(InvalidStatus) as info:
        await RawCharger.open(f"ws://127.0.0.1:{server.port}{path}", headers=headers)
    assert info.value.response.status_code == 401
    assert info.value.response.headers["WWW-Authenticate"].startswith("Basic")
    assert server.connected() == set()


async def test_identity_is_url_decoded(server: CsmsServer) -> None:
    c = await RawCharger.open(
        f"ws://127.0.0.1:{server.port}/ocpp/carport%3A2", headers=basic("carport:2", PASSWORD + "x")
    )
    assert server.connected() == {"carport:2"}
    await c.close()


@pytest.mark.parametrize("subprotocols", [[], ["ocpp1.6"]])
async def test_subprotocol_required(server: CsmsServer, subprotocols: list[str]) -> None:
    with pytest.raises(InvalidStatus) as info:
        await RawCharger.open(
            f"ws://127.0.0.1:{server.port}/ocpp/garage",
            headers=basic("garage", PASSWORD),
            subprotocols=subprotocols,
        )
    assert info.value.response.status_code == 400
    assert server.connected() == set()


async def test_reconnect_replaces_old_session(server: CsmsServer, events: Events) -> None:
    url = f"ws://127.0.0.1:{server.port}/ocpp/garage"
    first = await RawCharger.open(url, headers=basic("garage", PASSWORD))
    second = await RawCharger.open(url, headers=basic("garage", PASSWORD))
    await first.ws.wait_closed()
    assert first.ws.close_reason == "replaced by a new connection"
    assert server.connected() == {"garage"}
    # The old session ending must not mark the charger offline.
    assert events.of(ChargerDisconnected) == []
    answer = await second.call("Heartbeat", {})
    assert answer[0] == 3
    await second.close()


async def test_close_sends_1001_to_every_session(server: CsmsServer, events: Events) -> None:
    c = await RawCharger.open(
        f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
    )
    await server.close()
    with pytest.raises(ConnectionClosed):
        await c.ws.recv()
    assert c.ws.close_code == 1001
    assert server.connected() == set()
    assert [e.charger_id for e in events.of(ChargerDisconnected)] == ["garage"]


async def test_every_session_log_line_names_the_charger(server: CsmsServer) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        c = await RawCharger.open(
            f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
        )
        await c.call_raw("bad", '[2, "bad", "NoSuchAction", {}]')
        await c.call("BootNotification", BOOT)
        await c.next_call("GetBaseReport")  # the after-boot task has logged its commands
        await c.close()
    session_lines = [
        e for e in logs if e["event"] in ("charger connected", "call refused", "command")
    ]
    assert {e["event"] for e in session_lines} == {"charger connected", "call refused", "command"}
    assert {e.get("charger_id") for e in session_lines} == {"garage"}
