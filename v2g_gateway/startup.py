"""Start-up: what cannot work is one line naming the key and the cause; what to do next is logged.

A port already taken, an address this machine does not have, a state_dir the service cannot
write: each becomes a ConfigError (the CLI prints it, exit 2, no traceback). Once the OCPP port
is bound the log says, per charger, the exact URL to type into the charger's settings.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from dataclasses import dataclass

from v2g_gateway.config import Config
from v2g_gateway.errors import ConfigError

_WILDCARDS = ("", "0.0.0.0", "::")


def check_state_dir(cfg: Config, source: str = "config") -> None:
    """The state folder must exist (or be creatable) and be writable by this process."""
    d = cfg.gateway.state_dir
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            source, "gateway.state_dir", f"cannot create {d}: {exc.strerror}{_who()}"
        ) from None
    if not d.is_dir():
        raise ConfigError(source, "gateway.state_dir", f"{d} is not a folder")
    if not os.access(d, os.W_OK | os.X_OK):
        raise ConfigError(
            source, "gateway.state_dir", f"cannot write in {d}: Permission denied{_who()}"
        )


def _who() -> str:
    return f" (running as uid {os.geteuid()})" if hasattr(os, "geteuid") else ""


def bind_error(cfg: Config, exc: OSError, source: str = "config") -> ConfigError:
    """The OCPP server could not listen: say which key to change and why."""
    host, port = cfg.ocpp.host, cfg.ocpp.port
    shown = host or "*"
    if isinstance(exc, socket.gaierror):
        return ConfigError(
            source, "ocpp.host", f"{host!r} is not an address or a name this machine knows"
        )
    if exc.errno == errno.EADDRINUSE:
        hint = "another v2g-gateway or another program listens there"
        m = cfg.mqtt
        if m.enabled and m.port == port and _is_local(m.host):
            hint = "it is [mqtt] port, where the MQTT broker listens"
        return ConfigError(
            source, "ocpp.port", f"port {port} on {shown} is already in use ({hint})"
        )
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EINVAL, errno.EAFNOSUPPORT):
        return ConfigError(
            source,
            "ocpp.host",
            f"{host!r} cannot be bound: not an address of this machine "
            "(use 0.0.0.0 or one of its LAN addresses)",
        )
    if exc.errno == errno.EACCES:
        return ConfigError(
            source, "ocpp.port", f"port {port} needs privileges the service lacks (use 1024+)"
        )
    return ConfigError(source, "ocpp.host", f"cannot listen on {shown}:{port}: {exc.strerror}")


def _is_local(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1", *_WILDCARDS)


@dataclass(frozen=True, slots=True)
class ChargerUrl:
    charger_id: str
    url: str  # what to enter where the charger asks for the full URL
    base_url: str  # where it asks for the CSMS address and appends its identity itself
    security_profile: int
    auth: str


def url_message(u: ChargerUrl) -> str:
    """The log line that answers 'what do I enter in the charger?'."""
    return (
        f"charger {u.charger_id}: enter {u.url} (or {u.base_url} where the charger adds its id), "
        f"security profile {u.security_profile}, {u.auth}"
    )


def _addresses(host: str) -> list[str]:
    """Addresses a charger on the LAN can reach us at: the bound one, or this machine's own."""
    if host not in _WILDCARDS:
        return [host]
    found: list[str] = []
    try:  # the address of the default route (a UDP connect sends nothing)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            found.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(str(info[4][0]))
    except OSError:
        pass
    usable = [a for a in dict.fromkeys(found) if not ipaddress.ip_address(a).is_loopback]
    return usable or ["127.0.0.1"]


def _auth(cfg: Config, index: int) -> str:
    c = cfg.chargers[index]
    if c.credential is not None:
        where = f"credential {c.credential!r}"
    elif c.password_file is not None:
        where = f"password_file {c.password_file}"
    elif c.password is not None:
        where = f"chargers[{index}].password"
    else:
        where = None
    profile = cfg.ocpp.security_profile
    if profile == 3:
        cert = f"a client certificate with CN={c.id}, signed by ocpp.tls_ca_file"
        return cert if where is None else f"{cert} (basic auth optional: {where})"
    return f"basic auth: user {c.id}, password from {where}"


def charger_urls(cfg: Config, port: int) -> list[ChargerUrl]:
    """One entry per configured charger, for every address the gateway is reachable at."""
    scheme = "ws" if cfg.ocpp.security_profile == 1 else "wss"
    out: list[ChargerUrl] = []
    for addr in _addresses(cfg.ocpp.host):
        shown = f"[{addr}]" if ":" in addr else addr
        base = f"{scheme}://{shown}:{port}/"
        for i, c in enumerate(cfg.chargers):
            if c.enabled:
                out.append(
                    ChargerUrl(c.id, base + c.id, base, cfg.ocpp.security_profile, _auth(cfg, i))
                )
    return out
