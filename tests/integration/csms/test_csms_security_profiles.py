"""Security profiles 2 (TLS + basic auth) and 3 (TLS + client certificate) with real certificates."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from csms_client import RawCharger, basic
from csms_fixtures import PASSWORD, make_config
from pki import Pair, TestCA
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from v2g_gateway.csms.server import CsmsServer

# What a client sees when TLS itself refuses it (alert, reset or a dropped handshake).
REFUSED = (OSError, InvalidHandshake, ConnectionClosed)


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path)


def client_ctx(ca: TestCA, cert: Pair | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.pair.cert))
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)
    return ctx


async def tls_server(make_server: Any, ca: TestCA, profile: int) -> CsmsServer:
    srv = ca.issue("localhost", server=True)
    cfg = make_config(
        security_profile=profile,
        tls_cert_file=str(srv.cert),
        tls_key_file=str(srv.key),
        tls_ca_file=str(ca.pair.cert) if profile == 3 else None,
    )
    server: CsmsServer = await make_server(cfg)
    return server


async def test_profile2_tls_and_password(make_server: Any, ca: TestCA) -> None:
    server = await tls_server(make_server, ca, 2)
    url = f"wss://localhost:{server.port}/ocpp/garage"
    c = await RawCharger.open(url, headers=basic("garage", PASSWORD), ssl_ctx=client_ctx(ca))
    assert (await c.call("Heartbeat", {}))[0] == 3
    await c.close()
    with pytest.raises(InvalidStatus) as info:
        await RawCharger.open(
            url, headers=basic("garage", "wrong-but-long-pw"), ssl_ctx=client_ctx(ca)
        )
    assert info.value.response.status_code == 401


async def test_profile2_refuses_an_untrusted_server_cert(
    make_server: Any, ca: TestCA, tmp_path: Path
) -> None:
    server = await tls_server(make_server, ca, 2)
    other = TestCA(tmp_path, "Other CA")
    with pytest.raises(ssl.SSLCertVerificationError):
        await RawCharger.open(
            f"wss://localhost:{server.port}/ocpp/garage",
            headers=basic("garage", PASSWORD),
            ssl_ctx=client_ctx(other),
        )


async def test_profile2_refuses_plain_websocket(make_server: Any, ca: TestCA) -> None:
    server = await tls_server(make_server, ca, 2)
    with pytest.raises(REFUSED):  # the TLS server drops a plain HTTP handshake
        await RawCharger.open(
            f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
        )
    assert server.connected() == set()


async def test_profile3_client_certificate(make_server: Any, ca: TestCA) -> None:
    """garage has a password in the config: the certificate and the password are both needed."""
    server = await tls_server(make_server, ca, 3)
    cert = ca.issue("garage", server=False)
    url = f"wss://localhost:{server.port}/ocpp/garage"
    with pytest.raises(InvalidStatus) as info:  # the certificate alone is not enough
        await RawCharger.open(url, ssl_ctx=client_ctx(ca, cert))
    assert info.value.response.status_code == 401
    c = await RawCharger.open(url, headers=basic("garage", PASSWORD), ssl_ctx=client_ctx(ca, cert))
    assert server.connected() == {"garage"}
    answer = await c.call("SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST-----"})
    assert answer[2]["status"] == "Rejected"
    await c.close()


async def test_profile3_certificate_alone_without_a_configured_password(
    make_server: Any, ca: TestCA
) -> None:
    srv = ca.issue("localhost", server=True)
    cfg = make_config(
        security_profile=3,
        tls_cert_file=str(srv.cert),
        tls_key_file=str(srv.key),
        tls_ca_file=str(ca.pair.cert),
        charger={"password": None},
    )
    server: CsmsServer = await make_server(cfg)
    cert = ca.issue("garage", server=False)
    c = await RawCharger.open(
        f"wss://localhost:{server.port}/ocpp/garage", ssl_ctx=client_ctx(ca, cert)
    )
    assert server.connected() == {"garage"}
    await c.close()


async def test_profile3_certificate_of_another_charger(make_server: Any, ca: TestCA) -> None:
    server = await tls_server(make_server, ca, 3)
    cert = ca.issue("carport:2", server=False)
    with pytest.raises(InvalidStatus) as info:
        await RawCharger.open(
            f"wss://localhost:{server.port}/ocpp/garage", ssl_ctx=client_ctx(ca, cert)
        )
    assert info.value.response.status_code == 401


async def test_profile3_without_client_certificate(make_server: Any, ca: TestCA) -> None:
    server = await tls_server(make_server, ca, 3)
    with pytest.raises(REFUSED):  # TLS alert: certificate required
        c = await RawCharger.open(
            f"wss://localhost:{server.port}/ocpp/garage",
            headers=basic("garage", PASSWORD),
            ssl_ctx=client_ctx(ca),
        )
        await c.call("Heartbeat", {})
    assert server.connected() == set()


async def test_profile3_certificate_from_another_ca(
    make_server: Any, ca: TestCA, tmp_path: Path
) -> None:
    server = await tls_server(make_server, ca, 3)
    rogue = TestCA(tmp_path, "Rogue CA").issue("garage", server=False)
    with pytest.raises(REFUSED):  # TLS alert: unknown CA
        c = await RawCharger.open(
            f"wss://localhost:{server.port}/ocpp/garage", ssl_ctx=client_ctx(ca, rogue)
        )
        await c.call("Heartbeat", {})
    assert server.connected() == set()


async def test_profile3_with_wrong_password_is_refused(make_server: Any, ca: TestCA) -> None:
    server = await tls_server(make_server, ca, 3)
    cert = ca.issue("garage", server=False)
    with pytest.raises(InvalidStatus) as info:
        await RawCharger.open(
            f"wss://localhost:{server.port}/ocpp/garage",
            headers=basic("garage", "not-the-password-x"),
            ssl_ctx=client_ctx(ca, cert),
        )
    assert info.value.response.status_code == 401


async def test_unreadable_tls_files_are_a_clear_config_error(ca: TestCA, tmp_path: Path) -> None:
    from csms_fixtures import T0

    from v2g_gateway.clock import ManualClock
    from v2g_gateway.errors import ConfigError

    other = TestCA(tmp_path, "Other CA")
    mismatched = make_config(
        security_profile=2, tls_cert_file=str(ca.pair.cert), tls_key_file=str(other.pair.key)
    )
    missing = make_config(
        security_profile=2,
        tls_cert_file=str(tmp_path / "nope.crt"),
        tls_key_file=str(tmp_path / "nope.key"),
    )
    for cfg in (mismatched, missing):
        server = CsmsServer(cfg, lambda _e: None, ManualClock(T0))
        with pytest.raises(ConfigError, match=r"ocpp\.tls_\*: cannot load TLS files"):
            await server.start()
