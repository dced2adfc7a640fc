"""What csms has to tell the user about a charger, once per charger and kind.

A quirk found on every message (a skewed clock, smart charging switched off) must reach the user
once, with what to change on the charger, not as a line per message. The composition root
subscribes the store's notify(); without a subscriber (unit tests, tools) notices are only logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from v2g_gateway.clock import Clock
from v2g_gateway.model import Notification

log = structlog.get_logger(__name__)


class Notices:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._subscribers: list[Callable[[Notification], None]] = []
        self._told: set[tuple[str, str]] = set()

    def subscribe(self, fn: Callable[[Notification], None]) -> None:
        self._subscribers.append(fn)

    def tell(
        self,
        charger_id: str,
        kind: str,
        message: str,
        *,
        level: str = "warning",
        data: dict[str, Any] | None = None,
        once_per: str = "",
    ) -> bool:
        """Notify unless this charger was already told this kind (of this `once_per`, e.g. one
        token); True if it was sent now."""
        key = (charger_id, f"{kind}:{once_per}" if once_per else kind)
        if key in self._told:
            return False
        self._told.add(key)
        n = Notification(
            kind=kind,
            message=message,
            at=self._clock.now(),
            level=level,
            charger_id=charger_id,
            data=data or {},
        )
        emit = log.info if level == "info" else log.warning
        emit("charger notice", charger_id=charger_id, kind=kind, message=message)
        for fn in self._subscribers:
            try:
                fn(n)
            except Exception:  # a failing listener must not break a charger's session
                log.exception("notice listener failed", kind=kind)
        return True

    def publish(self, n: Notification) -> None:
        """Hand a notification to every subscriber as it is, without the once-per-kind rule
        (the caller bounds how often: refused handshakes, refusal_report.py)."""
        for fn in self._subscribers:
            try:
                fn(n)
            except Exception:
                log.exception("notice listener failed", kind=n.kind)

    def forget(self, charger_id: str, kind: str) -> None:
        """The condition is over: the next time it happens is news again."""
        self._told.discard((charger_id, kind))

    def told(self, charger_id: str, kind: str) -> bool:
        return (charger_id, kind) in self._told
