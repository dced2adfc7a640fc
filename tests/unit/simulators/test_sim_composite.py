from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from simulators.composite import (
    EvseContext,
    InstalledProfile,
    composite_schedule,
    expired,
    install,
    limit_at,
)
from simulators.errors import InvalidProfile

T0 = datetime(2024, 6, 3, 17, 0, tzinfo=UTC)
CTX = EvseContext(evse_id=1, max_charge_w=11000, max_discharge_w=10000, transaction_id="tx1")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def profile(
    pid: int = 1,
    *,
    purpose: str = "TxProfile",
    stack: int = 0,
    kind: str = "Absolute",
    periods: list[tuple[int, float]] | None = None,
    start: datetime | None = T0,
    duration: int | None = None,
    unit: str = "W",
    **extra: Any,
) -> dict[str, Any]:
    sched: dict[str, Any] = {
        "id": pid,
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            {"startPeriod": s, "limit": lim} for s, lim in (periods or [(0, -5000.0)])
        ],
    }
    if start is not None:
        sched["startSchedule"] = iso(start)
    if duration is not None:
        sched["duration"] = duration
    return {
        "id": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": [sched],
        **extra,
    }


def installed(*profiles: tuple[int, dict[str, Any]]) -> list[InstalledProfile]:
    return [install(evse, p) for evse, p in profiles]


def test_no_profile_means_evse_maximum() -> None:
    assert limit_at([], T0, CTX) == 11000


def test_negative_limit_is_discharge_within_validity() -> None:
    ps = installed((1, profile(validTo=iso(at(15)))))
    assert limit_at(ps, at(0), CTX) == -5000
    assert limit_at(ps, at(14.9), CTX) == -5000
    assert limit_at(ps, at(15), CTX) == 11000
    assert limit_at(ps, at(-1), CTX) == 11000  # before startSchedule


def test_valid_from_and_duration_bound_the_profile() -> None:
    ps = installed((1, profile(duration=600, validFrom=iso(at(2)))))
    assert limit_at(ps, at(1), CTX) == 11000
    assert limit_at(ps, at(2), CTX) == -5000
    assert limit_at(ps, at(10), CTX) == 11000


def test_periods_step_through_the_schedule() -> None:
    ps = installed((1, profile(periods=[(0, 2000), (600, -3000), (1200, 0)])))
    assert [limit_at(ps, at(m), CTX) for m in (0, 9.9, 10, 19, 20, 500)] == [
        2000,
        2000,
        -3000,
        -3000,
        0,
        0,
    ]


def test_highest_stack_level_wins_and_lower_resumes_when_it_ends() -> None:
    ps = installed(
        (1, profile(1, stack=0, periods=[(0, 4000)])),
        (1, profile(2, stack=3, periods=[(0, -2000)], duration=600)),
    )
    assert limit_at(ps, at(5), CTX) == -2000
    assert limit_at(ps, at(11), CTX) == 4000


def test_txprofile_overrides_txdefault_even_with_lower_stack() -> None:
    ps = installed(
        (0, profile(1, purpose="TxDefaultProfile", stack=9, periods=[(0, 7000)])),
        (1, profile(2, purpose="TxProfile", stack=0, periods=[(0, 1000)])),
    )
    assert limit_at(ps, T0, CTX) == 1000


def test_txprofile_needs_a_matching_running_transaction() -> None:
    ps = installed(
        (0, profile(1, purpose="TxDefaultProfile", periods=[(0, 7000)])),
        (1, profile(2, purpose="TxProfile", periods=[(0, 1000)], transactionId="other")),
    )
    assert limit_at(ps, T0, CTX) == 7000
    no_tx = EvseContext(evse_id=1, max_charge_w=11000, max_discharge_w=10000)
    ps2 = installed((1, profile(3, purpose="TxProfile", periods=[(0, 1000)])))
    assert limit_at(ps2, T0, no_tx) == 11000
    ps3 = installed((1, profile(4, purpose="TxProfile", periods=[(0, 1000)], transactionId="tx1")))
    assert limit_at(ps3, T0, CTX) == 1000


def test_evse_specific_txdefault_beats_station_wide_at_same_stack() -> None:
    ps = installed(
        (0, profile(1, purpose="TxDefaultProfile", periods=[(0, 7000)])),
        (1, profile(2, purpose="TxDefaultProfile", periods=[(0, 3000)])),
    )
    assert limit_at(ps, T0, CTX) == 3000


def test_profile_on_another_evse_is_ignored() -> None:
    ps = installed((2, profile(1, purpose="TxDefaultProfile", periods=[(0, 3000)])))
    assert limit_at(ps, T0, CTX) == 11000


def test_station_max_caps_charge_and_discharge_magnitude() -> None:
    cap = (0, profile(9, purpose="ChargingStationMaxProfile", periods=[(0, 4000)]))
    assert limit_at(installed(cap), T0, CTX) == 4000
    assert limit_at(installed(cap, (1, profile(1, periods=[(0, 9000)]))), T0, CTX) == 4000
    assert limit_at(installed(cap, (1, profile(1, periods=[(0, -9000)]))), T0, CTX) == -4000
    assert limit_at(installed(cap, (1, profile(1, periods=[(0, -2000)]))), T0, CTX) == -2000


def test_result_clamped_to_evse_power_limits() -> None:
    assert limit_at(installed((1, profile(periods=[(0, -50000)]))), T0, CTX) == -10000
    assert limit_at(installed((1, profile(periods=[(0, 50000)]))), T0, CTX) == 11000


def test_amps_converted_with_voltage_and_phases() -> None:
    three = installed((1, profile(unit="A", periods=[(0, 10)])))
    assert limit_at(three, T0, CTX) == pytest.approx(10 * 230 * 3)
    one = install(1, profile(unit="A", periods=[(0, 16)]))
    raw = dict(one.raw)
    raw["chargingSchedule"][0]["chargingSchedulePeriod"][0]["numberPhases"] = 1
    assert limit_at([install(1, raw)], T0, CTX) == pytest.approx(16 * 230)
    neg = installed((1, profile(unit="A", periods=[(0, -8)])))
    assert limit_at(neg, T0, CTX) == pytest.approx(-8 * 230 * 3)


def test_recurring_daily_repeats() -> None:
    midnight = datetime(2024, 6, 1, tzinfo=UTC)
    p = profile(
        purpose="TxDefaultProfile",
        kind="Recurring",
        recurrencyKind="Daily",
        start=midnight,
        periods=[(0, 2000), (17 * 3600, -4000), (21 * 3600, 2000)],
    )
    ps = installed((0, p))
    assert limit_at(ps, datetime(2024, 6, 3, 18, tzinfo=UTC), CTX) == -4000
    assert limit_at(ps, datetime(2024, 6, 3, 22, tzinfo=UTC), CTX) == 2000
    assert limit_at(ps, datetime(2024, 6, 9, 17, 30, tzinfo=UTC), CTX) == -4000
    assert limit_at(ps, datetime(2024, 5, 31, 18, tzinfo=UTC), CTX) == 11000


def test_recurring_weekly_with_short_duration() -> None:
    p = profile(
        purpose="TxDefaultProfile",
        kind="Recurring",
        recurrencyKind="Weekly",
        start=T0,
        duration=3600,
        periods=[(0, -1000)],
    )
    ps = installed((0, p))
    assert limit_at(ps, at(30), CTX) == -1000
    assert limit_at(ps, at(90), CTX) == 11000
    assert limit_at(ps, T0 + timedelta(days=7, minutes=10), CTX) == -1000
    assert limit_at(ps, T0 + timedelta(days=1, minutes=10), CTX) == 11000


def test_relative_starts_at_transaction_start() -> None:
    ctx = EvseContext(1, 11000, 10000, transaction_id="tx1", transaction_start=at(0))
    ps = installed((1, profile(kind="Relative", start=None, periods=[(0, 1000), (600, 3000)])))
    assert limit_at(ps, at(5), ctx) == 1000
    assert limit_at(ps, at(15), ctx) == 3000


def test_expired_only_when_it_can_never_apply_again() -> None:
    p = install(1, profile(duration=600))
    assert not expired(p, at(9), CTX)
    assert expired(p, at(10), CTX)
    q = install(1, profile(validTo=iso(at(15))))
    assert not expired(q, at(14), CTX)
    assert expired(q, at(15), CTX)
    r = install(0, profile(kind="Recurring", recurrencyKind="Daily", duration=60))
    assert not expired(r, at(600), CTX)


def test_composite_schedule_over_window_merges_equal_periods() -> None:
    ps = installed(
        (0, profile(1, purpose="TxDefaultProfile", start=at(-60), periods=[(0, 6000)])),
        (1, profile(2, periods=[(0, -5000), (600, -5000), (900, 2000)], validTo=iso(at(20)))),
    )
    out = composite_schedule(ps, CTX, at(-5), 3600)
    assert out["evseId"] == 1
    assert out["duration"] == 3600
    assert out["chargingRateUnit"] == "W"
    assert out["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 6000},
        {"startPeriod": 300, "limit": -5000},
        {"startPeriod": 1200, "limit": 2000},
        {"startPeriod": 1500, "limit": 6000},
    ]


def test_composite_schedule_in_amps() -> None:
    ps = installed((1, profile(periods=[(0, -6900)], duration=60)))
    out = composite_schedule(ps, CTX, T0, 120, unit="A")
    assert out["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": -10.0, "numberPhases": 3},
        {"startPeriod": 60, "limit": pytest.approx(15.9), "numberPhases": 3},
    ]


def test_composite_schedule_daily_recurrence_in_window() -> None:
    midnight = datetime(2024, 6, 1, tzinfo=UTC)
    p = profile(
        purpose="TxDefaultProfile",
        kind="Recurring",
        recurrencyKind="Daily",
        start=midnight,
        periods=[(0, 2000), (12 * 3600, 4000)],
    )
    out = composite_schedule(installed((0, p)), CTX, datetime(2024, 6, 3, 6, tzinfo=UTC), 86400)
    assert [(q["startPeriod"], q["limit"]) for q in out["chargingSchedulePeriod"]] == [
        (0, 2000),
        (6 * 3600, 4000),
        (18 * 3600, 2000),
    ]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"chargingProfilePurpose": "Bogus"}, "chargingProfilePurpose"),
        ({"chargingProfileKind": "Sometimes"}, "chargingProfileKind"),
        ({"stackLevel": "high"}, "stackLevel"),
        ({"id": None}, "id"),
        ({"validTo": "tomorrow"}, "validTo"),
        ({"validTo": "2024-06-03T18:00:00"}, "validTo"),
        ({"validFrom": "2024-06-03T18:00:00Z", "validTo": "2024-06-03T17:00:00Z"}, "validTo"),
        ({"chargingSchedule": []}, "chargingSchedule"),
        ({"chargingProfileKind": "Recurring"}, "recurrencyKind"),
    ],
)
def test_bad_profiles_named(change: dict[str, Any], key: str) -> None:
    p = profile()
    p.update(change)
    with pytest.raises(InvalidProfile) as err:
        install(1, p)
    assert key in str(err.value)


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda s: s.pop("startSchedule"), "startSchedule"),
        (lambda s: s.update(chargingRateUnit="kW"), "chargingRateUnit"),
        (lambda s: s.update(duration=-5), "duration"),
        (
            lambda s: s.update(chargingSchedulePeriod=[{"startPeriod": 60, "limit": 1}]),
            "startPeriod",
        ),
        (lambda s: s["chargingSchedulePeriod"].append({"startPeriod": 0, "limit": 1}), "rise"),
        (lambda s: s["chargingSchedulePeriod"][0].update(limit="lots"), "limit"),
        (lambda s: s["chargingSchedulePeriod"][0].update(numberPhases=4), "numberPhases"),
    ],
)
def test_bad_schedules_named(mutate: Any, key: str) -> None:
    p = profile()
    mutate(p["chargingSchedule"][0])
    with pytest.raises(InvalidProfile, match=key):
        install(1, p)
