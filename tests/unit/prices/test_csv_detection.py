"""A CSV file gives the daemon exactly the slots `prices load --format csv` shows: one rule
tells the formats apart, with the same default on both sides."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from contextlib import redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

import pytest

from v2g_gateway.cli import main
from v2g_gateway.config import PricesSection, parse_config
from v2g_gateway.errors import PriceParseError
from v2g_gateway.prices.csvfile import detect_variant, parse_csv
from v2g_gateway.prices.load import load_price_file
from v2g_gateway.prices.source import CsvFileSource

FIXTURES = Path(__file__).parents[2] / "fixtures" / "prices" / "csv"
FILES = sorted(FIXTURES.glob("*/*.csv"))
EXPECTED = {
    "DE_LU_DAM_prices.csv": "simple",
    "DE_Day-ahead_Prices_202401010000-202501010000.csv": "entsoe",
    "DK1_Day-ahead_Prices_202401010000-202501010000.csv": "entsoe",
    "FI_Day-ahead_Prices_202401010000-202501010000.csv": "entsoe",
    "FR_Day-ahead_Prices_202301010000-202401010000.csv": "entsoe",
    "DAM_prices.csv": "stata",
}


def test_every_recorded_format_is_known() -> None:
    assert {f.name for f in FILES} == set(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_daemon_and_prices_load_agree(path: Path) -> None:
    rows = [r for r in csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))) if r]
    assert detect_variant(rows) == EXPECTED[path.name]
    cfg = parse_config({"prices": {"source": "csv", "csv_file": str(path)}})
    assert cfg.prices.csv_format == "auto"  # the daemon's default is the CLI's
    cli = load_price_file(path, "csv")
    source = CsvFileSource(path, cfg.prices.csv_format, "EUR")
    daemon = asyncio.run(
        source.fetch(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    )
    assert daemon == cli
    assert len(cli) > 500
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["prices", "load", str(path), "--format", "csv", "--json"]) == 0
    shown = json.loads(out.getvalue())
    assert len(shown) == len(daemon)
    assert shown[0]["price"] == daemon[0].price


def test_a_forced_variant_is_the_same_on_both_sides() -> None:
    path = FIXTURES / "RigauxBaptiste-proof-of-pudding" / "DAM_prices.csv"
    assert load_price_file(path, "csv", csv_format="stata") == parse_csv(path.read_bytes(), "stata")
    assert PricesSection(source="csv", csv_file=path, csv_format="stata").csv_format == "stata"
    with pytest.raises(PriceParseError, match=r"DAM_prices.csv: csv: no \[CUR/MWh\] unit"):
        load_price_file(path, "csv", csv_format="entsoe")  # the wrong variant says where
