"""Who may use the web app: a hashed password, server-side sessions with a CSRF token each, and
a login rate limit.

The password is read once and kept only as a salted scrypt hash (as the charger passwords are).
A session is a random token in an HttpOnly, SameSite=Strict cookie; the server keeps only its
SHA-256, so neither a memory dump nor a log line can be replayed. Every change needs the session's
CSRF token as well, sent in a header that a cross-site form cannot set.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from v2g_gateway.config import Config, read_secret

# Modest cost: verification runs off the event loop, once per login, not per request.
_N, _R, _P = 2**14, 8, 1
MAX_SESSIONS = 64
COOKIE = "v2g_session"


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32, maxmem=64 * 1024 * 1024
    )


class PasswordCheck:
    """The web password as a salted hash; None means no password is needed (loopback only)."""

    def __init__(self, cfg: Config, source: str = "config") -> None:
        web = cfg.web
        secret = None
        if web is not None:
            secret = read_secret(
                source, "web.password", web.password, web.password_file, web.credential
            )
        self._salt = os.urandom(16)
        self._digest = None if secret is None else _scrypt(secret, self._salt)

    @property
    def required(self) -> bool:
        return self._digest is not None

    def verify(self, password: str) -> bool:
        """Constant-time check; slow on purpose (call it in a thread)."""
        if self._digest is None:
            return True
        return hmac.compare_digest(self._digest, _scrypt(password, self._salt))


@dataclass(slots=True)
class Session:
    csrf: str
    created: float
    last_seen: float


def _key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Sessions:
    """Logged-in browsers, in memory (a restart logs everyone out, which is the safe side)."""

    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._lifetime = lifetime_s
        self._clock = clock
        self._by_key: dict[str, Session] = {}

    def create(self) -> tuple[str, Session]:
        """A new session: (the cookie value, the session). The oldest go beyond MAX_SESSIONS."""
        now = self._clock()
        self._expire(now)
        while len(self._by_key) >= MAX_SESSIONS:
            oldest = min(self._by_key, key=lambda k: self._by_key[k].last_seen)
            del self._by_key[oldest]
        token = secrets.token_urlsafe(32)
        s = Session(csrf=secrets.token_urlsafe(24), created=now, last_seen=now)
        self._by_key[_key(token)] = s
        return token, s

    def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 128:
            return None
        now = self._clock()
        s = self._by_key.get(_key(token))
        if s is None:
            return None
        if now - s.last_seen > self._lifetime:
            del self._by_key[_key(token)]
            return None
        s.last_seen = now
        return s

    def drop(self, token: str | None) -> None:
        if token:
            self._by_key.pop(_key(token), None)

    def _expire(self, now: float) -> None:
        for k in [k for k, s in self._by_key.items() if now - s.last_seen > self._lifetime]:
            del self._by_key[k]

    def __len__(self) -> int:
        return len(self._by_key)


def csrf_ok(session: Session, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode())


@dataclass(slots=True)
class LoginLimiter:
    """Failed logins per address (and in all) within a sliding window; beyond the limit, every
    attempt is refused until the window has moved on, the right password included."""

    per_address: int = 5
    in_total: int = 30
    window_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _fails: dict[str, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)

    def retry_after(self, address: str) -> float:
        """Seconds until `address` may try again; 0 when it may now."""
        now = self._clock_now()
        mine = self._fails.get(address, deque())
        waits = []
        if len(mine) >= self.per_address:
            waits.append(mine[-self.per_address] + self.window_s - now)
        if len(self._all) >= self.in_total:
            waits.append(self._all[-self.in_total] + self.window_s - now)
        return max([0.0, *waits])

    def failed(self, address: str) -> None:
        now = self._clock_now()
        self._fails.setdefault(address, deque()).append(now)
        self._all.append(now)

    def succeeded(self, address: str) -> None:
        self._fails.pop(address, None)

    def _clock_now(self) -> float:
        now = self.clock()
        cut = now - self.window_s
        while self._all and self._all[0] <= cut:
            self._all.popleft()
        for addr in list(self._fails):
            q = self._fails[addr]
            while q and q[0] <= cut:
                q.popleft()
            if not q:
                del self._fails[addr]
        return now
