"""Everything one web app's handlers share, built once per gateway."""

from __future__ import annotations

from aiohttp import web

from v2g_gateway.model import Notification
from v2g_gateway.mqtt.commands import Commands
from v2g_gateway.web.auth import COOKIE, LoginLimiter, PasswordCheck, Session, Sessions
from v2g_gateway.web.live import Live
from v2g_gateway.web.money import Money
from v2g_gateway.web.testdischarge import DischargeTests
from v2g_gateway.web.views import Sources, note_view, status_view

# A session made for this request (its cookie is set on the answer), and the request's session.
NEW_COOKIE = web.RequestKey("v2g.new_cookie", str)
SESSION = web.RequestKey("v2g.session", Session)


class WebContext:
    def __init__(self, src: Sources) -> None:
        web_cfg = src.cfg.web
        assert web_cfg is not None
        self.src = src
        self.cfg = src.cfg
        self.password = PasswordCheck(src.cfg)
        self.sessions = Sessions(web_cfg.session_days * 86400.0)
        self.limiter = LoginLimiter()
        self.session_max_age = int(web_cfg.session_days * 86400)
        self.secure_cookie = False
        # The same parser and Policy as MQTT's set/... topics (no charging start/stop here).
        self.commands = Commands(src.cfg, src.store, src.policy, src.clock)
        self.money = Money(src)
        self.tests = DischargeTests(src)
        self.live = Live(src.store, self.status, self.note, web_cfg.live_interval_s)

    def status(self) -> dict[str, object]:
        return status_view(self.src, self.money.view())

    def note(self, n: Notification) -> dict[str, object]:
        return note_view(self.src, n)

    def new_session(self, request: web.Request) -> Session:
        token, session = self.sessions.create()
        request[NEW_COOKIE] = token
        return session

    def set_cookie(self, response: web.StreamResponse, token: str) -> None:
        response.set_cookie(
            COOKIE,
            token,
            max_age=self.session_max_age,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookie,
        )


CTX = web.AppKey("v2g.ctx", WebContext)
