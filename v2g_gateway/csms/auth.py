"""Handshake security: who a charger claims to be (URL path) and whether it can prove it.

Passwords are read once and kept only as salted scrypt hashes, so a memory dump or a debug print
of the server never shows them. The cost is kept modest because the secrets are long random
strings (brute force is hopeless anyway) and a restart may verify a thousand chargers at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import ssl
from dataclasses import dataclass
from urllib.parse import unquote

from v2g_gateway.config import Config, read_secret
from v2g_gateway.errors import ConfigError

_N, _R, _P = 2**11, 8, 1


@dataclass(frozen=True, slots=True)
class _Hashed:
    salt: bytes
    digest: bytes


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)


class Credentials:
    """Salted hashes of every configured charger's password."""

    def __init__(self, cfg: Config, source: str = "config") -> None:
        self._known = {c.id for c in cfg.chargers}
        self._hashes: dict[str, _Hashed] = {}
        for i, c in enumerate(cfg.chargers):
            key = f"chargers[{i}].password"
            secret = read_secret(source, key, c.password, c.password_file, c.credential)
            if secret is None:
                if cfg.ocpp.security_profile < 3:
                    raise ConfigError(
                        source,
                        key,
                        f"security profile {cfg.ocpp.security_profile} needs a password "
                        "(password, password_file or credential)",
                    )
                continue
            salt = os.urandom(16)
            self._hashes[c.id] = _Hashed(salt, _hash(secret, salt))

    def known(self, charger_id: str) -> bool:
        return charger_id in self._known

    def has_password(self, charger_id: str) -> bool:
        return charger_id in self._hashes

    def verify(self, charger_id: str, password: str) -> bool:
        stored = self._hashes.get(charger_id)
        if stored is None:
            return False
        return hmac.compare_digest(stored.digest, _hash(password, stored.salt))


def identity_from_path(path: str) -> str | None:
    """The last non-empty path segment, URL-decoded; query strings are ignored."""
    segment = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    ident = unquote(segment)
    return ident or None


def parse_basic_auth(header: str | None, identity: str) -> tuple[str, str] | None:
    """(user, password) from an Authorization: Basic header, None if absent or malformed.

    The identity is given because OCPP allows ':' in it, which basic auth cannot delimit.
    """
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if decoded.startswith(identity + ":"):
        return identity, decoded[len(identity) + 1 :]
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def server_ssl_context(cfg: Config) -> ssl.SSLContext | None:
    """TLS for profiles 2 and 3 (3 also demands a client certificate signed by tls_ca_file)."""
    oc = cfg.ocpp
    if oc.security_profile == 1:
        return None
    assert oc.tls_cert_file is not None and oc.tls_key_file is not None  # config validated
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(oc.tls_cert_file, oc.tls_key_file)
        if oc.security_profile == 3:
            assert oc.tls_ca_file is not None
            ctx.load_verify_locations(cafile=oc.tls_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("config", "ocpp.tls_*", f"cannot load TLS files: {exc}") from None
    return ctx


def peer_common_name(cert: dict[str, object] | None) -> str | None:
    """The subject CN of a verified peer certificate (ssl.getpeercert() form)."""
    if not cert:
        return None
    subject = cert.get("subject")
    if not isinstance(subject, tuple):
        return None
    for rdn in subject:
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None
