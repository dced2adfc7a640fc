"""Which OCPP version a charger's connection speaks: 2.1 or 2.0.1, negotiated at the handshake.

The charger lists the subprotocols it speaks in its order of preference, and its preference wins
(OCPP-J: the server picks one the client offered); a `[[chargers]] ocpp_version` pins one
version for a charger whose firmware offers a version it speaks badly. An offer without any
version the gateway speaks is refused with HTTP 400, as before 2.1 existed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import NegotiationError
from websockets.typing import Subprotocol

from v2g_gateway.config import Config
from v2g_gateway.csms.auth import identity_from_path
from v2g_gateway.csms.frames import V21, V201

__all__ = ["SUBPROTOCOLS", "V21", "V201", "pick", "selector", "version_of"]

# Subprotocol name -> OCPP version (the name frames.py and the schemas use).
VERSIONS = {"ocpp2.1": V21, "ocpp2.0.1": V201}
SUBPROTOCOLS = [Subprotocol(name) for name in VERSIONS]


def pick(offered: Sequence[str], pinned: str | None = None) -> str:
    """The subprotocol to answer: the first one offered that the gateway speaks (and that the
    charger's pinned version allows); NegotiationError when there is none."""
    for name in offered:
        version = VERSIONS.get(name)
        if version is not None and (pinned is None or version == pinned):
            return name
    wanted = [n for n, v in VERSIONS.items() if pinned is None or v == pinned]
    raise NegotiationError(
        f"no OCPP version in common: offered {', '.join(offered) or 'none'}, "
        f"expected {' or '.join(wanted)}"
    )


def selector(cfg: Config) -> Callable[[ServerConnection, Sequence[Subprotocol]], Subprotocol]:
    """websockets' select_subprotocol hook for this configuration."""

    def select(conn: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol:
        ident = identity_from_path(conn.request.path if conn.request else "")
        ccfg = cfg.charger(ident) if ident else None
        pinned = ccfg.ocpp_version if ccfg is not None else None
        return Subprotocol(pick(offered, pinned))

    return select


def version_of(subprotocol: str | None) -> str:
    """The version a connection speaks (2.0.1 when, as in tests, none was negotiated)."""
    return VERSIONS.get(subprotocol or "", V201)
