"""The dispatch core: one pure function from a frozen situation to what to do at one EVSE.

`step()` reads nothing and sends nothing: the controller (an async shell) builds the situation
from the store, calls it, and carries out the result; the backtest drives the same function
with a simulated battery. Every profile it asks to send comes from the safety gate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from v2g_gateway.dispatch.decision import Decision, Inputs, Mode, decide
from v2g_gateway.dispatch.gate import GatedProfile, GateLimits, Want, gate, tail_s, window_s
from v2g_gateway.model import ChargingProfileSpec, UserPriceSlot

PLANNED = (Mode.CHARGE, Mode.HOLD, Mode.DISCHARGE)
ACTIVE = (Mode.DISCHARGE, Mode.BACKUP)


@dataclass(frozen=True, slots=True)
class Ahead:
    """A later slot of the plan inside the profile's window."""

    at: datetime
    price: UserPriceSlot | None
    planned_w: float
    reason: str


@dataclass(frozen=True, slots=True)
class Sent:
    """What is in force at an EVSE as far as the gateway knows (accepted or in flight)."""

    profile: GatedProfile | None  # None: cleared (released to the charger)
    mode: Mode
    reason: str


@dataclass(frozen=True, slots=True)
class Situation:
    x: Inputs
    limits: GateLimits
    ahead: tuple[Ahead, ...] = ()
    last: Sent | None = None


@dataclass(frozen=True, slots=True)
class Step:
    decision: Decision  # what the EVSE does, after the gate
    send: GatedProfile | None = None
    clear: bool = False  # hand the EVSE back to the charger
    announce: str | None = None  # "dispatch_started" / "dispatch_stopped"
    notes: tuple[str, ...] = ()


def _close(old: float, new: float) -> bool:
    """A limit this near the one in force is not worth a new profile (each is a step the
    charger ramps to); plans are re-made often and their averages move by a few watts."""
    same_sign = (old > 0) == (new > 0) and (old < 0) == (new < 0)
    return same_sign and abs(old - new) <= max(100.0, 0.05 * abs(old))


def same_course(new: ChargingProfileSpec, old: ChargingProfileSpec, now: datetime) -> bool:
    """Would `new` make the charger do what `old` already makes it do, for as long as `old`
    lasts? Compared in absolute time, so a renewal that only moves the start is the same."""
    if (new.charger_id, new.evse_id, new.purpose, new.transaction_id) != (
        old.charger_id,
        old.evse_id,
        old.purpose,
        old.transaction_id,
    ):
        return False
    # The tail (the last minute, after the dispatch window) moves with every renewal: compare
    # what each profile does inside the old one's window.
    horizon = old.valid_to - timedelta(seconds=tail_s(old.duration_s))
    a = [p for p in new.course(now) if p[0] < horizon]
    b = [p for p in old.course(now) if p[0] < horizon]
    return len(a) == len(b) and all(
        ta == tb and _close(wb, wa) for (ta, wa), (tb, wb) in zip(a, b, strict=True)
    )


def _wants(s: Situation, d: Decision) -> list[Want]:
    """Now's decision, then the plan's next slots inside the window (the charger switches on
    the slot boundary itself)."""
    want = [Want(0, d.limit_w, d.floor_percent)]
    if d.mode not in PLANNED:
        return want
    start = s.x.now.replace(microsecond=0)
    last = d.limit_w
    for a in s.ahead:
        offset = int((a.at - start).total_seconds())
        if not 0 < offset < window_s(s.limits):
            continue
        later = decide(
            replace(s.x, now=a.at, price=a.price, planned_w=a.planned_w, plan_reason=a.reason)
        )
        if later.mode not in PLANNED:
            break  # anything else (prices unknown then, ...) waits for its own step
        if later.limit_w != last:
            want.append(Want(offset, later.limit_w, later.floor_percent))
            last = later.limit_w
    return want


def _announce(before: Mode | None, now: Mode) -> str | None:
    if now in ACTIVE and before != now:
        return "dispatch_started"
    if now not in ACTIVE and before in ACTIVE:
        return "dispatch_stopped"
    return None


def step(s: Situation) -> Step:
    d = decide(s.x)
    before = None if s.last is None else s.last.mode
    if d.mode == Mode.IDLE:
        return Step(d)
    if d.mode == Mode.RELEASE:
        clear = s.last is None or s.last.mode != Mode.RELEASE
        return Step(d, clear=clear, announce=_announce(before, d.mode))
    profile = gate(s.x.now, _wants(s, d), s.limits)
    first = profile.spec.periods[0].limit_w
    if d.limit_w < 0 <= first:
        # The gate kept the car from discharging now: say so, with its reason.
        why = "; ".join(profile.notes) or "held by the safety gate"
        d = Decision(Mode.HOLD, 0.0, f"{d.reason}, held: {why}", d.floor_percent)
    elif first != d.limit_w:
        d = replace(d, limit_w=first)
    announce = _announce(before, d.mode)
    last = s.last.profile if s.last is not None else None
    validity = timedelta(seconds=s.limits.validity_s)
    if (
        last is not None
        and same_course(profile.spec, last.spec, s.x.now)
        and last.spec.valid_to - s.x.now > validity / 3
    ):
        return Step(d, announce=announce, notes=profile.notes)
    return Step(d, send=profile, announce=announce, notes=profile.notes)
