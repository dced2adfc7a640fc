"""What the store could not write yet: kept in memory, bounded, written first once it can.

When SQLite cannot write (disk full, I/O error, a lock held elsewhere) a charger's event is
neither applied nor lost: it waits here, in arrival order, and is written before anything newer
once a write succeeds again. The charger is told only what is stored: TransactionEvents and
MeterValues that end up here are answered with a CALLERROR, so the charger keeps them and sends
them again (OCPP 2.0.1 E04); the re-sent copy is recognised and not applied twice. What the
charger will not resend (a StatusNotification, a Heartbeat) has only this copy: it survives a
full disk, not a kill while the disk is full.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime

from v2g_gateway.model import ChargerEvent, MeterSample, TransactionChanged

SPILL_MAX = 2000  # events: an hour of one busy charger's messages; RAM is a few hundred KB
_RECENT = SPILL_MAX  # written from the spill: a late resend of one of these is already stored

# Events a charger sends again when told they were not received; the same message twice is
# the same event, so a copy already waiting (or just written) is not kept twice.
_RESENT = (MeterSample, TransactionChanged)


@dataclass(frozen=True, slots=True)
class SpillState:
    """The store's write health as the status shows it."""

    kept: int  # events waiting to be written
    dropped: int  # events that did not fit (since the start)
    since: datetime | None  # the first failed write of this episode
    error: str | None  # the latest write error

    @property
    def degraded(self) -> bool:
        return self.since is not None

    def to_json(self) -> dict[str, object]:
        return {
            "state": "degraded" if self.degraded else "ok",
            "kept_in_memory": self.kept,
            "dropped": self.dropped,
            "since": None if self.since is None else self.since.isoformat(),
            "error": self.error,
        }


class Spill:
    def __init__(self, limit: int = SPILL_MAX) -> None:
        self.limit = limit
        self.events: deque[ChargerEvent] = deque()
        self._queued: Counter[ChargerEvent] = Counter()  # the resendable ones among `events`
        self._recent: OrderedDict[ChargerEvent, None] = OrderedDict()
        self.dropped = 0
        self.since: datetime | None = None
        self.error: str | None = None
        self.announced = False

    def keep(self, event: ChargerEvent) -> None:
        """Queue an event that could not be written (a resend of a queued one is not kept)."""
        resent = isinstance(event, _RESENT)
        if resent and self._queued[event]:
            return
        if len(self.events) >= self.limit:
            self.dropped += 1  # the newest goes: what is queued is older and in order
            return
        self.events.append(event)
        if resent:
            self._queued[event] += 1

    def written(self, event: ChargerEvent) -> None:
        self.events.popleft()
        if isinstance(event, _RESENT):
            self._queued[event] -= 1
            if self._queued[event] <= 0:
                del self._queued[event]
            self._recent[event] = None
            while len(self._recent) > _RECENT:
                self._recent.popitem(last=False)

    def already_written(self, event: ChargerEvent) -> bool:
        """A resend of a MeterValues the spill wrote after the charger was told it was not
        (a TransactionEvent's resend is recognised by its seqNo in the store)."""
        return isinstance(event, MeterSample) and event in self._recent

    def failed(self, at: datetime, error: str) -> None:
        if self.since is None:
            self.since = at
        self.error = error

    def state(self) -> SpillState:
        return SpillState(len(self.events), self.dropped, self.since, self.error)
