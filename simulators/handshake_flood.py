"""Half-open connections to an OCPP port: TCP connects that never finish the websocket handshake.

What a hostile device on the LAN does to exhaust a server's file descriptors (issue 19): every
other connection sends nothing at all, the rest stop in the middle of the HTTP request. Used by
bench/bench_handshakes.py and the hardening tests; loopback only (source addresses 127.0.0.x
stand in for different devices).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

PARTIAL_REQUEST = (
    b"GET /ocpp/garage HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
)


@dataclass
class Flood:
    """The connections made; `refused` counts connects that failed outright."""

    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)
    refused: int = 0

    async def closed_by_server(self, timeout_s: float) -> int:
        """How many of the connections the server has closed within `timeout_s` (EOF seen)."""

        async def eof(reader: asyncio.StreamReader) -> bool:
            with contextlib.suppress(OSError):
                await reader.read()  # until EOF; the server never answers a half-open request
                return True
            return True

        waits = [asyncio.create_task(eof(r)) for r, _ in self.streams]
        if not waits:
            return 0
        done, pending = await asyncio.wait(waits, timeout=timeout_s)
        for t in pending:
            t.cancel()
        return len(done)

    def close(self) -> None:
        for _, w in self.streams:
            w.transport.abort()
        self.streams.clear()


async def half_open(
    host: str,
    port: int,
    count: int,
    *,
    sources: tuple[str, ...] = ("127.0.0.2",),
    batch: int = 100,
) -> Flood:
    """Open `count` connections (round robin over `sources`), `batch` at a time."""
    flood = Flood()

    async def one(i: int) -> None:
        try:
            r, w = await asyncio.open_connection(
                host, port, local_addr=(sources[i % len(sources)], 0)
            )
        except OSError:
            flood.refused += 1
            return
        if i % 2:
            w.write(PARTIAL_REQUEST)  # stops mid-handshake: the request never ends
        flood.streams.append((r, w))

    for start in range(0, count, batch):
        await asyncio.gather(*(one(i) for i in range(start, min(count, start + batch))))
    return flood
