import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from v2g_gateway.config import TariffPeriod
from v2g_gateway.errors import ConfigError
from v2g_gateway.prices.tariff import tariff_prices

BERLIN = ZoneInfo("Europe/Berlin")


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BERLIN)


PEAK = TariffPeriod(start="17:00", end="21:00", import_per_kwh=0.45, export_per_kwh=0.35)
OFFPEAK = TariffPeriod(start="21:00", end="17:00", import_per_kwh=0.20, export_per_kwh=0.05)


def test_wrap_period_and_midnight_cut() -> None:
    slots = tariff_prices([PEAK, OFFPEAK], BERLIN, local(2024, 6, 3), local(2024, 6, 4))
    got = [(s.start.astimezone(BERLIN).hour, s.end.astimezone(BERLIN).hour) for s in slots]
    assert got == [(0, 17), (17, 21), (21, 0)]
    assert [s.import_per_kwh for s in slots] == [0.20, 0.45, 0.20]
    assert slots[0].start == datetime(2024, 6, 2, 22, tzinfo=UTC)
    assert sum(s.hours for s in slots) == 24


def test_slots_are_cut_at_every_local_midnight() -> None:
    whole = TariffPeriod(start="00:00", end="00:00", import_per_kwh=0.3)
    slots = tariff_prices([whole], BERLIN, local(2024, 6, 3, 12), local(2024, 6, 6, 6))
    assert [s.hours for s in slots] == [12, 24, 24, 6]
    assert all(s.start.tzinfo is UTC for s in slots)


@pytest.mark.parametrize(("day", "hours"), [((2024, 3, 31), 23), ((2024, 10, 27), 25)])
def test_dst_days_have_true_length(day: tuple[int, int, int], hours: int) -> None:
    slots = tariff_prices([PEAK, OFFPEAK], BERLIN, local(*day), local(*day) + timedelta(days=1))
    assert sum(s.hours for s in slots) == hours
    # The peak stays at 17:00-21:00 local, so its UTC start moves with the offset.
    peak = [s for s in slots if s.import_per_kwh == 0.45]
    assert [s.start.astimezone(BERLIN).hour for s in peak] == [17]
    assert peak[0].hours == 4


def test_period_inside_spring_gap_yields_no_slot_and_no_error() -> None:
    night = TariffPeriod(start="02:00", end="03:00", import_per_kwh=0.1)
    rest = TariffPeriod(start="03:00", end="02:00", import_per_kwh=0.3)
    slots = tariff_prices([night, rest], BERLIN, local(2024, 3, 31), local(2024, 4, 1))
    assert sum(s.hours for s in slots) == 23
    assert 0.1 not in [s.import_per_kwh for s in slots]
    # On an ordinary day the night hour is there.
    slots = tariff_prices([night, rest], BERLIN, local(2024, 4, 1), local(2024, 4, 2))
    assert [s.import_per_kwh for s in slots].count(0.1) == 1


def test_end_2400_and_weekday_and_month_filters() -> None:
    weekday_day = TariffPeriod(
        start="08:00", end="24:00", import_per_kwh=0.40, days=("mon", "tue", "wed", "thu", "fri")
    )
    weekday_night = TariffPeriod(
        start="00:00", end="08:00", import_per_kwh=0.25, days=("mon", "tue", "wed", "thu", "fri")
    )
    weekend = TariffPeriod(start="00:00", end="24:00", import_per_kwh=0.22, days=("sat", "sun"))
    winter_extra = TariffPeriod(start="17:00", end="19:00", import_per_kwh=0.60, months=(12, 1, 2))
    periods = [winter_extra, weekday_day, weekday_night, weekend]
    # Fri 2024-06-07 .. Sun: no winter peak in June.
    june = tariff_prices(periods, BERLIN, local(2024, 6, 7), local(2024, 6, 9))
    assert [s.import_per_kwh for s in june] == [0.25, 0.40, 0.22]
    # Fri 2024-01-05: the winter peak listed first cuts into the weekday day period.
    jan = tariff_prices(periods, BERLIN, local(2024, 1, 5), local(2024, 1, 6))
    assert [s.import_per_kwh for s in jan] == [0.25, 0.40, 0.60, 0.40]
    assert jan[2].start == datetime(2024, 1, 5, 16, tzinfo=UTC)


def test_gap_is_an_error_naming_the_local_time() -> None:
    day = TariffPeriod(start="06:00", end="22:00", import_per_kwh=0.3)
    with pytest.raises(ConfigError, match=r"Mon 2024-06-03 00:00-06:00 local"):
        tariff_prices([day], BERLIN, local(2024, 6, 3), local(2024, 6, 4))


def test_weekday_gap_is_named_on_the_uncovered_day() -> None:
    weekdays = TariffPeriod(
        start="00:00", end="00:00", import_per_kwh=0.3, days=("mon", "tue", "wed", "thu", "fri")
    )
    with pytest.raises(ConfigError, match=r"Sat 2024-06-08 00:00-00:00"):
        tariff_prices([weekdays], BERLIN, local(2024, 6, 7), local(2024, 6, 9))


def test_empty_range_and_naive_times() -> None:
    assert tariff_prices([PEAK, OFFPEAK], BERLIN, local(2024, 6, 3), local(2024, 6, 3)) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        tariff_prices([PEAK], BERLIN, datetime(2024, 6, 3), datetime(2024, 6, 4))


def test_year_long_range_sums_to_the_year() -> None:
    slots = tariff_prices([PEAK, OFFPEAK], BERLIN, local(2024, 1, 1), local(2025, 1, 1))
    assert sum(s.hours for s in slots) == 366 * 24
    assert all(a.end == b.start for a, b in itertools.pairwise(slots))
