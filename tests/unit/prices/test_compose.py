"""The worked examples of docs/prices.md, computed by compose()."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from v2g_gateway.config import PricesSection, TariffPeriod
from v2g_gateway.model import PriceSlot
from v2g_gateway.prices.compose import compose


def one_slot(
    price: float, start: datetime, cfg: dict[str, Any], tz: str
) -> list[tuple[float, float, float]]:
    section = PricesSection(source="csv", csv_file="x.csv", **cfg)
    spot = [PriceSlot(start, start + timedelta(hours=1), price)]
    return [
        (s.hours, round(s.import_per_kwh, 5), round(s.export_per_kwh, 5))
        for s in compose(spot, section, ZoneInfo(tz))
    ]


NOON = datetime(2025, 6, 2, 10, tzinfo=UTC)  # 12:00 in CET/CEST zones


@pytest.mark.parametrize(
    ("price", "cfg", "tz", "expected"),
    [
        (  # DE: VAT on spot and margin; grid fee and Stromsteuer entered gross; EEG fixed feed-in
            0.08,
            dict(
                supplier_margin_per_kwh=0.02,
                vat_percent=19,
                grid_fee_per_kwh=0.1309,
                energy_tax_per_kwh=0.0244,
                export_fixed_per_kwh=0.0796,
            ),
            "Europe/Berlin",
            [(1.0, 0.2743, 0.0796)],
        ),
        (  # SE3: energiskatt gross, export at spot
            0.60,
            dict(
                supplier_margin_per_kwh=0.04,
                vat_percent=25,
                grid_fee_per_kwh=0.25,
                energy_tax_per_kwh=0.54875,
                currency="SEK",
            ),
            "Europe/Stockholm",
            [(1.0, 1.59875, 0.60)],
        ),
        (  # NL: energiebelasting gross, no per-kWh grid fee, export spot minus a fee
            0.10,
            dict(
                supplier_margin_per_kwh=0.02,
                vat_percent=21,
                energy_tax_per_kwh=0.1229,
                export_fee_per_kwh=0.02,
            ),
            "Europe/Amsterdam",
            [(1.0, 0.2681, 0.08)],
        ),
        (  # UK Agile: rates exc VAT already hold margin and network costs
            0.20,
            dict(vat_percent=5, export_fixed_per_kwh=0.15, currency="GBP"),
            "Europe/London",
            [(1.0, 0.21, 0.15)],
        ),
    ],
)
def test_worked_examples(
    price: float, cfg: dict[str, Any], tz: str, expected: list[tuple[float, float, float]]
) -> None:
    assert one_slot(price, NOON, cfg, tz) == expected


NO_GRID = (
    TariffPeriod(start="06:00", end="22:00", import_per_kwh=0.30),
    TariffPeriod(start="22:00", end="06:00", import_per_kwh=0.20),
)


def test_norway_time_of_use_grid_fee() -> None:
    cfg = dict(
        supplier_margin_per_kwh=0.05,
        vat_percent=25,
        grid_fee_tou=NO_GRID,
        energy_tax_per_kwh=0.2086,
        export_fee_per_kwh=0.01,
        currency="NOK",
    )
    assert one_slot(0.50, NOON, cfg, "Europe/Oslo") == [(1.0, 1.1961, 0.49)]
    night = datetime(2025, 6, 2, 1, tzinfo=UTC)  # 03:00 Oslo
    assert one_slot(0.50, night, cfg, "Europe/Oslo") == [(1.0, 1.0961, 0.49)]


def test_denmark_peak_fee_splits_an_hour_where_it_changes() -> None:
    grid = (
        TariffPeriod(start="17:30", end="21:00", import_per_kwh=0.60),
        TariffPeriod(start="21:00", end="17:30", import_per_kwh=0.20),
    )
    cfg = dict(
        supplier_margin_per_kwh=0.05,
        vat_percent=25,
        grid_fee_tou=grid,
        energy_tax_per_kwh=0.90,
        export_fee_per_kwh=0.01,
        currency="DKK",
    )
    start = datetime(2025, 6, 2, 15, tzinfo=UTC)  # 17:00-18:00 Copenhagen
    assert one_slot(0.80, start, cfg, "Europe/Copenhagen") == [
        (0.5, 2.1625, 0.79),
        (0.5, 2.5625, 0.79),
    ]


def test_empty_spot_gives_no_prices() -> None:
    assert compose([], PricesSection(source="csv", csv_file="x.csv"), ZoneInfo("UTC")) == []
