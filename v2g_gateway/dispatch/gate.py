"""The safety gate: the only maker of profiles that may be sent to a charger.

`Commands.set_charging_profile` takes a `GatedProfile`, and only `gate()` makes one, so the type
checker proves that every profile the gateway sends went through here (DESIGN.md section 4):

- no discharge without a fresh SoC of the current plug session, an identified car, a charger
  that may discharge, and V2G allowed (the caller says which in `GateLimits`);
- every discharge period ends where the projected SoC reaches its floor plus a margin at that
  power, so a gateway killed right after sending leaves the car at or above its floor;
- the last period of every profile is a non-negative limit, and the profile expires on its own.

A bypass fails mypy: `commands.set_charging_profile(spec)` with a ChargingProfileSpec gives
`Argument 1 ... has incompatible type "ChargingProfileSpec"; expected "GatedProfile"`; and a
GatedProfile cannot be made without the gate's seal (tests/unit/dispatch/test_gate_typing.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import final

from v2g_gateway.model import ChargingProfileSpec, ProfilePeriod, ProfilePurpose
from v2g_gateway.soc import drained_percent

# Stop this far above the floor: readings arrive in steps, the car keeps discharging until the
# charger obeys, and a reserve is a promise.
FLOOR_MARGIN_PERCENT = 0.5
# A discharge shorter than this is not worth a command (chargers ramp for tens of seconds).
MIN_DISCHARGE_S = 60
# Every profile ends with this long a non-negative period (a quarter of a very short profile).
TAIL_S = 60


def tail_s(validity_s: int) -> int:
    return min(TAIL_S, validity_s // 4)


TX_PROFILE_ID_BASE = 2000
TX_DEFAULT_PROFILE_ID_BASE = 1000


@dataclass(frozen=True, slots=True)
class GateLimits:
    """Everything the gate needs to bound one profile for one EVSE."""

    charger_id: str
    evse_id: int
    transaction_id: str | None  # None: a TxDefaultProfile (no transaction, or one it forgot)
    max_charge_w: float
    max_discharge_w: float
    capacity_kwh: float
    eta_d: float
    validity_s: int  # the whole profile, its non-negative tail included
    # None = no fresh SoC of this plug session: nothing may discharge.
    soc_percent: float | None = None
    # Why discharging is not allowed at all (capability, V2G off, guest, ...); None = allowed.
    no_discharge: str | None = None
    min_discharge_w: float = 0.0
    # The least a charger delivers when it charges at all (a minimum current): less is rounded
    # to 0 or up to it, whichever is nearer.
    min_charge_w: float = 0.0
    # An external limit (NotifyChargingLimit: a local EMS or the grid operator) on the power in
    # either direction.
    power_cap_w: float | None = None


@dataclass(frozen=True, slots=True)
class Want:
    """One period the caller would like: from `offset_s` on, `limit_w`, not below `floor`."""

    offset_s: int
    limit_w: float
    floor_percent: float = 100.0  # for a discharge: the SoC it must stop above


class _Seal:
    """Held only by this module: a GatedProfile cannot be made without it."""


_SEAL = _Seal()


class GateViolation(AssertionError):
    """A profile broke a safety rule after the gate: a bug, never a charger's or user's doing."""


@final
class GatedProfile:
    """A profile that passed the gate. Immutable; made only by `gate()`."""

    __slots__ = ("end_soc_percent", "min_floor_percent", "notes", "spec")

    def __init__(
        self,
        seal: _Seal,
        spec: ChargingProfileSpec,
        end_soc_percent: float | None,
        min_floor_percent: float | None,
        notes: tuple[str, ...],
    ) -> None:
        if seal is not _SEAL:
            raise TypeError("a GatedProfile is made only by v2g_gateway.dispatch.gate.gate()")
        check(spec)
        self.spec = spec
        self.end_soc_percent = end_soc_percent  # projected, if it discharges
        self.min_floor_percent = min_floor_percent
        self.notes = notes

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "notes"):
            raise AttributeError("a GatedProfile is immutable")
        object.__setattr__(self, name, value)

    @property
    def discharges(self) -> bool:
        return any(p.limit_w < 0 for p in self.spec.periods)

    def __repr__(self) -> str:
        periods = ", ".join(f"+{p.start_offset_s}s {p.limit_w:g} W" for p in self.spec.periods)
        return f"GatedProfile({self.spec.charger_id}/{self.spec.evse_id}: {periods})"


def check(spec: ChargingProfileSpec) -> None:
    """The structural rules every sent profile obeys (also asserted by the property tests)."""
    periods = spec.periods
    if not periods or periods[0].start_offset_s != 0:
        raise GateViolation("a profile starts with a period at offset 0")
    offsets = [p.start_offset_s for p in periods]
    if offsets != sorted(set(offsets)) or offsets[-1] >= spec.duration_s:
        raise GateViolation(f"periods out of order or beyond the profile: {offsets}")
    if periods[-1].limit_w < 0:
        raise GateViolation("the last period of a profile must not discharge")
    if spec.duration_s <= 0 or spec.duration_s > 3600:
        raise GateViolation(f"a profile expires within the hour, got {spec.duration_s} s")


def window_s(lim: GateLimits) -> int:
    """The part of a profile that dispatches; the tail after it never discharges."""
    return lim.validity_s - tail_s(lim.validity_s)


def _capped(w: float, cap: float | None) -> float:
    return max(0.0, w if cap is None else min(w, cap))


def _normalise(want: Sequence[Want], lim: GateLimits, notes: list[str]) -> list[Want]:
    """Sorted, within the window, each limit inside what charger and car allow."""
    out: list[Want] = []
    for w in sorted(want, key=lambda w: w.offset_s):
        if not 0 <= w.offset_s < window_s(lim) or (out and w.offset_s == out[-1].offset_s):
            continue
        limit = w.limit_w
        if limit > 0:
            cap = _capped(lim.max_charge_w, lim.power_cap_w)
            limit = min(limit, cap)
            if limit < lim.min_charge_w:
                nearer = limit >= lim.min_charge_w / 2 and cap >= lim.min_charge_w
                limit = lim.min_charge_w if nearer else 0.0
        elif limit < 0:
            why = lim.no_discharge
            if why is None and lim.soc_percent is None:
                why = "no fresh SoC of this plug-in"
            if why is None and lim.max_discharge_w <= 0:
                why = "the charger or car has no discharge power"
            if why is None and -limit < lim.min_discharge_w:
                why = f"below the charger's minimum of {lim.min_discharge_w:g} W"
            if why is not None:
                notes.append(f"no discharge: {why}")
                limit = 0.0
            else:
                limit = -min(-limit, _capped(lim.max_discharge_w, lim.power_cap_w))
        out.append(Want(w.offset_s, float(round(limit)), w.floor_percent))
    if not out or out[0].offset_s != 0:
        out.insert(0, Want(0, 0.0))
    return out


def _bound_energy(
    periods: list[Want], lim: GateLimits, notes: list[str]
) -> tuple[list[Want], float | None]:
    """Cut every discharge where the projected SoC reaches its floor plus the margin."""
    soc = lim.soc_percent
    out: list[Want] = []
    for i, w in enumerate(periods):
        end = periods[i + 1].offset_s if i + 1 < len(periods) else window_s(lim)
        if w.limit_w >= 0 or soc is None:
            out.append(w)
            continue
        stop_at = w.floor_percent + FLOOR_MARGIN_PERCENT
        per_s = drained_percent(-w.limit_w, 1.0, lim.capacity_kwh, lim.eta_d)
        room_s = (soc - stop_at) / per_s if per_s > 0 else float("inf")
        span = end - w.offset_s
        if room_s >= span:
            out.append(w)
            soc -= per_s * span
            continue
        if room_s >= MIN_DISCHARGE_S:
            cut = w.offset_s + int(room_s)
            out.append(w)
            out.append(Want(cut, 0.0))
            soc -= per_s * (cut - w.offset_s)
            notes.append(
                f"discharge ends after {int(room_s)} s at the floor of {w.floor_percent:g} %"
            )
        else:
            out.append(Want(w.offset_s, 0.0))
            notes.append(f"no discharge: at the floor of {w.floor_percent:g} %")
        # At the floor now: later discharge periods must stay off.
        for later in periods[i + 1 :]:
            out.append(Want(later.offset_s, max(0.0, later.limit_w), later.floor_percent))
        return out, soc
    return out, soc


def _merge(periods: list[Want]) -> list[Want]:
    out: list[Want] = []
    for w in periods:
        if out and out[-1].limit_w == w.limit_w:
            continue
        out.append(w)
    return out


def gate(now: datetime, want: Sequence[Want], lim: GateLimits) -> GatedProfile:
    """The safe profile nearest to what is wanted: clipped, energy-bounded, expiring."""
    notes: list[str] = []
    periods = _normalise(want, lim, notes)
    periods, end_soc = _bound_energy(periods, lim, notes)
    periods = _merge(periods)
    if periods[-1].limit_w < 0:
        periods.append(Want(window_s(lim), 0.0))  # the tail: never end on a discharge
    floors = [w.floor_percent for w in periods if w.limit_w < 0]
    start = now.replace(microsecond=0)
    tx = lim.transaction_id
    spec = ChargingProfileSpec(
        charger_id=lim.charger_id,
        evse_id=lim.evse_id,
        profile_id=(TX_PROFILE_ID_BASE if tx else TX_DEFAULT_PROFILE_ID_BASE) + lim.evse_id,
        purpose=ProfilePurpose.TX_PROFILE if tx else ProfilePurpose.TX_DEFAULT_PROFILE,
        transaction_id=tx,
        start=start,
        valid_to=start + timedelta(seconds=lim.validity_s),
        periods=tuple(ProfilePeriod(w.offset_s, w.limit_w) for w in periods),
    )
    return GatedProfile(
        _SEAL,
        spec,
        end_soc if floors else None,
        min(floors) if floors else None,
        tuple(dict.fromkeys(notes)),
    )
