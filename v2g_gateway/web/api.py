"""The JSON API under /api/ (docs/web.md): what the page reads and every change it makes.

Answers are JSON objects; a refused change is HTTP 422 with `{"ok": false, "error": sentence}`,
the sentence shown next to the control. The session and CSRF rules live in server.py's
middleware, so no handler here can forget them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from v2g_gateway.web import actions, pages
from v2g_gateway.web.auth import COOKIE, Session
from v2g_gateway.web.context import CTX, NEW_COOKIE, SESSION, WebContext
from v2g_gateway.web.live import sse
from v2g_gateway.web.plan import plan_view
from v2g_gateway.web.setup import setup_view
from v2g_gateway.web.testdischarge import TestRefused
from v2g_gateway.web.views import notifications_view, override_text

KEEPALIVE_S = 20.0

__all__ = ["CTX", "NEW_COOKIE", "SESSION", "add_routes"]


def ctx_of(request: web.Request) -> WebContext:
    return request.app[CTX]


def session_of(request: web.Request) -> Session | None:
    s = request.get(SESSION)
    return s if isinstance(s, Session) else None


def refused(message: str, status: int = 422) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BodyError(f"the body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BodyError(f"the body must be a JSON object, got {type(body).__name__}")
    return body


class BodyError(ValueError):
    pass


# ---------------------------------------------------------------------------- login


async def login(request: web.Request) -> web.StreamResponse:
    """POST /api/login {password} (and the no-JavaScript form at POST /login)."""
    ctx = ctx_of(request)
    form = request.content_type == "application/x-www-form-urlencoded"
    if form:
        password = (await request.post()).get("password")
    else:
        try:
            password = (await json_body(request)).get("password")
        except BodyError as exc:
            return refused(str(exc), 400)

    def answer(status: int, message: str) -> web.Response:
        if form:
            return web.Response(
                text=pages.login_page(message), status=status, content_type="text/html"
            )
        return refused(message, status)

    address = request.remote or "?"
    wait = ctx.limiter.retry_after(address)
    if wait > 0:
        r = answer(429, f"too many failed logins: try again in {wait:.0f} s")
        r.headers["Retry-After"] = str(int(wait) + 1)
        return r
    if not isinstance(password, str) or not password or len(password) > 200:
        return answer(400, "give the password")
    if not await asyncio.to_thread(ctx.password.verify, password):
        ctx.limiter.failed(address)
        return answer(401, "wrong password")
    ctx.limiter.succeeded(address)
    ctx.sessions.drop(request.cookies.get(COOKIE))  # a new session id at every login
    token, session = ctx.sessions.create()
    response: web.StreamResponse
    if form:
        response = web.Response(status=303, headers={"Location": "/"})
    else:
        response = web.json_response({"ok": True, "csrf": session.csrf})
    ctx.set_cookie(response, token)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    ctx.sessions.drop(request.cookies.get(COOKIE))
    form = request.content_type == "application/x-www-form-urlencoded"
    response: web.StreamResponse = (
        web.Response(status=303, headers={"Location": "/login"})
        if form
        else web.json_response({"ok": True})
    )
    response.del_cookie(COOKIE, path="/")
    request.pop(NEW_COOKIE, None)
    return response


async def session_info(request: web.Request) -> web.Response:
    ctx, s = ctx_of(request), session_of(request)
    return web.json_response(
        {
            "authenticated": s is not None,
            "password_required": ctx.password.required,
            "csrf": None if s is None else s.csrf,
        }
    )


# ---------------------------------------------------------------------------- reading


async def status(request: web.Request) -> web.Response:
    return web.json_response(ctx_of(request).status(), dumps=_dumps)


async def plan(request: web.Request) -> web.Response:
    body = plan_view(ctx_of(request).src, request.match_info["vehicle"])
    if body is None:
        return refused(f"unknown vehicle {request.match_info['vehicle']!r}", 404)
    return web.json_response(body, dumps=_dumps)


async def notifications(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "30"))
    except ValueError:
        return refused("limit must be a whole number", 400)
    if not 1 <= limit <= 200:
        return refused("limit must be between 1 and 200", 400)
    return web.json_response(
        {"notifications": notifications_view(ctx_of(request).src, limit)}, dumps=_dumps
    )


async def money(request: web.Request) -> web.Response:
    return web.json_response(ctx_of(request).money.view(), dumps=_dumps)


async def setup(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    return web.json_response(setup_view(ctx.src, ctx.tests, request.host), dumps=_dumps)


async def events(request: web.Request) -> web.StreamResponse:
    """GET /api/events: server-sent events `status` (coalesced) and `notification`."""
    ctx = ctx_of(request)
    q = ctx.live.subscribe()
    if q is None:
        return refused("too many live connections", 503)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n" + sse("status", ctx.status()))
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    item = await q.get()
            except TimeoutError:
                item = b": keepalive\n\n"
            if item is None:
                break
            await response.write(item)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        ctx.live.unsubscribe(q)
    return response


# ---------------------------------------------------------------------------- changes


async def override(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    vid = request.match_info["vehicle"]
    if ctx.cfg.vehicle(vid) is None:
        return refused(f"unknown vehicle {vid!r}", 404)
    try:
        result = actions.override(ctx.commands, vid, await json_body(request))
    except (BodyError, actions.ActionError) as exc:
        return refused(str(exc))
    now = ctx.src.clock.now()
    active = [o for o in ctx.src.store.active_overrides(now) if o.vehicle_id == vid]
    if result["action"] == "automatic":
        message = "automatic: following the plan"
    elif active:
        message = override_text(active[0], ctx.cfg, now)
    else:
        message = result["action"]
    return web.json_response({"ok": True, "message": message, "result": result}, dumps=_dumps)


async def preference(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    try:
        result = actions.preference(ctx.commands, await json_body(request))
    except (BodyError, actions.ActionError) as exc:
        return refused(str(exc))
    value = result["value"]
    shown = "cleared" if value is None else f"set to {json.dumps(value)}"
    message = f"{result['key'].replace('_', ' ')} {shown}"
    return web.json_response({"ok": True, "message": message, "result": result}, dumps=_dumps)


async def test_discharge(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    cid = request.match_info["charger"]
    if ctx.cfg.charger(cid) is None:
        return refused(f"unknown charger {cid!r}", 404)
    if request.method == "GET":
        r = ctx.tests.results.get(cid)
        return web.json_response({"ok": True, "test": None if r is None else r.json()})
    try:
        r = ctx.tests.start(cid)
    except TestRefused as exc:
        return refused(str(exc))
    return web.json_response({"ok": True, "message": r.message, "test": r.json()}, status=202)


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), default=str, allow_nan=False)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/login", login)
    app.router.add_post("/api/logout", logout)
    app.router.add_get("/api/session", session_info)
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/vehicles/{vehicle}/plan", plan)
    app.router.add_post("/api/vehicles/{vehicle}/override", override)
    app.router.add_post("/api/preference", preference)
    app.router.add_get("/api/notifications", notifications)
    app.router.add_get("/api/money", money)
    app.router.add_get("/api/setup", setup)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/chargers/{charger}/test-discharge", test_discharge)
    app.router.add_post("/api/chargers/{charger}/test-discharge", test_discharge)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
