"""Does a charger do what its profile says? Metered power against the limit in force.

Some firmware accepts every SetChargingProfile and ignores it (or lets the car do something
else). Only the meter tells. A reading counts once the limit has been in force for a grace time
(chargers and cars ramp for seconds); NEEDED readings in a row outside the limit make a charger
disobedient, RECOVER readings that follow the limit make it obedient again (a firmware update or a
setting changed: no verdict is for ever). Power below a charge limit is never held against a
charger: the car may want less.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from v2g_gateway.csms.electrical import Electrical
from v2g_gateway.model import ChargingProfileSpec

NEEDED = 3
RECOVER = 5
GRACE = timedelta(seconds=30)
ABS_TOLERANCE_W = 300.0
REL_TOLERANCE = 0.10


def tolerance_w(limit_w: float) -> float:
    return max(ABS_TOLERANCE_W, REL_TOLERANCE * abs(limit_w))


def violates(limit_w: float, power_w: float) -> bool:
    """Power the limit does not allow: above a charge limit, discharging when not asked to (or
    harder than asked), charging when asked to discharge."""
    tol = tolerance_w(limit_w)
    if limit_w >= 0:
        return power_w > limit_w + tol or power_w < -ABS_TOLERANCE_W
    return power_w < limit_w - tol or power_w > ABS_TOLERANCE_W


def follows(limit_w: float, power_w: float) -> bool:
    """Evidence of obedience: the power sits at the limit (a binding limit, not a car that
    wanted less anyway)."""
    return abs(power_w - limit_w) <= tolerance_w(limit_w)


def limit_in_force(
    spec: ChargingProfileSpec, accepted_at: datetime, now: datetime, electrical: Electrical
) -> tuple[float, datetime] | None:
    """(effective limit W, since when) at `now`, or None when the profile is not in force."""
    if now >= spec.valid_to or now < spec.start:
        return None
    current: tuple[float, datetime] | None = None
    for p in spec.periods:
        at = spec.start + timedelta(seconds=p.start_offset_s)
        if at <= now:
            current = (p.limit_w, at)
    if current is None:
        return None
    limit, at = current
    return electrical.effective_w(limit), max(at, accepted_at)


@dataclass(slots=True)
class Verdict:
    obeys: bool
    limit_w: float
    powers_w: list[float]


@dataclass(slots=True)
class ObedienceWatch:
    """One EVSE's record; observe() returns a Verdict when the judgement changes."""

    obeys: bool | None = None
    _bad: list[float] = field(default_factory=list)
    _good: int = 0

    def observe(self, limit_w: float, power_w: float) -> Verdict | None:
        if violates(limit_w, power_w):
            self._bad.append(power_w)
            self._good = 0
            if len(self._bad) >= NEEDED and self.obeys is not False:
                self.obeys = False
                return Verdict(False, limit_w, list(self._bad))
            return None
        self._bad.clear()
        if follows(limit_w, power_w):
            self._good += 1
            if self._good >= (RECOVER if self.obeys is False else NEEDED) and not self.obeys:
                self.obeys = True
                return Verdict(True, limit_w, [power_w])
        return None
