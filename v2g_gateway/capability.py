"""What the gateway believes about a charger's discharging, and when it asks again.

One "Rejected" used to mark a charger "cannot discharge" for ever. Chargers refuse profiles for
many reasons (a unit they do not take, a transaction they forgot in a reboot, a value out of
range); only an explicit refusal of a negative limit, or a discharge profile refused while the
same profile without the discharge is accepted, says "no discharge". Even that belief is
retried after the charger's next boot and after a back-off, and the user can reset it
(DESIGN.md invariant 7: no single answer disables V2G or backup for good).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

# A refused discharge is tried again after this long (or after the charger's next boot).
DISCHARGE_RETRY = timedelta(days=1)
# In an outage the house needs the car: try again much sooner.
OUTAGE_RETRY = timedelta(minutes=5)


class DischargeState(StrEnum):
    UNKNOWN = "unknown"
    WORKS = "works"  # a discharge profile was accepted
    REFUSED = "refused"  # refused (explicitly or by inference); retried later


@dataclass(frozen=True, slots=True)
class DischargeCapability:
    state: DischargeState = DischargeState.UNKNOWN
    since: datetime | None = None
    reason: str | None = None  # the charger's words, for the user
    booted_at: datetime | None = None  # the charger's boot when refused: a new boot retries
    retry_after: datetime | None = None

    def may_try(self, now: datetime, booted_at: datetime | None, outage: bool) -> bool:
        """Whether a discharge profile may be sent now."""
        if self.state != DischargeState.REFUSED:
            return True
        if booted_at is not None and (self.booted_at is None or booted_at > self.booted_at):
            return True  # the charger rebooted since: maybe a firmware update, try again
        if outage and self.since is not None and now - self.since >= OUTAGE_RETRY:
            return True
        return self.retry_after is None or now >= self.retry_after

    def refused(
        self, now: datetime, booted_at: datetime | None, reason: str
    ) -> DischargeCapability:
        return DischargeCapability(
            DischargeState.REFUSED, now, reason, booted_at, now + DISCHARGE_RETRY
        )

    def worked(self, now: datetime) -> DischargeCapability:
        if self.state == DischargeState.WORKS:
            return self
        return DischargeCapability(DischargeState.WORKS, now)

    @property
    def supports(self) -> bool | None:
        """For display: True works, False refused (for now), None not yet known."""
        return {DischargeState.WORKS: True, DischargeState.REFUSED: False}.get(self.state)

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "since": None if self.since is None else self.since.isoformat(),
            "reason": self.reason,
            "booted_at": None if self.booted_at is None else self.booted_at.isoformat(),
            "retry_after": None if self.retry_after is None else self.retry_after.isoformat(),
        }

    @classmethod
    def from_json(cls, raw: Any) -> DischargeCapability:
        """Lenient: anything unreadable is 'unknown' (try again), never 'refused'."""
        if not isinstance(raw, dict):
            return cls()
        try:
            state = DischargeState(raw.get("state", "unknown"))

            def t(key: str) -> datetime | None:
                v = raw.get(key)
                return None if v is None else datetime.fromisoformat(str(v))

            return cls(state, t("since"), raw.get("reason"), t("booted_at"), t("retry_after"))
        except (ValueError, TypeError):
            return cls()

    def reset(self) -> DischargeCapability:
        return replace(self, state=DischargeState.UNKNOWN, retry_after=None, reason=None)
