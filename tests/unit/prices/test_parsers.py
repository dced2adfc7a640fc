import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from v2g_gateway.errors import PriceFetchError, PriceParseError
from v2g_gateway.prices.awattar import parse_awattar
from v2g_gateway.prices.csvfile import parse_csv
from v2g_gateway.prices.energidataservice import parse_energidataservice
from v2g_gateway.prices.entsoe import eic_code, parse_entsoe
from v2g_gateway.prices.load import load_price_file
from v2g_gateway.prices.nordpool import parse_nordpool
from v2g_gateway.prices.octopus import parse_octopus
from v2g_gateway.prices.pushed import parse_pushed_series

FIX = Path(__file__).parents[2] / "fixtures" / "prices"
CSV = FIX / "csv"
BRUSSELS = ZoneInfo("Europe/Brussels")


def day_slots(slots: list, day: str) -> list:  # type: ignore[type-arg]
    return [s for s in slots if s.start.astimezone(BRUSSELS).date().isoformat() == day]


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)  # type: ignore[misc]


# ---- ENTSO-E


def test_entsoe_overlap_prefers_15_minutes_and_fills_a03_gaps() -> None:
    slots = parse_entsoe((FIX / "entsoe/hass-entso-e/DE_60M_15M_overlap.xml").read_bytes())
    assert len(slots) == 192
    assert {s.hours for s in slots} == {0.25}
    assert slots[0].start == utc(2024, 10, 5, 22) and slots[-1].end == utc(2024, 10, 7, 22)
    assert all(a.end == b.start for a, b in itertools.pairwise(slots))
    # Position 23 of day 1 is omitted (A03): it repeats position 22.
    assert slots[22].price == slots[21].price
    assert min(s.price for s in slots) == pytest.approx(-0.02991)


def test_entsoe_15_minute_every_4th_point_is_forward_filled() -> None:
    slots = parse_entsoe((FIX / "entsoe/hass-entso-e/BE_60M_15M_mix.xml").read_bytes())
    quarter = [s for s in slots if s.hours == 0.25]
    hourly = [s for s in slots if s.hours == 1.0]
    assert (len(quarter), len(hourly)) == (192, 24)
    assert quarter[0].price == quarter[1].price == quarter[2].price == quarter[3].price


def test_entsoe_mixed_resolution_periods_and_out_of_range_point() -> None:
    slots = parse_entsoe((FIX / "entsoe/hass-entso-e/BE_15M_avg.xml").read_bytes())
    assert [s.hours for s in slots] == [0.25] * 20 + [1.0, 1.0]
    assert slots[4].price == pytest.approx(0.04422)  # position 5 given out of order
    assert slots[-1].price == slots[-2].price  # position 2 of the hourly period filled


def test_entsoe_acknowledgement_is_a_fetch_error_with_reason() -> None:
    ack = """<?xml version="1.0" encoding="UTF-8"?>
<Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">
  <mRID>x</mRID><Reason><code>999</code>
  <text>No matching data found for Data item Day-ahead Prices [12.1.D]</text></Reason>
</Acknowledgement_MarketDocument>"""
    with pytest.raises(PriceFetchError, match="No matching data found"):
        parse_entsoe(ack)


def test_entsoe_unexpected_unit_is_named() -> None:
    raw = (
        (FIX / "entsoe/hass-entso-e/BE_60M.xml")
        .read_text()
        .replace("<price_Measure_Unit.name>MWH", "<price_Measure_Unit.name>GJ")
    )
    with pytest.raises(PriceParseError, match="unexpected price unit 'GJ'"):
        parse_entsoe(raw)


def test_eic_codes_by_friendly_name() -> None:
    assert eic_code("de-lu") == eic_code("DE") == "10Y1001A1001A82H"
    assert eic_code("SE3") == "10Y1001A1001A46L"
    assert eic_code("NO1") == "10YNO-1--------2"
    with pytest.raises(PriceParseError, match="unknown bidding zone 'XX'"):
        eic_code("XX")


# ---- JSON APIs


def test_nordpool_day_ahead_and_15_minute_indices() -> None:
    se3 = parse_nordpool((FIX / "nordpool/pynordpool/delivery_period.json").read_bytes())
    assert len(se3) == 24 and se3[0].price == pytest.approx(0.02154)
    assert se3[0].start == utc(2024, 11, 4, 23)
    idx = parse_nordpool((FIX / "nordpool/ha-core/indices_15.json").read_bytes(), "SE3")
    assert len(idx) == 96 and idx[0].currency == "SEK" and idx[0].hours == 0.25
    with pytest.raises(PriceParseError, match="area 'SE4' not in the response"):
        parse_nordpool((FIX / "nordpool/ha-core/delivery_period_nl.json").read_bytes(), "SE4")


def test_energidataservice_graphql_and_rest_records() -> None:
    old = parse_energidataservice(
        (FIX / "energidataservice/MTrab-energidataservice/20220325.json").read_bytes()
    )
    assert len(old) == 24 and old[0].price == pytest.approx(0.242) and old[0].hours == 1
    rest = """{"total": 3, "dataset": "DayAheadPrices", "records": [
      {"TimeUTC": "2025-10-01T22:15:00", "TimeDK": "2025-10-02T00:15:00", "PriceArea": "DK1",
       "DayAheadPriceDKK": 700.0, "DayAheadPriceEUR": 93.8},
      {"TimeUTC": "2025-10-01T22:00:00", "TimeDK": "2025-10-02T00:00:00", "PriceArea": "DK1",
       "DayAheadPriceDKK": 750.0, "DayAheadPriceEUR": 100.5},
      {"TimeUTC": "2025-10-01T22:00:00", "TimeDK": "2025-10-02T00:00:00", "PriceArea": "DK2",
       "DayAheadPriceDKK": 1.0, "DayAheadPriceEUR": 1.0}]}"""
    slots = parse_energidataservice(rest, "DK1", "DKK")
    assert [(s.start, s.hours, s.price, s.currency) for s in slots] == [
        (utc(2025, 10, 1, 22), 0.25, 0.75, "DKK"),
        (utc(2025, 10, 1, 22, 15), 0.25, 0.7, "DKK"),
    ]


def test_awattar_synthetic_spring_day() -> None:
    slots = parse_awattar((FIX / "awattar/synthetic/de_2024-03-31.json").read_bytes())
    assert len(slots) == 23 and slots[0].start == utc(2024, 3, 30, 23)
    assert slots[11].price == pytest.approx(-0.0015)
    bad = '{"data":[{"start_timestamp":0,"end_timestamp":3600000,"marketprice":1,"unit":"Eur/GJ"}]}'
    with pytest.raises(PriceParseError, match="unexpected price unit"):
        parse_awattar(bad)


def test_octopus_newest_first_becomes_sorted_gbp_per_kwh() -> None:
    raw = (FIX / "octopus/bluca-nest-octopus/large_response_46_results.json").read_bytes()
    exc, inc = parse_octopus(raw), parse_octopus(raw, inc_vat=True)
    assert len(exc) == 46 and exc[0].start < exc[-1].start and exc[0].currency == "GBP"
    assert inc[-1].price == pytest.approx(exc[-1].price * 1.05)
    assert exc[-1].price == pytest.approx(0.1373)


def test_pushed_series() -> None:
    raw = '[{"start":"2025-01-01T01:00:00+01:00","price":0.2},{"start":"2025-01-01T01:30:00Z","end":"2025-01-01T02:00:00Z","price":"0.1"}]'
    slots = parse_pushed_series(raw, "USD")
    assert [(s.start, s.end, s.price) for s in slots] == [
        (utc(2025, 1, 1, 0), utc(2025, 1, 1, 1, 30), 0.2),
        (utc(2025, 1, 1, 1, 30), utc(2025, 1, 1, 2), 0.1),
    ]
    with pytest.raises(PriceParseError, match="needs 'end'"):
        parse_pushed_series('[{"start":"2025-01-01T00:00:00Z","price":1}]')
    with pytest.raises(PriceParseError, match="no UTC offset"):
        parse_pushed_series(
            '[{"start":"2025-01-01T00:00:00","end":"2025-01-01T01:00:00Z","price":1}]'
        )


# ---- CSV and DST


def test_entsoe_export_de_2024_dst_days() -> None:
    slots = load_price_file(
        CSV
        / "AntoineAckermann-Arbitrage-Batterie/DE_Day-ahead_Prices_202401010000-202501010000.csv",
        "csv",
    )
    spring = day_slots(slots, "2024-03-31")
    assert len(spring) == 23  # the blank 02:00 row is the hour that does not exist
    assert [s.start for s in spring[:3]] == [
        utc(2024, 3, 30, 23),
        utc(2024, 3, 31, 0),
        utc(2024, 3, 31, 1),
    ]
    assert spring[2].price == pytest.approx(0.06498)  # 03:00 CEST
    assert len(slots) == 6647  # "-" placeholders from 2024-10-04 are skipped
    assert slots[-1].end == utc(2024, 10, 3, 22)
    assert all(a.start < b.start for a, b in itertools.pairwise(slots))


def test_entsoe_export_fr_2023_nonexistent_hour_and_repeated_hour() -> None:
    slots = load_price_file(
        CSV
        / "AntoineAckermann-Arbitrage-Batterie/FR_Day-ahead_Prices_202301010000-202401010000.csv",
        "csv",
    )
    assert len(slots) == 8760
    spring = day_slots(slots, "2023-03-26")
    assert len(spring) == 23 and 0.05454 not in [s.price for s in spring]
    autumn = day_slots(slots, "2023-10-29")
    assert len(autumn) == 25
    assert [(s.start, s.price) for s in autumn[2:4]] == [
        (utc(2023, 10, 29, 0), pytest.approx(0.00002)),
        (utc(2023, 10, 29, 1), 0.0),
    ]
    assert sum(s.hours for s in slots) == 8760


def test_stata_file_kwh_with_blank_and_duplicate_hours() -> None:
    slots = load_price_file(CSV / "RigauxBaptiste-proof-of-pudding/DAM_prices.csv", "csv")
    assert len(slots) == 22583
    assert len(day_slots(slots, "2022-03-27")) == 23
    autumn = day_slots(slots, "2022-10-30")
    assert len(autumn) == 25
    assert autumn[2].start == utc(2022, 10, 30, 0) and autumn[3].start == utc(2022, 10, 30, 1)
    assert autumn[2].price == pytest.approx(0.10022) and autumn[3].price == pytest.approx(0.09993)
    assert slots[0].price == pytest.approx(0.08202, abs=1e-5)


def test_simple_csv_units_and_offsets() -> None:
    naive_mwh = load_price_file(CSV / "AlkisKIThub-ensemble-dayahead/DE_LU_DAM_prices.csv", "csv")
    assert naive_mwh[0].start == utc(2022, 6, 8, 22) and naive_mwh[0].price == pytest.approx(
        0.18901
    )
    aware = parse_csv(
        "start,price [SEK/kWh]\n2025-01-01T00:00:00Z,1.5\n2025-01-01T00:15:00Z,1.25\n"
    )
    assert [(s.hours, s.price, s.currency) for s in aware] == [
        (0.25, 1.5, "SEK"),
        (0.25, 1.25, "SEK"),
    ]
    with pytest.raises(PriceParseError, match="line 3: 'tomorrow' is not an ISO-8601 time"):
        parse_csv("start,price\n2025-01-01T00:00:00Z,1\ntomorrow,2\n")


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(PriceParseError, match=r"x.json: octopus: not valid JSON"):
        load_price_file(bad, "octopus")
    with pytest.raises(PriceParseError, match="cannot read"):
        load_price_file(tmp_path / "missing.csv", "csv")
    with pytest.raises(PriceParseError, match="unknown price format 'xls'"):
        load_price_file(bad, "xls")


def test_hourly_and_quarter_hour_days_are_not_assumed_24() -> None:
    slots = load_price_file(
        CSV
        / "AntoineAckermann-Arbitrage-Batterie/DK1_Day-ahead_Prices_202401010000-202501010000.csv",
        "csv",
    )
    assert sum(s.hours for s in day_slots(slots, "2024-03-31")) == 23
    assert slots[0].start - timedelta(0) == utc(2023, 12, 31, 23)
