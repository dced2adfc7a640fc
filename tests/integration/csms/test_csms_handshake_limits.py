"""What an unauthenticated connection may cost: back-off after failed logins, refusals told as a
count per minute, caps on unfinished handshakes (total and per address), the handshake timeout,
and accept()'s EMFILE as one log line (docs/security.md, threat model)."""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable
from typing import Any

import pytest
from csms_client import RawCharger, basic
from csms_fixtures import BOOT, PASSWORD, make_config
from structlog.testing import capture_logs
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from simulators.handshake_flood import half_open
from v2g_gateway.clock import ManualClock
from v2g_gateway.csms.handshake_guard import PER_ADDRESS, PUSHED_OUT
from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.model import Notification

WRONG = "wrong-password-123456"


async def login(
    server: CsmsServer, password: str, source: str = "127.0.0.1", ident: str = "garage"
) -> int:
    """The HTTP status of one handshake from `source` (101 when it got in)."""
    try:
        ws: ClientConnection = await connect(
            f"ws://127.0.0.1:{server.port}/ocpp/{ident}",
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers=basic(ident, password),
            local_addr=(source, 0),
        )
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101


async def until(condition: Callable[[], bool], timeout_s: float) -> None:
    """Wait for a condition the server reaches in its own time (polled, with a deadline)."""
    for _ in range(int(timeout_s * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def notes(server: CsmsServer) -> list[Notification]:
    seen: list[Notification] = []
    server.commands.adaptation.notices.subscribe(seen.append)
    return seen


async def test_failed_logins_back_off_then_the_right_password_works(
    make_server: Any, clock: ManualClock
) -> None:
    server: CsmsServer = await make_server()
    for _ in range(3):  # login_failures_free = 3
        assert await login(server, WRONG) == 401
    # Backing off: refused at once, the right password is not even checked.
    try:
        await connect(
            f"ws://127.0.0.1:{server.port}/ocpp/garage",
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers=basic("garage", PASSWORD),
        )
        raise AssertionError("got in while backing off")
    except InvalidStatus as exc:
        assert exc.response.status_code == 429
        assert exc.response.headers["Retry-After"] == "1"
    await clock.advance(1.0)
    assert await login(server, WRONG) == 401  # the 4th failure: 2 s now
    assert await login(server, PASSWORD) == 429
    await clock.advance(1.5)
    assert await login(server, PASSWORD) == 429
    await clock.advance(0.5)
    assert await login(server, PASSWORD) == 101
    assert await login(server, WRONG) == 401  # a success forgets the failures
    assert await login(server, PASSWORD) == 101


async def test_identity_back_off_spares_the_chargers_own_address(
    make_server: Any, clock: ManualClock
) -> None:
    server: CsmsServer = await make_server()
    assert await login(server, PASSWORD, "127.0.0.1") == 101  # garage's own address
    for _ in range(3):  # a guesser elsewhere
        assert await login(server, WRONG, "127.0.0.10") == 401
    # garage is backing off as an identity (from any new address), and so is the guesser ...
    assert await login(server, PASSWORD, "127.0.0.11") == 429
    assert await login(server, PASSWORD, "127.0.0.10") == 429
    # ... but not from where garage last logged in: a guesser cannot lock it out.
    assert await login(server, PASSWORD, "127.0.0.1") == 101
    assert server.handshake.by_identity.failures("garage") == 0


async def test_refusals_are_told_as_a_count_per_minute(
    make_server: Any, clock: ManualClock
) -> None:
    server: CsmsServer = await make_server(make_config(login_failures_free=1000))
    seen = notes(server)
    with capture_logs() as logs:
        for _ in range(40):
            assert await login(server, WRONG, "127.0.0.5") == 401
        assert await login(server, PASSWORD, "127.0.0.5", ident="intruder") == 401
    lines = [e for e in logs if e["event"] == "charger refused at handshake"]
    assert len(lines) == 2  # one per (identity, address, reason), not one per try
    assert [(n.kind, n.data["identity"], n.data["count"]) for n in seen] == [
        ("handshake_refused", "garage", 1),
        ("handshake_refused", "intruder", 1),
    ]
    assert seen[0].data == {
        "identity": "garage",
        "address": "127.0.0.5",
        "reason": "wrong user or password",
        "count": 1,
    }
    assert seen[0].charger_id == "garage" and seen[1].charger_id is None
    with capture_logs() as logs:
        await clock.advance(60)  # the minute is over: the repeats are told as one count
        await until(lambda: len(seen) == 3, 2)
    assert seen[2].data["count"] == 39 and "39 more" in seen[2].message
    assert [e["count"] for e in logs if e["event"] == "charger refused at handshake"] == [39]


async def test_refusals_of_websockets_own_are_reported(make_server: Any) -> None:
    server: CsmsServer = await make_server()
    seen = notes(server)
    with pytest.raises(InvalidStatus) as info:
        await RawCharger.open(
            f"ws://127.0.0.1:{server.port}/ocpp/garage",
            headers=basic("garage", PASSWORD),
            subprotocols=["ocpp1.6"],
        )
    assert info.value.response.status_code == 400
    assert [n.data["reason"][:26] for n in seen] == ["no OCPP version in common:"]
    assert seen[0].data["identity"] == "garage"


async def test_half_open_flood_is_capped_and_a_charger_still_gets_in(make_server: Any) -> None:
    cfg = make_config(max_pending_handshakes=50, max_pending_per_address=20, handshake_timeout_s=1)
    server: CsmsServer = await make_server(cfg)
    limits = server.handshake.limits
    seen = notes(server)
    one_address = await half_open("127.0.0.1", server.port, 100, sources=("127.0.0.2",))
    many = await half_open(
        "127.0.0.1", server.port, 100, sources=tuple(f"127.0.0.{i}" for i in range(30, 40))
    )
    try:
        # The server accepts in its own time: wait until it has seen all 200.
        await until(lambda: limits.refused + len(limits) >= 200, 5)
        assert limits.from_address("127.0.0.2") <= 20
        assert len(limits) <= 50
        assert limits.refused >= 200 - 50
        started = time.perf_counter()
        c = await RawCharger.open(
            f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
        )
        answer = await c.call("BootNotification", BOOT)
        boot_s = time.perf_counter() - started
        assert answer[2]["status"] == "Accepted"
        assert boot_s < 0.5, f"the charger needed {boot_s:.3f} s to boot during the flood"
        await c.close()
        # The handshake timeout (1 s) ends the rest: every connection is closed by the server.
        assert await one_address.closed_by_server(5) == len(one_address.streams)
        assert await many.closed_by_server(5) == len(many.streams)
        assert len(limits) == 0
    finally:
        one_address.close()
        many.close()
    reasons = {n.data["reason"] for n in seen}
    assert reasons == {PER_ADDRESS, PUSHED_OUT}
    assert len(seen) <= 11  # one per address and reason in this minute, not one per try


async def test_accept_out_of_files_is_one_line_without_traceback(make_server: Any) -> None:
    loop = asyncio.get_running_loop()
    other: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: other.append(ctx))  # what was there before
    try:
        server: CsmsServer = await make_server()
        exc = OSError(errno.EMFILE, "Too many open files")
        with capture_logs() as logs:
            for _ in range(100):  # what asyncio's accept loop reports, once a second
                loop.call_exception_handler(
                    {"message": "socket.accept() out of system resource", "exception": exc}
                )
            loop.call_exception_handler({"message": "something else"})
        lines = [e for e in logs if "file descriptors" in e["event"]]
        assert len(lines) == 1 and lines[0]["log_level"] == "error"
        assert "exc_info" not in lines[0] and lines[0]["times"] == 1
        assert server.handshake.out_of_files.total == 100
        assert other == [{"message": "something else"}]  # everything else goes on as before
        await server.close()
        assert loop.get_exception_handler() is not None
        loop.call_exception_handler({"message": "after close"})
        assert other[-1] == {"message": "after close"}
    finally:
        loop.set_exception_handler(None)
