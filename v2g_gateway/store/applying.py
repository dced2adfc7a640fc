"""Charger events into the store, each all or nothing, and what happens when it cannot write.

A charger's event is one SQLite transaction and one change of the in-memory mirror: when the
write fails (disk full, I/O error, a lock held elsewhere) both stay as they were and the event
waits in the spill (store/spill.py) to be written, in order, once the store can. `apply` says
whether it is stored, so the OCPP session answers only what is (docs/reliability.md).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from v2g_gateway.bus import Bus, Changed
from v2g_gateway.clock import Clock
from v2g_gateway.errors import StoreError
from v2g_gateway.model import ChargerEvent, ChargerState, Notification, VehicleState
from v2g_gateway.soc import PlugSession
from v2g_gateway.store.spill import Spill, SpillState

log = structlog.get_logger(__name__)

_Mirror = tuple[dict[str, Any], ...]


class ApplyMixin:
    _clock: Clock
    _spill: Spill
    path: Path
    changes: Bus[Changed]
    _chargers: dict[str, ChargerState]
    _vehicles: dict[str, VehicleState]
    _sessions: dict[str, PlugSession]
    _vehicle_sessions: dict[str, str]
    _lost_transactions: dict[tuple[str, str], None]

    if TYPE_CHECKING:  # provided by the Store and its other mixins

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _apply(self, e: ChargerEvent) -> list[Changed]: ...

        def notify(self, n: Notification) -> None: ...

    def _mirror(self) -> _Mirror:
        """The in-memory state an event may change (dicts of frozen values: a shallow copy)."""
        return (
            dict(self._chargers),
            dict(self._vehicles),
            dict(self._sessions),
            dict(self._vehicle_sessions),
            dict(self._lost_transactions),
        )

    def _restore(self, m: _Mirror) -> None:
        lives: tuple[dict[Any, Any], ...] = (
            self._chargers,
            self._vehicles,
            self._sessions,
            self._vehicle_sessions,
            self._lost_transactions,
        )
        for live, saved in zip(lives, m, strict=True):
            live.clear()
            live.update(saved)

    def apply(self, event: ChargerEvent) -> bool:
        """Record what a charger said; True once it is stored. Never raises.

        False: SQLite cannot write (full, I/O error, locked). The event is kept in memory (the
        spill, store/spill.py) and written, in order, before anything newer once a write
        succeeds; the charger must not be told it was received. A value the store cannot hold
        (SoC outside 0..100, an id beyond SQLite's integers) is logged and dropped (True: a
        resend would not help), and what was stored before stays as it was."""
        if self._spill.events and not self.flush():
            self._spill.keep(event)
            return False
        if self._spill.already_written(event):
            return True
        if self._apply_logged(event):
            return True
        self._spill.keep(event)
        return False

    def flush(self) -> bool:
        """Write what the spill holds; True when it is empty (the store writes again)."""
        while self._spill.events:
            event = self._spill.events[0]
            if not self._apply_logged(event):
                return False
            self._spill.written(event)
        if self._spill.since is not None:
            self._recovered()
        return True

    def _apply_logged(self, event: ChargerEvent) -> bool:
        """One event as one transaction: all of it is stored, or none of it, in the file and in
        the mirror alike (a half-applied reading would be judged stale when written again)."""
        mirror = self._mirror()
        try:
            with self._tx():
                changed = self._apply(event)
        except StoreError as exc:
            self._restore(mirror)
            log.error("store.write_failed", error=str(exc), event_type=type(event).__name__)
            self._degraded(str(exc))
            return False
        except (ValueError, OverflowError) as exc:
            self._restore(mirror)
            log.warning("store.value_rejected", error=str(exc), event_type=type(event).__name__)
            return True
        for c in changed:
            self.changes.publish(c)
        return True

    def write_state(self) -> SpillState:
        """Whether the store writes, and what waits in memory (the status shows it)."""
        return self._spill.state()

    def _degraded(self, error: str) -> None:
        self._spill.failed(self._clock.now(), error)
        if self._spill.announced:
            return
        self._spill.announced = True
        self.notify(
            Notification(
                kind="store_degraded",
                message=f"the state file {self.path} cannot be written ({error}): what the "
                "chargers send is kept in memory (at most "
                f"{self._spill.limit} messages) and transactions are not acknowledged, so the "
                "chargers keep them; free disk space (or end the other process holding the "
                "file)",
                at=self._clock.now(),
                level="error",
                data={"path": str(self.path), "error": error},
            )
        )

    def _recovered(self) -> None:
        st = self._spill.state()
        since = st.since or self._clock.now()
        self._spill.since, self._spill.error, self._spill.announced = None, None, False
        log.info("store.recovered", degraded_s=(self._clock.now() - since).total_seconds())
        self.notify(
            Notification(
                kind="store_degraded",
                message=f"the state file {self.path} is written again; everything kept in "
                f"memory is stored ({st.dropped} messages did not fit since the start)",
                at=self._clock.now(),
                level="info",
                data={"path": str(self.path), "recovered": True, "dropped": st.dropped},
            )
        )
