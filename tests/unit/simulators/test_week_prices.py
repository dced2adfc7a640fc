"""The week the demo replays: real recorded prices for every day, attributed, unedited."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from simulators.scenario import load_scenario
from v2g_gateway.prices.load import load_price_file

ROOT = Path(__file__).parents[3]
WEEK = ROOT / "v2g_gateway" / "data" / "prices" / "DE-LU_2024-09-02_week.csv"
EXPORT = (
    ROOT
    / "tests/fixtures/prices/csv/AntoineAckermann-Arbitrage-Batterie"
    / "DE_Day-ahead_Prices_202401010000-202501010000.csv"
)


def test_every_row_is_the_recorded_one() -> None:
    week = WEEK.read_text().splitlines()
    export = EXPORT.read_text().splitlines()
    assert week[0] == export[0]  # the ENTSO-E header, with its unit and zone
    start = export.index(week[1])
    assert export[start : start + len(week) - 1] == week[1:]
    assert len(week) - 1 == 8 * 24


def test_the_week_scenario_has_a_price_for_every_hour() -> None:
    sc = load_scenario("week")
    path = sc.prices_path()
    assert path == WEEK
    slots = load_price_file(WEEK, sc.prices_format or "csv")
    assert slots[0].start <= sc.start_at
    assert slots[-1].end >= sc.end_at + timedelta(days=1)  # Sunday night plans into Monday
    assert all(a.end == b.start for a, b in itertools.pairwise(slots))
    tz = ZoneInfo("Europe/Berlin")
    peak = max(slots, key=lambda s: s.price)
    assert peak.start.astimezone(tz) == datetime(2024, 9, 3, 19, tzinfo=tz)  # as SOURCES.md says


def test_the_week_file_is_attributed() -> None:
    sources = (WEEK.parent / "SOURCES.md").read_text()
    line = next(x for x in sources.splitlines() if x.startswith(f"| {WEEK.name} |"))
    assert "ENTSO-E Transparency Platform" in line
    assert "AntoineAckermann/Arbitrage-Batterie" in line
    assert "38b58a25faa73afdf60da4f66a7e2bd932d39c5f" in line
