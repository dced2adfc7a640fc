"""Who may use the web app: login, sessions, CSRF on every change, the Origin and Host checks,
the login rate limit, cookie flags, security headers, and no secret in any answer."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from web_helpers import CHARGER_PASSWORD, WEB_PASSWORD, base_url, client, running, web_config

# Every change the API offers, with a body that would be accepted.
CHANGES = [
    ("/api/vehicles/car/override", {"action": "hold", "minutes": 30}),
    ("/api/preference", {"key": "v2g_enabled", "value": False}),
    ("/api/chargers/garage/test-discharge", {}),
    ("/api/logout", {}),
]
READS = [
    "/api/status",
    "/api/vehicles/car/plan",
    "/api/notifications",
    "/api/money",
    "/api/setup",
    "/api/chargers/garage/test-discharge",
    "/",
    "/setup",
]


async def test_pages_and_answers_need_a_session(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw, login=False) as c:
        for path in READS:
            r = await c.get(path)
            if path.startswith("/api/"):
                assert r.status_code == 401, path
                assert r.json() == {"ok": False, "error": "log in first"}
            else:
                assert r.status_code == 303 and r.headers["location"] == "/login", path
        for path, body in CHANGES:
            r = await c.post(path, json=body)
            assert r.status_code == 401, path
        login = await c.get("/login")
        assert login.status_code == 200 and 'type="password"' in login.text
        assert (await c.get("/api/session")).json() == {
            "authenticated": False,
            "password_required": True,
            "csrf": None,
        }


async def test_every_change_needs_the_csrf_token(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw) as c:
        token = c.headers.pop("X-CSRF-Token")
        for path, body in CHANGES:
            missing = await c.post(path, json=body)
            assert missing.status_code == 403, path
            assert "CSRF" in missing.json()["error"]
            wrong = await c.post(path, json=body, headers={"X-CSRF-Token": token[:-1] + "x"})
            assert wrong.status_code == 403, path
        assert gw.store.active_overrides(gw.clock.now()) == ()
        assert gw.policy.preference("v2g_enabled") is True
        ok = await c.post(CHANGES[0][0], json=CHANGES[0][1], headers={"X-CSRF-Token": token})
        assert ok.status_code == 200 and ok.json()["ok"] is True


async def test_a_request_from_another_site_is_refused_even_with_the_token(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw) as c:
        r = await c.post(
            "/api/preference",
            json={"key": "v2g_enabled", "value": False},
            headers={"Origin": "http://evil.example"},
        )
        assert r.status_code == 403 and "another site" in r.json()["error"]
        assert gw.policy.preference("v2g_enabled") is True
        same = await c.post(
            "/api/preference",
            json={"key": "v2g_enabled", "value": False},
            headers={"Origin": base_url(gw).rstrip("/")},
        )
        assert same.status_code == 200


async def test_login_cookie_flags_and_logout(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw, login=False) as c:
        r = await c.post("/api/login", json={"password": WEB_PASSWORD})
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http on loopback; see the TLS test
        assert WEB_PASSWORD not in r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf"]
        assert (await c.get("/api/status")).status_code == 200
        out = await c.post("/api/logout", json={})
        assert out.status_code == 200
        assert (await c.get("/api/status")).status_code == 401


async def test_login_by_form_without_javascript(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw, login=False) as c:
        bad = await c.post("/login", data={"password": "nope-nope"})
        assert bad.status_code == 401 and "wrong password" in bad.text
        good = await c.post("/login", data={"password": WEB_PASSWORD})
        assert good.status_code == 303 and good.headers["location"] == "/"
        page = await c.get("/")
        assert page.status_code == 200 and "Charger setup" in page.text


async def test_login_rate_limit_refuses_even_the_right_password(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw, login=False) as c:
        for _ in range(5):
            r = await c.post("/api/login", json={"password": "guess-guess"})
            assert r.status_code == 401
        limited = await c.post("/api/login", json={"password": WEB_PASSWORD})
        assert limited.status_code == 429
        assert "too many failed logins" in limited.json()["error"]
        assert 1 <= int(limited.headers["Retry-After"]) <= 61
        assert "set-cookie" not in limited.headers


async def test_no_secret_in_any_page_or_answer(tmp_path: Path) -> None:
    cfg = web_config(tmp_path, prices={"token": "entsoe-token-abcdef"})
    async with running(cfg) as gw, client(gw) as c:
        bodies = [(await c.get(p)).text for p in READS]
        bodies.append((await c.get("/api/session")).text)
        for body in bodies:
            for secret in (WEB_PASSWORD, CHARGER_PASSWORD, "entsoe-token-abcdef"):
                assert secret not in body
        setup = (await c.get("/api/setup")).json()
        assert setup["chargers"][0]["password"] == "set in the config (not shown)"


async def test_security_headers_on_pages_and_answers(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw) as c:
        for path in ("/", "/api/status", "/static/app.js", "/login"):
            r = await c.get(path)
            csp = r.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"


async def test_loopback_without_password_needs_no_login_but_still_csrf(tmp_path: Path) -> None:
    cfg = web_config(tmp_path, web={"password": None})
    async with running(cfg) as gw, client(gw, login=False) as c:
        info = (await c.get("/api/session")).json()
        assert info["authenticated"] is True and info["password_required"] is False
        assert (await c.get("/api/status")).status_code == 200
        body = {"key": "v2g_enabled", "value": False}
        assert (await c.post("/api/preference", json=body)).status_code == 403
        ok = await c.post("/api/preference", json=body, headers={"X-CSRF-Token": info["csrf"]})
        assert ok.status_code == 200
        # DNS rebinding: a page of another name resolving to 127.0.0.1 gets nothing.
        r = await c.get("/api/status", headers={"Host": "attacker.example:80"})
        assert r.status_code == 403


def test_a_password_is_required_unless_loopback(tmp_path: Path) -> None:
    from v2g_gateway.errors import ConfigError

    with pytest.raises(ConfigError, match=r"web: the web app listens on '0\.0\.0\.0'"):
        web_config(tmp_path, web={"host": "0.0.0.0", "password": None})
    with pytest.raises(ConfigError, match=r"web\.password"):
        web_config(tmp_path, web={"password": "short"})
    assert web_config(tmp_path, web={"host": "::1", "password": None}).web is not None


async def test_https_with_the_ocpp_certificate(tmp_path: Path) -> None:
    from pki import TestCA

    ca = TestCA(tmp_path / "pki")
    server = ca.issue("localhost", server=True)
    cfg = web_config(
        tmp_path / "state",
        ocpp={
            "security_profile": 2,
            "tls_cert_file": str(server.cert),
            "tls_key_file": str(server.key),
        },
    )
    async with running(cfg) as gw:
        assert gw.web is not None and gw.web.url.startswith("https://")
        verify = ssl.create_default_context(cafile=str(ca.pair.cert))
        async with httpx.AsyncClient(base_url=gw.web.url, verify=verify) as c:
            r = await c.post("/api/login", json={"password": WEB_PASSWORD})
            assert r.status_code == 200
            assert "Secure" in r.headers["set-cookie"]
        async with httpx.AsyncClient(base_url=gw.web.url.replace("https", "http")) as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get("/api/session")
