"""The house load learnt from history (same weekday and time, recent weeks; a standard profile
before), and the end-of-horizon value from a price forecast (raised by it, never lowered)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from v2g_gateway.home.load import LoadHistory, standard_kw
from v2g_gateway.home.price_forecast import end_value_per_kwh, forecast_prices
from v2g_gateway.model import UserPriceSlot

TZ = ZoneInfo("Europe/Berlin")
MON = datetime(2026, 6, 1, 18, 0, tzinfo=TZ)  # a Monday


def test_standard_profile_is_a_household_year() -> None:
    t, total = datetime(2026, 1, 1, tzinfo=TZ), 0.0
    while t.year == 2026:
        total += standard_kw(t, 4000.0) * 0.25
        t += timedelta(minutes=15)
    assert total == pytest.approx(4000.0, rel=0.03)
    assert standard_kw(MON, 4000.0) > standard_kw(MON.replace(hour=3), 4000.0)  # evening > night


def test_same_weekday_and_time_over_recent_weeks() -> None:
    h = LoadHistory(TZ, weeks=4)
    for week, w in ((1, 1000.0), (2, 2000.0)):
        h.add(MON - timedelta(weeks=week) + timedelta(minutes=15), w, 900)
    h.add(MON - timedelta(days=1) + timedelta(minutes=15), 9000.0, 900)  # Sunday: not used
    [kw] = h.forecast_kw([(MON, MON + timedelta(minutes=15))])
    assert kw == pytest.approx(1.5)
    later = MON + timedelta(hours=3)
    [std] = h.forecast_kw([(later, later + timedelta(minutes=15))])
    assert std == pytest.approx(standard_kw(later, 4000.0))  # no history then: the standard


def test_history_survives_a_restart_and_forgets_old_weeks() -> None:
    h = LoadHistory(TZ, weeks=2)
    h.add(MON - timedelta(weeks=1) + timedelta(minutes=15), 1200.0, 900)
    again = LoadHistory(TZ, weeks=2)
    again.load_json(h.to_json())
    again.load_json({"bad": "x", "1": [1, "y"]})  # ignored
    [kw] = again.forecast_kw([(MON, MON + timedelta(minutes=15))])
    assert kw == pytest.approx(1.2)
    again.add(MON + timedelta(weeks=3), 500.0, 60)  # three weeks on: the old bucket goes
    assert again.mean_w(int((MON - timedelta(weeks=1)).timestamp())) is None


def slots(start: datetime, prices: list[float]) -> list[UserPriceSlot]:
    return [
        UserPriceSlot(start + timedelta(hours=i), start + timedelta(hours=i + 1), p, p / 2)
        for i, p in enumerate(prices)
    ]


def test_price_forecast_is_the_hour_of_day_mean() -> None:
    day0 = datetime(2026, 6, 1, tzinfo=UTC)
    history = slots(day0, [0.10] * 12 + [0.40] * 12) + slots(
        day0 + timedelta(days=1), [0.20] * 12 + [0.40] * 12
    )
    fc = forecast_prices(history, day0 + timedelta(days=2), day0 + timedelta(days=3), UTC)
    assert len(fc) == 24
    assert fc[0].import_per_kwh == pytest.approx(0.15)
    assert fc[20].import_per_kwh == pytest.approx(0.40)
    assert forecast_prices([], day0, day0 + timedelta(hours=1), UTC) == []


def test_the_forecast_only_raises_the_end_value() -> None:
    known = slots(MON, [0.30, 0.20, 0.40])
    assert end_value_per_kwh(known, [], 0.95) == pytest.approx(0.30 * 0.95)
    dear = slots(MON + timedelta(hours=3), [0.50, 0.60])
    assert end_value_per_kwh(known, dear, 0.95) == pytest.approx(0.55 * 0.95)
    cheap = slots(MON + timedelta(hours=3), [0.01, 0.02])
    # a cheap tomorrow never lowers it: it cannot justify a discharge today
    assert end_value_per_kwh(known, cheap, 0.95) == pytest.approx(0.30 * 0.95)
