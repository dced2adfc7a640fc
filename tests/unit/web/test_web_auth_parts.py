"""The web app's auth parts on an injected clock: the login limiter's window, session lifetime
and cap, and the password hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from v2g_gateway.config import is_loopback_host, parse_config
from v2g_gateway.web.auth import MAX_SESSIONS, LoginLimiter, PasswordCheck, Sessions, csrf_ok


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_limiter_blocks_after_five_failures_until_the_window_moves_on() -> None:
    m = Mono()
    lim = LoginLimiter(clock=m)
    for _ in range(5):
        assert lim.retry_after("10.0.0.2") == 0
        lim.failed("10.0.0.2")
        m.t += 1
    wait = lim.retry_after("10.0.0.2")
    assert wait == 55  # failures at 0..4 s, now 5 s: the first leaves the window at 60 s
    assert lim.retry_after("10.0.0.3") == 0  # another address is not blocked
    m.t += wait
    assert lim.retry_after("10.0.0.2") == 0


def test_limiter_bounds_guessing_from_many_addresses() -> None:
    m = Mono()
    lim = LoginLimiter(clock=m, per_address=5, in_total=30)
    for i in range(30):
        lim.failed(f"10.0.1.{i}")
    assert lim.retry_after("10.0.9.9") > 0


def test_a_success_clears_the_address() -> None:
    lim = LoginLimiter(clock=Mono())
    for _ in range(4):
        lim.failed("a")
    lim.succeeded("a")
    lim.failed("a")
    assert lim.retry_after("a") == 0


def test_sessions_expire_unused_and_are_capped() -> None:
    m = Mono()
    sessions = Sessions(lifetime_s=100, clock=m)
    token, s = sessions.create()
    m.t += 99
    assert sessions.get(token) is s  # use renews it
    m.t += 99
    assert sessions.get(token) is s
    m.t += 101
    assert sessions.get(token) is None
    first, _ = sessions.create()
    for _ in range(MAX_SESSIONS):
        m.t += 1
        sessions.create()
    assert len(sessions) == MAX_SESSIONS
    assert sessions.get(first) is None  # the least recently used went
    assert sessions.get("x" * 500) is None and sessions.get(None) is None


def test_csrf_compare() -> None:
    _, s = Sessions(10).create()
    assert csrf_ok(s, s.csrf)
    assert not csrf_ok(s, None) and not csrf_ok(s, s.csrf + "x")


def test_password_is_kept_hashed(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-a-file-123\n")
    cfg = parse_config({"web": {"password_file": str(tmp_path / "pw")}})
    check = PasswordCheck(cfg)
    assert check.required
    assert check.verify("from-a-file-123") and not check.verify("from-a-file-12")
    assert "from-a-file-123" not in repr(vars(check))
    assert not PasswordCheck(parse_config({"web": {"host": "127.0.0.1"}})).required
    assert "secret-password" not in repr(parse_config({"web": {"password": "secret-password"}}).web)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.10", False),
        ("pi.local", False),
        ("::", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
