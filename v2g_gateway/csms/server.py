"""The websocket server chargers connect to: one Session per charger (handshake.py checks who).

Everything a charger says becomes a ChargerEvent handed synchronously to `sink` (the store's
apply()); the server plans nothing. Commands go out through `self.commands`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.csms.auth import identity_from_path, server_ssl_context
from v2g_gateway.csms.commands import Commands
from v2g_gateway.csms.handshake import HandshakeCheck
from v2g_gateway.csms.ratelimit import TokenBucket
from v2g_gateway.csms.session import Session
from v2g_gateway.csms.session21 import Session21
from v2g_gateway.csms.transactions import TransactionTracker
from v2g_gateway.csms.versions import SUBPROTOCOLS, V21, selector, version_of
from v2g_gateway.model import ChargerConnected, ChargerDisconnected, ChargerEvent

log = structlog.get_logger(__name__)


class CsmsServer:
    def __init__(
        self,
        cfg: Config,
        sink: Callable[[ChargerEvent], bool | None],
        clock: Clock,
        *,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self._sink = sink
        # False while the gateway cannot keep what a charger says (store failing): boots are
        # answered Pending, so the charger retries instead of running uncontrolled.
        self.ready = ready
        self._sessions: dict[str, Session] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._trackers: dict[str, TransactionTracker] = {}
        self._server: Server | None = None
        self.commands = Commands(cfg, self.sink, clock, self._sessions.get)
        # Refusals reach the user the way csms notices do (app.py subscribes the store).
        self.handshake = HandshakeCheck(cfg, clock, self.commands.adaptation.notices.publish)

    def sink(self, event: ChargerEvent) -> bool:
        """False when the event could not be stored (the store keeps it in memory)."""
        return self._sink(event) is not False

    async def start(self) -> None:
        oc = self.cfg.ocpp
        self._server = await serve(
            self._serve_session,
            oc.host,
            oc.port,
            subprotocols=SUBPROTOCOLS,
            select_subprotocol=selector(self.cfg),  # the charger's preference (versions.py)
            ssl=server_ssl_context(self.cfg),
            max_size=oc.max_frame_bytes,
            ping_interval=oc.ping_interval_s,
            ping_timeout=oc.ping_timeout_s,
            # A peer that does not finish a close within the ping timeout is as dead as one
            # that misses a pong; do not hold its session (and its EVSE state) for longer.
            close_timeout=min(10.0, oc.ping_timeout_s),
            server_header="v2g-gateway",
            # OCPP frames are small: per-connection deflate state would cost more memory and CPU
            # than it saves on a LAN (and it widens the attack surface: zip bombs).
            compression=None,
            # Handshake timeout, unfinished-handshake caps, back-off, refusal reports.
            **self.handshake.serve_options(),
        )
        self.handshake.start()
        log.info("OCPP server listening", host=oc.host, port=self.port, profile=oc.security_profile)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("CsmsServer.start() has not run")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def tracker_for(self, charger_id: str) -> TransactionTracker:
        """Kept across reconnects: chargers re-send queued TransactionEvents after one."""
        return self._trackers.setdefault(charger_id, TransactionTracker(charger_id))

    def connected(self) -> set[str]:
        return set(self._sessions)

    async def close(self, grace_s: float = 1.0) -> None:
        """Close every session with 1001 (going away) and wait until all are gone.

        A charger that does not answer the close within `grace_s` is cut off (TCP abort), so a
        silent one cannot hold the stop for close_timeout; its session still ends normally.
        """
        if self._server is None:
            return
        server = self._server
        server.close(close_connections=True)
        try:
            async with asyncio.timeout(grace_s):
                await server.wait_closed()
        except TimeoutError:
            for session in list(self._sessions.values()):
                session.ws.transport.abort()
            await server.wait_closed()
        self._server = None
        self.handshake.close()

    # ---------------------------------------------------------------- sessions

    async def _serve_session(self, ws: ServerConnection) -> None:
        ident = identity_from_path(ws.request.path if ws.request else "")
        assert ident is not None  # the handshake refused anything else
        structlog.contextvars.bind_contextvars(charger_id=ident)
        bucket = self._buckets.setdefault(
            ident, TokenBucket(self.cfg.ocpp.max_messages_per_minute, self.clock)
        )
        kind = Session21 if version_of(ws.subprotocol) == V21 else Session
        session = kind(ident, ws, self, bucket)
        old = self._sessions.get(ident)
        self._sessions[ident] = session
        if old is not None:
            log.info("new connection replaces the old session")
            await old.ws.close(1000, "replaced by a new connection")
        log.info("charger connected", remote=str(ws.remote_address), ocpp=session.version)
        try:
            self.sink(ChargerConnected(ident, self.clock.now()))
            await session.start()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("session failed")
            await ws.close(1011, "internal error")
        finally:
            for task in list(session.tasks):
                task.cancel()
            if self._sessions.get(ident) is session:
                del self._sessions[ident]
                log.info("charger disconnected", code=ws.close_code, reason=ws.close_reason)
                try:
                    self.sink(ChargerDisconnected(ident, self.clock.now()))
                except Exception:
                    log.exception("sink failed on disconnect")
