"""State store: SQLite (WAL, one writer) mirrored in memory."""

from v2g_gateway.store.db import Store

__all__ = ["Store"]
