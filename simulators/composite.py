"""The OCPP 2.0.1 composite schedule: which limit a charger obeys, from all installed profiles.

Rules (OCPP 2.0.1 part 2, K "Smart charging"), as a charger applies them:
- a profile counts only inside validFrom..validTo and inside its schedule (startSchedule ..
  startSchedule + duration; Recurring repeats daily/weekly; Relative starts with the transaction);
- per purpose the profile in force with the highest stackLevel wins (a tie goes to the profile
  installed on the EVSE itself rather than on EVSE 0);
- a TxProfile (only for the running transaction) overrides the TxDefaultProfile;
- ChargingStationMaxProfile and ChargingStationExternalConstraints cap the result; OCPP 2.0.1
  has no discharge limit, so a cap bounds the magnitude in both directions (a fuse does too);
- a limit in A becomes W with the nominal voltage and the period's numberPhases (default 3);
- no profile in force: charge at the EVSE maximum.
Negative limits mean discharge. Everything here is pure: time comes in as an argument.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from simulators.errors import InvalidProfile

PURPOSES = (
    "ChargingStationMaxProfile",
    "ChargingStationExternalConstraints",
    "TxDefaultProfile",
    "TxProfile",
)
_CAPS = ("ChargingStationMaxProfile", "ChargingStationExternalConstraints")
_RECURRENCE_S = {"Daily": 86_400, "Weekly": 7 * 86_400}


@dataclass(frozen=True, slots=True)
class Period:
    start_s: int
    limit: float
    phases: int | None


@dataclass(frozen=True, slots=True)
class InstalledProfile:
    """A profile as installed on one EVSE (0 = the whole station), parsed once."""

    evse_id: int
    raw: Mapping[str, Any]
    profile_id: int
    stack_level: int
    purpose: str
    kind: str
    recurrency: str | None
    valid_from: datetime | None
    valid_to: datetime | None
    transaction_id: str | None
    start_schedule: datetime | None
    duration_s: int | None
    unit: str
    periods: tuple[Period, ...]
    # OCPP 2.1: valid this long once the charger is offline; then void (for good if invalid_after)
    max_offline_s: int | None = None
    invalid_after_offline: bool = False

    @property
    def has_negative_limit(self) -> bool:
        return any(p.limit < 0 for p in self.periods)


@dataclass(frozen=True, slots=True)
class EvseContext:
    """What the charger knows about one EVSE when it evaluates its profiles."""

    evse_id: int
    max_charge_w: float
    max_discharge_w: float
    transaction_id: str | None = None
    transaction_start: datetime | None = None
    voltage: float = 230.0
    phases: int = 3


def install(evse_id: int, profile: Mapping[str, Any]) -> InstalledProfile:
    """Parse and check a ChargingProfile (camelCase, as in SetChargingProfile)."""
    if not isinstance(profile, Mapping):
        raise InvalidProfile("", f"expected an object, got {type(profile).__name__}")
    purpose = _req(profile, "chargingProfilePurpose", str)
    if purpose not in PURPOSES:
        raise InvalidProfile("chargingProfilePurpose", f"unknown purpose {purpose!r}")
    kind = _req(profile, "chargingProfileKind", str)
    if kind not in ("Absolute", "Recurring", "Relative"):
        raise InvalidProfile("chargingProfileKind", f"unknown kind {kind!r}")
    recurrency = profile.get("recurrencyKind")
    if kind == "Recurring" and recurrency not in _RECURRENCE_S:
        raise InvalidProfile("recurrencyKind", "Recurring needs recurrencyKind Daily or Weekly")
    schedules = profile.get("chargingSchedule")
    if isinstance(schedules, Mapping):
        schedules = [schedules]
    if not isinstance(schedules, list) or not schedules:
        raise InvalidProfile("chargingSchedule", "needs at least one schedule")
    sched = schedules[0]  # further schedules are ISO 15118 alternatives for the EV to pick
    if not isinstance(sched, Mapping):
        raise InvalidProfile("chargingSchedule[0]", "expected an object")
    start_schedule = _time(sched, "startSchedule", "chargingSchedule[0].startSchedule")
    if kind in ("Absolute", "Recurring") and start_schedule is None:
        raise InvalidProfile("chargingSchedule[0].startSchedule", f"{kind} needs startSchedule")
    duration = sched.get("duration")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        raise InvalidProfile(
            "chargingSchedule[0].duration", f"must be a positive int: {duration!r}"
        )
    unit = _req(sched, "chargingRateUnit", str, "chargingSchedule[0].")
    if unit not in ("W", "A"):
        raise InvalidProfile("chargingSchedule[0].chargingRateUnit", f"must be W or A: {unit!r}")
    raw_periods = sched.get("chargingSchedulePeriod")
    if not isinstance(raw_periods, list) or not raw_periods:
        raise InvalidProfile("chargingSchedule[0].chargingSchedulePeriod", "needs >= 1 period")
    periods = tuple(_period(i, p) for i, p in enumerate(raw_periods))
    if periods[0].start_s != 0:
        raise InvalidProfile(
            "chargingSchedule[0].chargingSchedulePeriod[0].startPeriod", "must be 0"
        )
    if any(b.start_s <= a.start_s for a, b in pairwise(periods)):
        raise InvalidProfile("chargingSchedule[0].chargingSchedulePeriod", "startPeriod must rise")
    valid_from = _time(profile, "validFrom", "validFrom")
    valid_to = _time(profile, "validTo", "validTo")
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise InvalidProfile("validTo", "must be after validFrom")
    tx = profile.get("transactionId")
    return InstalledProfile(
        evse_id=evse_id,
        raw=profile,
        profile_id=_req(profile, "id", int),
        stack_level=_req(profile, "stackLevel", int),
        purpose=purpose,
        kind=kind,
        recurrency=recurrency if kind == "Recurring" else None,
        valid_from=valid_from,
        valid_to=valid_to,
        transaction_id=str(tx) if tx is not None else None,
        start_schedule=start_schedule,
        duration_s=duration,
        unit=unit,
        periods=periods,
        max_offline_s=_offline(profile),
        invalid_after_offline=profile.get("invalidAfterOfflineDuration") is True,
    )


def _offline(profile: Mapping[str, Any]) -> int | None:
    value = profile.get("maxOfflineDuration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidProfile("maxOfflineDuration", f"must be an int >= 0, got {value!r}")
    return value


def profile_limit_w(p: InstalledProfile, at: datetime, ctx: EvseContext) -> float | None:
    """This profile's limit in W at `at`, or None when it is not in force then."""
    if not _applies(p, ctx):
        return None
    if (p.valid_from is not None and at < p.valid_from) or (
        p.valid_to is not None and at >= p.valid_to
    ):
        return None
    offset = _offset(p, at, ctx)
    if offset is None:
        return None
    period = p.periods[0]
    for candidate in p.periods:
        if candidate.start_s <= offset:
            period = candidate
    if p.unit == "W":
        return period.limit
    phases = period.phases or ctx.phases
    return period.limit * ctx.voltage * phases


def limit_at(profiles: Iterable[InstalledProfile], at: datetime, ctx: EvseContext) -> float:
    """The power (W) the EVSE may draw (negative: must deliver) at `at`."""
    best: dict[str, tuple[tuple[int, int], float]] = {}
    for p in profiles:
        limit = profile_limit_w(p, at, ctx)
        if limit is None:
            continue
        rank = (p.stack_level, 1 if p.evse_id == ctx.evse_id else 0)
        if p.purpose not in best or rank > best[p.purpose][0]:
            best[p.purpose] = (rank, limit)
    if "TxProfile" in best:
        value = best["TxProfile"][1]
    elif "TxDefaultProfile" in best:
        value = best["TxDefaultProfile"][1]
    else:
        value = ctx.max_charge_w
    for purpose in _CAPS:
        if purpose in best:
            cap = abs(best[purpose][1])
            value = max(-cap, min(cap, value))
    return max(-ctx.max_discharge_w, min(ctx.max_charge_w, value))


def expired(p: InstalledProfile, at: datetime, ctx: EvseContext) -> bool:
    """True once the profile can never be in force again (so the charger may drop it)."""
    if p.valid_to is not None and at >= p.valid_to:
        return True
    if p.kind == "Absolute" and p.duration_s is not None and p.start_schedule is not None:
        return at >= p.start_schedule + timedelta(seconds=p.duration_s)
    return False


def composite_schedule(
    profiles: Iterable[InstalledProfile],
    ctx: EvseContext,
    start: datetime,
    duration_s: int,
    unit: str = "W",
) -> dict[str, Any]:
    """A CompositeScheduleType (camelCase) for GetCompositeSchedule over [start, start+duration)."""
    if duration_s <= 0:
        raise InvalidProfile("duration", f"must be positive, got {duration_s}")
    if unit not in ("W", "A"):
        raise InvalidProfile("chargingRateUnit", f"must be W or A, got {unit!r}")
    plist = [p for p in profiles if _applies(p, ctx)]
    ctx = replace(ctx, transaction_start=ctx.transaction_start or start)
    end = start + timedelta(seconds=duration_s)
    points = sorted({t for p in plist for t in _breakpoints(p, ctx, start, end)} | {start})
    periods: list[dict[str, Any]] = []
    for t in points:
        limit = limit_at(plist, t, ctx)
        if unit == "A":
            limit = round(limit / (ctx.voltage * ctx.phases), 1)
        if periods and periods[-1]["limit"] == limit:
            continue
        period: dict[str, Any] = {"startPeriod": int((t - start).total_seconds()), "limit": limit}
        if unit == "A":
            period["numberPhases"] = ctx.phases
        periods.append(period)
    return {
        "evseId": ctx.evse_id,
        "duration": duration_s,
        "scheduleStart": start.isoformat(),
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": periods,
    }


# --------------------------------------------------------------------------------------------


def _applies(p: InstalledProfile, ctx: EvseContext) -> bool:
    if p.evse_id not in (0, ctx.evse_id):
        return False
    if p.purpose == "TxProfile":
        if ctx.transaction_id is None or p.evse_id == 0:
            return False
        return p.transaction_id is None or p.transaction_id == ctx.transaction_id
    return True


def _origin(p: InstalledProfile, at: datetime, ctx: EvseContext) -> datetime | None:
    """Where this profile's schedule (or its current recurrence) starts, seen from `at`."""
    if p.kind == "Relative":
        return ctx.transaction_start or at
    assert p.start_schedule is not None
    if p.kind == "Absolute":
        return p.start_schedule
    if at < p.start_schedule:
        return None
    every = _RECURRENCE_S[p.recurrency or "Daily"]
    n = math.floor((at - p.start_schedule).total_seconds() / every)
    return p.start_schedule + timedelta(seconds=n * every)


def _offset(p: InstalledProfile, at: datetime, ctx: EvseContext) -> float | None:
    origin = _origin(p, at, ctx)
    if origin is None:
        return None
    offset = (at - origin).total_seconds()
    if offset < 0:
        return None
    length = p.duration_s
    if p.kind == "Recurring":
        every = _RECURRENCE_S[p.recurrency or "Daily"]
        length = min(length or every, every)
    if length is not None and offset >= length:
        return None
    return offset


def _breakpoints(
    p: InstalledProfile, ctx: EvseContext, start: datetime, end: datetime
) -> list[datetime]:
    out = [t for t in (p.valid_from, p.valid_to) if t is not None]
    origins: list[datetime] = []
    if p.kind == "Recurring":
        assert p.start_schedule is not None
        every = timedelta(seconds=_RECURRENCE_S[p.recurrency or "Daily"])
        o = _origin(p, max(start, p.start_schedule), ctx)
        while o is not None and o < end:
            origins.append(o)
            o += every
    else:
        origin = _origin(p, start, ctx)
        if origin is not None:
            origins.append(origin)
    for o in origins:
        out.extend(o + timedelta(seconds=q.start_s) for q in p.periods)
        if p.duration_s is not None:
            out.append(o + timedelta(seconds=p.duration_s))
    return [t for t in out if start <= t < end]


def _req(m: Mapping[str, Any], key: str, typ: type, prefix: str = "") -> Any:
    value = m.get(key)
    if value is None:
        raise InvalidProfile(prefix + key, "is required")
    if typ is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidProfile(prefix + key, f"must be an integer, got {value!r}")
    if not isinstance(value, typ):
        raise InvalidProfile(prefix + key, f"must be a {typ.__name__}, got {value!r}")
    return value


def _time(m: Mapping[str, Any], key: str, where: str) -> datetime | None:
    value = m.get(key)
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidProfile(where, f"not an ISO 8601 time: {value!r}") from None
    else:
        raise InvalidProfile(where, f"not an ISO 8601 time: {value!r}")
    if parsed.tzinfo is None:
        raise InvalidProfile(where, f"needs a time zone (e.g. Z): {value!r}")
    return parsed


def _period(i: int, raw: Any) -> Period:
    where = f"chargingSchedule[0].chargingSchedulePeriod[{i}]."
    if not isinstance(raw, Mapping):
        raise InvalidProfile(where.rstrip("."), "expected an object")
    start = _req(raw, "startPeriod", int, where)
    limit = _power21(raw, where) if "operationMode" in raw else raw.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit):
        raise InvalidProfile(where + "limit", f"must be a number, got {limit!r}")
    phases = raw.get("numberPhases")
    if phases is not None and (isinstance(phases, bool) or phases not in (1, 2, 3)):
        raise InvalidProfile(where + "numberPhases", f"must be 1, 2 or 3, got {phases!r}")
    return Period(start_s=start, limit=float(limit), phases=phases)


def _number21(raw: Mapping[str, Any], key: str, where: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidProfile(where + key, f"must be a number, got {value!r}")
    return float(value)


def _power21(raw: Mapping[str, Any], where: str) -> float:
    """An OCPP 2.1 period's power, signed as a 2.0.1 limit: Idle holds at 0, ChargingOnly
    charges up to `limit` (never discharges), CentralSetpoint follows `setpoint` within
    `dischargeLimit` (<= 0) and `limit`; other modes keep to their bounds, at 0 without one."""
    mode = raw["operationMode"]
    limit = _number21(raw, "limit", where)
    setpoint = _number21(raw, "setpoint", where)
    floor = _number21(raw, "dischargeLimit", where)
    if mode == "Idle":
        return 0.0
    if mode == "ChargingOnly":
        if limit is None:
            raise InvalidProfile(where + "limit", "ChargingOnly needs a limit")
        return max(0.0, limit)
    if mode == "LocalLoadBalancing" and setpoint is None:
        # The simulated house takes all the bound allows (a real one: what it draws).
        return floor if floor is not None else 0.0
    target = setpoint if setpoint is not None else 0.0
    if floor is not None:
        target = max(floor, target)
    if limit is not None:
        target = min(limit, target)
    if mode == "CentralSetpoint" and setpoint is None:
        raise InvalidProfile(where + "setpoint", "CentralSetpoint needs a setpoint")
    return target
