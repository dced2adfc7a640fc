"""What an unauthenticated connection may cost before it has proved who it is.

Anything on the LAN can open TCP connections to the OCPP port and never finish the websocket
handshake. Each holds a file descriptor until `handshake_timeout_s`; 1,100 of them exhausted the
default 1,024 and a real charger then waited seconds for asyncio's accept retry. So:

* at most `max_pending_per_address` unfinished handshakes per remote address: more from the same
  address are cut off as soon as they are accepted;
* at most `max_pending_handshakes` in total: a new one pushes out the oldest unfinished one, so
  a flood from many addresses cannot keep a real charger out for a whole handshake timeout;
* accept() failing with EMFILE/ENFILE (the limit reached anyway) is one log line a minute with
  a count, not a traceback per try (asyncio's loop reports it through the exception handler).

A connection stops counting once it has been answered (101, 401, 400, ...).
"""

from __future__ import annotations

import asyncio
import errno
from collections import Counter
from collections.abc import Callable
from typing import Any

import structlog
from websockets.asyncio.server import ServerConnection

from v2g_gateway.clock import Clock

log = structlog.get_logger(__name__)

OUT_OF_FILES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
LOG_EVERY_S = 60.0

# reason texts (also the `reason` of the handshake_refused notification)
PER_ADDRESS = "too many unfinished handshakes from this address"
PUSHED_OUT = "pushed out by newer connections (too many unfinished handshakes)"


def peer_address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "unknown")


class PendingLimits:
    """The connections that have not been answered yet, oldest first, and per address."""

    def __init__(
        self,
        total: int,
        per_address: int,
        on_refused: Callable[[str, str], None] = lambda _address, _reason: None,
    ) -> None:
        self.total = total
        self.per_address = per_address
        self._on_refused = on_refused
        self._pending: dict[ServerConnection, str] = {}
        self._by_address: Counter[str] = Counter()
        self.refused = 0  # cut off at accept (per address) or pushed out (total)

    def __len__(self) -> int:
        return len(self._pending)

    def from_address(self, address: str) -> int:
        return self._by_address[address]

    def admit(self, conn: ServerConnection, address: str) -> bool:
        """Count a new connection; False if it must be cut off at once."""
        if self._by_address[address] >= self.per_address:
            self.refused += 1
            self._on_refused(address, PER_ADDRESS)
            return False
        while len(self._pending) >= self.total:
            oldest, oldest_address = next(iter(self._pending.items()))
            self.done(oldest)
            self.refused += 1
            self._on_refused(oldest_address, PUSHED_OUT)
            oldest.transport.abort()
        self._pending[conn] = address
        self._by_address[address] += 1
        return True

    def done(self, conn: ServerConnection) -> None:
        """Answered or gone: no longer counted (idempotent)."""
        address = self._pending.pop(conn, None)
        if address is None:
            return
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]


def guarded_connection(limits: PendingLimits) -> type[ServerConnection]:
    """A ServerConnection (websockets' documented `create_connection` hook) that is counted in
    `limits` from the moment TCP (and TLS) is up until it is answered or closed."""

    class GuardedConnection(ServerConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            if not limits.admit(self, peer_address(transport)):
                self.transport.abort()  # the handler sees no request and ends quietly

        def connection_lost(self, exc: Exception | None) -> None:
            limits.done(self)
            super().connection_lost(exc)

    return GuardedConnection


class OutOfFiles:
    """A loop exception handler that turns accept()'s EMFILE into one line a minute.

    Everything else goes to the handler that was there before (or asyncio's default).
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.count = 0  # since the last line
        self.total = 0
        self._logged_at: float | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._previous = loop.get_exception_handler()
        loop.set_exception_handler(self.handle)

    def uninstall(self) -> None:
        if self._loop is not None and self._loop.get_exception_handler() == self.handle:
            self._loop.set_exception_handler(self._previous)
        self._loop = None

    def handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in OUT_OF_FILES:
            self.count += 1
            self.total += 1
            now = self._clock.monotonic()
            if self._logged_at is None or now - self._logged_at >= LOG_EVERY_S:
                log.error(
                    "out of file descriptors: new connections wait (raise LimitNOFILE?)",
                    error=exc.strerror,
                    times=self.count,
                )
                self._logged_at = now
                self.count = 0
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)
