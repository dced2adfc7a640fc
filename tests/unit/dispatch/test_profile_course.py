"""When is a new profile the same as the one in force? Compared in absolute time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from v2g_gateway.dispatch.core import same_course as _same_course
from v2g_gateway.model import ChargingProfileSpec, ProfilePeriod, ProfilePurpose

T = datetime(2026, 1, 15, 16, 50, tzinfo=UTC)


def spec(start: datetime, *periods: tuple[int, float], minutes: int = 15) -> ChargingProfileSpec:
    return ChargingProfileSpec(
        charger_id="garage",
        evse_id=1,
        profile_id=2001,
        purpose=ProfilePurpose.TX_PROFILE,
        start=start,
        valid_to=start + timedelta(minutes=minutes),
        periods=tuple(ProfilePeriod(o, w) for o, w in periods),
        transaction_id="tx",
    )


def test_course_clips_to_now_and_validity() -> None:
    s = spec(T, (0, -5000), (600, 0))  # discharge until 17:00, then hold until 17:05
    assert s.course(T + timedelta(minutes=2)) == (
        (T + timedelta(minutes=2), -5000),
        (T + timedelta(minutes=10), 0),
    )
    assert s.course(T + timedelta(minutes=11)) == ((T + timedelta(minutes=11), 0),)
    assert s.course(T + timedelta(minutes=16)) == ()


def test_a_renewal_that_only_moves_the_start_is_the_same_course() -> None:
    old = spec(T, (0, -5000), (600, 0))
    later = T + timedelta(minutes=3)
    renewed = spec(later, (0, -5000), (420, 0))
    assert _same_course(renewed, old, later)


def test_a_moved_boundary_or_a_real_power_change_is_not() -> None:
    old = spec(T, (0, -5000), (600, 0))
    later = T + timedelta(minutes=3)
    assert not _same_course(spec(later, (0, -5000), (480, 0)), old, later)
    assert not _same_course(spec(later, (0, -3000), (420, 0)), old, later)
    assert _same_course(spec(later, (0, -4950), (420, 0)), old, later)  # within 100 W
    assert not _same_course(spec(later, (0, 50)), spec(T, (0, -50)), later)  # sign flips


def test_a_reboot_purpose_or_transaction_change_is_not() -> None:
    old = spec(T, (0, -5000))
    new = spec(T, (0, -5000))
    object.__setattr__(new, "transaction_id", "tx2")
    assert not _same_course(new, old, T)
