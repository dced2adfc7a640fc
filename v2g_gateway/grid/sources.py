"""One piece of outage evidence (a grid meter, a charger's voltage, a charger's event) over time.

Each source debounces on its own: an outage reading must hold for `debounce_s` before it counts,
and after an outage a normal reading must hold for `restore_holdoff_s`. Time is passed in, so
the rules are testable without a clock and the detector alone decides when to look again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from v2g_gateway.grid.payload import Verdict


@dataclass(slots=True)
class Source:
    name: str
    silence_after: timedelta
    reading: Verdict | None = None  # the latest verdict heard
    reading_since: datetime | None = None  # since when it has held
    confirmed: Verdict | None = None  # what this source counts as, after debounce/hold-off
    last_heard: datetime | None = None
    value: float | None = None
    measured: bool = False  # sends periodic measurements: silence means something

    def hear(
        self, now: datetime, verdict: Verdict | None, value: float | None, measured: bool
    ) -> None:
        self.last_heard = now
        self.value = value
        self.measured = self.measured or measured
        if verdict is not None and verdict != self.reading:
            self.reading = verdict
            self.reading_since = now

    def silent(self, now: datetime) -> bool:
        """A measuring source that stopped talking: its state is unknown, not an outage."""
        return (
            self.measured
            and self.last_heard is not None
            and now - self.last_heard > self.silence_after
        )

    def _due(self, debounce: timedelta, holdoff: timedelta) -> datetime | None:
        if self.reading is None or self.reading == self.confirmed or self.reading_since is None:
            return None
        if self.reading == "outage":
            return self.reading_since + debounce
        # The first normal reading counts at once; after an outage, only after the hold-off.
        return self.reading_since + (holdoff if self.confirmed == "outage" else timedelta(0))

    def settle(self, now: datetime, debounce: timedelta, holdoff: timedelta) -> bool:
        """Confirm the reading if it has held long enough; True if the confirmed state changed."""
        due = self._due(debounce, holdoff)
        if due is None or now < due:
            return False
        self.confirmed = self.reading
        return True

    def next_deadline(
        self, now: datetime, debounce: timedelta, holdoff: timedelta
    ) -> datetime | None:
        """When this source next needs a look: a pending confirmation or going silent."""
        times = [t for t in (self._due(debounce, holdoff),) if t is not None]
        if self.measured and self.last_heard is not None and not self.silent(now):
            times.append(self.last_heard + self.silence_after + timedelta(microseconds=1))
        return min(times) if times else None

    def status(self, now: datetime) -> dict[str, Any]:
        return {
            "reading": self.reading,
            "confirmed": self.confirmed,
            "value": self.value,
            "last_heard": None if self.last_heard is None else self.last_heard.isoformat(),
            "silent": self.silent(now),
        }


# ---------------------------------------------------------------- in words


def origin(name: str) -> str:
    """Independent evidence comes from different devices: one charger is one origin."""
    kind, _, key = name.partition(":")
    return f"charger:{key}" if kind in ("charger", "event") else name


def label(name: str) -> str:
    kind, _, key = name.partition(":")
    return {"mqtt": "grid meter", "charger": "charger", "event": "charger"}.get(kind, kind) + (
        f" {key}"
    )


def describe(s: Source) -> str:
    kind = s.name.partition(":")[0]
    if kind == "charger" and s.value is not None:
        return f"{label(s.name)} measures {s.value:.0f} V"
    if s.value is not None:
        return f"{label(s.name)} reads {s.value:g}"
    if kind == "event":
        return f"{label(s.name)} reported a grid loss"
    return f"{label(s.name)} says outage"


def duration(minutes: float) -> str:
    if minutes < 1:
        return f"{minutes * 60:.0f} s"
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"
