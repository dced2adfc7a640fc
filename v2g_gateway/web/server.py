"""The web app's HTTP server (aiohttp) inside the daemon: start, the live task, close.

aiohttp is one well-kept asyncio dependency that serves HTTP, server-sent events and TLS in the
daemon's own event loop and TaskGroup: no second process, no ASGI layer, little memory on a Pi.
Middlewares put the rules that hold for every request in one place: security headers, the
session check, CSRF on every change, the Origin check, and errors as one clear JSON sentence.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from v2g_gateway.config import is_loopback_host
from v2g_gateway.errors import ConfigError
from v2g_gateway.web import api, pages
from v2g_gateway.web.auth import COOKIE, Session, csrf_ok
from v2g_gateway.web.context import CTX, NEW_COOKIE, SESSION, WebContext
from v2g_gateway.web.views import Sources

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 64 * 1024
# Addresses reachable without a session (the login itself, the page's own files).
OPEN_PATHS = ("/login", "/api/login", "/api/session", "/static/")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def ssl_context(ctx: WebContext) -> ssl.SSLContext | None:
    """HTTPS with the OCPP server's certificate and key when those are configured."""
    web_cfg, oc = ctx.cfg.web, ctx.cfg.ocpp
    assert web_cfg is not None
    have = oc.tls_cert_file is not None and oc.tls_key_file is not None
    if web_cfg.tls is False or (web_cfg.tls is None and not have):
        return None
    if not have:
        raise ConfigError("config", "web.tls", "needs [ocpp] tls_cert_file and tls_key_file")
    assert oc.tls_cert_file is not None and oc.tls_key_file is not None
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        tls.load_cert_chain(oc.tls_cert_file, oc.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("config", "ocpp.tls_*", f"cannot load TLS files: {exc}") from None
    return tls


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _error(request: web.Request, status: int, message: str) -> web.StreamResponse:
    if _is_api(request) or request.method != "GET":
        return web.json_response({"ok": False, "error": message}, status=status)
    return web.Response(
        text=pages.error_page(status, message), status=status, content_type="text/html"
    )


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser (curl, scripts): the CSRF token still applies
        return True
    parts = urlsplit(origin)
    return parts.netloc.lower() == request.host.lower()


def _loopback_host_header(request: web.Request) -> bool:
    """Without a password only names of this machine may be used (no DNS rebinding)."""
    host = request.host.rsplit(":", 1)[0] if request.host.count(":") == 1 else request.host
    return is_loopback_host(host.strip("[]") or "localhost")


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who may do what: every rule that holds for all requests, before any handler runs."""
    ctx: WebContext = request.app[CTX]
    if not ctx.password.required and not _loopback_host_header(request):
        return _error(request, 403, "this web app has no password: open it as localhost")
    if request.method not in ("GET", "HEAD") and not _same_origin(request):
        return _error(request, 403, "request from another site refused")
    session = ctx.sessions.get(request.cookies.get(COOKIE))
    if session is None and not ctx.password.required:
        session = ctx.new_session(request)  # loopback without a password: a session anyway
    if session is not None:
        request[SESSION] = session
    if not request.path.startswith(OPEN_PATHS):
        if session is None:
            if _is_api(request) or request.method != "GET":
                return _error(request, 401, "log in first")
            return web.Response(status=303, headers={"Location": "/login"})
        if request.method not in ("GET", "HEAD") and not await _csrf(request, session):
            return _error(request, 403, "missing or wrong CSRF token (reload the page)")
    response = await handler(request)
    pending = request.get(NEW_COOKIE)
    if pending is not None and not response.prepared:
        ctx.set_cookie(response, pending)
    return response


async def _csrf(request: web.Request, session: Session) -> bool:
    sent = request.headers.get("X-CSRF-Token")
    if sent is None and request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else None
    return csrf_ok(session, sent)


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; failures as one clear sentence, never a traceback."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            response = _error(request, exc.status, exc.reason)
        else:
            response = web.Response(status=exc.status, headers=exc.headers)
    except Exception:
        log.exception("web.handler_failed", path=request.path)
        response = _error(request, 500, "internal error (see the gateway's log)")
    if response.prepared:  # a stream (live updates) set its own headers
        return response
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")  # no-referrer makes Origin "null"
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Cache-Control", "no-store")
    return response


class WebServer:
    """The web app of one gateway: `start()` binds, `run()` is the live task, `close()` stops."""

    def __init__(self, src: Sources) -> None:
        assert src.cfg.web is not None
        self.ctx = WebContext(src)
        app = web.Application(middlewares=[_headers, _guard], client_max_size=MAX_BODY)
        app[CTX] = self.ctx
        api.add_routes(app)
        pages.add_routes(app)
        self._app = app
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.tls = False

    async def start(self) -> None:
        cfg = self.ctx.cfg.web
        assert cfg is not None
        tls = ssl_context(self.ctx)
        self.tls = tls is not None
        self.ctx.secure_cookie = self.tls
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, cfg.host, cfg.port, ssl_context=tls)
        try:
            await self._site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        log.info("web app listening", url=self.url)

    @property
    def port(self) -> int:
        assert self._runner is not None, "WebServer.start() has not run"
        addrs = self._runner.addresses
        return int(addrs[0][1])

    @property
    def url(self) -> str:
        cfg = self.ctx.cfg.web
        assert cfg is not None
        host = cfg.host
        if host in ("0.0.0.0", "::"):
            host = "localhost"
        elif ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    async def run(self) -> None:
        await self.ctx.live.run()

    async def close(self) -> None:
        self.ctx.live.close()
        await self.ctx.tests.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
