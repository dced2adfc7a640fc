"""The websocket handshake: who may connect, and what trying costs someone who may not.

Checked in this order, cheapest first, before any OCPP frame is read (docs/security.md):
1. back-off: an address (or a charger identity) with repeated failed logins is answered 429 with
   Retry-After at once, nothing checked (csms/ratelimit.py Backoff; the identity's own last good
   address is exempt from the identity's back-off, so a guesser elsewhere cannot lock it out);
2. the identity (the URL path's last segment) must be a configured charger;
3. profile 3: the client certificate's CN must be the identity;
4. the basic-auth password (profiles 1 and 2 always; profile 3 when the charger has one).
Every refusal, websockets' own (a missing or wrong subprotocol: 400) included, is reported
through refusal_report.py (a count per minute). Unfinished handshakes are bounded by
handshake_guard.py.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.csms.auth import (
    Credentials,
    identity_from_path,
    parse_basic_auth,
    peer_common_name,
)
from v2g_gateway.csms.handshake_guard import (
    OutOfFiles,
    PendingLimits,
    guarded_connection,
    peer_address,
)
from v2g_gateway.csms.ratelimit import Backoff
from v2g_gateway.csms.refusal_report import RefusalReport
from v2g_gateway.model import Notification

ADDRESS_BACKOFF = "backing off: repeated failed logins from this address"
IDENTITY_BACKOFF = "backing off: repeated failed logins as this identity"
_WS_PREFIX = "Failed to open a WebSocket connection: "


class HandshakeCheck:
    def __init__(self, cfg: Config, clock: Clock, publish: Callable[[Notification], None]) -> None:
        oc = cfg.ocpp
        self.cfg = cfg
        self.credentials = Credentials(cfg)
        self.report = RefusalReport(clock, publish, self.credentials.known)
        self.limits = PendingLimits(
            oc.max_pending_handshakes,
            oc.max_pending_per_address,
            lambda address, reason: self.report.refused(None, address, reason),
        )

        def backoff() -> Backoff:
            return Backoff(clock, free=oc.login_failures_free, max_s=oc.login_backoff_max_s)

        self.by_address = backoff()
        self.by_identity = backoff()
        self.out_of_files = OutOfFiles(clock)
        self._good_address: dict[str, str] = {}  # identity -> address of its last good login
        self._ours: set[ServerConnection] = set()  # refused by process_request (reported)
        self._ticker: asyncio.Task[None] | None = None

    def serve_options(self) -> dict[str, Any]:
        """The keyword arguments of websockets' serve() that belong to the handshake."""
        return {
            "open_timeout": self.cfg.ocpp.handshake_timeout_s,  # TLS handshake too
            "create_connection": guarded_connection(self.limits),
            "process_request": self.process_request,
            "process_response": self.process_response,
        }

    def start(self) -> None:
        self.out_of_files.install(asyncio.get_running_loop())
        self._ticker = asyncio.create_task(self.report.run(), name="handshake-refusal-report")

    def close(self) -> None:
        self.out_of_files.uninstall()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self.report.flush()

    # ---------------------------------------------------------------- websockets hooks

    async def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        ident = identity_from_path(request.path)
        address = peer_address(conn.transport)
        known = ident is not None and self.credentials.known(ident)
        wait = self.by_address.wait_s(address)
        reason = ADDRESS_BACKOFF
        if wait <= 0 and known and ident is not None and self._good_address.get(ident) != address:
            wait, reason = self.by_identity.wait_s(ident), IDENTITY_BACKOFF
        if wait > 0:
            return self._refuse(conn, ident, address, reason, retry_after_s=wait)
        why = await self._why_not(conn, request, ident)
        if why is not None:
            self.by_address.failed(address)
            if known and ident is not None:
                self.by_identity.failed(ident)
            return self._refuse(conn, ident, address, why)
        assert ident is not None
        self.by_address.succeeded(address)
        self.by_identity.succeeded(ident)
        self._good_address[ident] = address
        return None

    def process_response(
        self, conn: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        """Answered: no longer pending; a refusal of websockets' own is reported too."""
        self.limits.done(conn)
        if conn in self._ours:
            self._ours.discard(conn)
        elif response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            text = (response.body or b"").decode("utf-8", "replace").splitlines()
            why = (text[0] if text else "").removeprefix(_WS_PREFIX).rstrip(".")
            self.report.refused(
                identity_from_path(request.path),
                peer_address(conn.transport),
                why or f"HTTP {response.status_code}",
            )
        return None

    # ---------------------------------------------------------------- the checks

    async def _why_not(
        self, conn: ServerConnection, request: Request, ident: str | None
    ) -> str | None:
        """None if the connection proves it is `ident`, else why not (never the password)."""
        if ident is None or not self.credentials.known(ident):
            return "unknown identity"
        if self.cfg.ocpp.security_profile == 3:
            ssl_object = conn.transport.get_extra_info("ssl_object")
            cn = peer_common_name(ssl_object.getpeercert() if ssl_object else None)
            if cn != ident:
                return f"client certificate CN {cn!r} is not the identity"
            if not self.credentials.has_password(ident):
                return None  # no password configured: the certificate alone decides
        auth = parse_basic_auth(_header(request.headers, "Authorization"), ident)
        if auth is None:
            return "no basic auth"
        user, password = auth
        # scrypt takes milliseconds: off the event loop, so a reconnect storm of chargers
        # does not stall the sessions already running.
        if user != ident or not await asyncio.to_thread(self.credentials.verify, ident, password):
            return "wrong user or password"
        return None

    def _refuse(
        self,
        conn: ServerConnection,
        ident: str | None,
        address: str,
        why: str,
        *,
        retry_after_s: float | None = None,
    ) -> Response:
        self.report.refused(ident, address, why)
        self._ours.add(conn)
        if retry_after_s is not None:
            response = conn.respond(HTTPStatus.TOO_MANY_REQUESTS, "too many failed logins\n")
            response.headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
            return response
        response = conn.respond(HTTPStatus.UNAUTHORIZED, "unauthorized\n")
        response.headers["WWW-Authenticate"] = 'Basic realm="v2g-gateway", charset="UTF-8"'
        return response


def _header(headers: Headers, name: str) -> str | None:
    values = headers.get_all(name)
    return values[0] if len(values) == 1 else None
