"""The backtest through the real CLI over the recorded 2024 day-ahead prices (tests/fixtures)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from v2g_gateway.backtest import contiguous
from v2g_gateway.cli import main
from v2g_gateway.model import UserPriceSlot

CSV_DIR = Path(__file__).parents[2] / "fixtures/prices/csv/AntoineAckermann-Arbitrage-Batterie"
YEARS = {
    "DE-LU": CSV_DIR / "DE_Day-ahead_Prices_202401010000-202501010000.csv",
    "DK1": CSV_DIR / "DK1_Day-ahead_Prices_202401010000-202501010000.csv",
}
# A German household: import = (spot + 0.02) * 1.19 + 0.12 grid fee + 0.02 tax; export = spot.
CONFIG = """
[gateway]
timezone = "Europe/Berlin"
[[chargers]]
id = "garage"
max_charge_w = 11000
max_discharge_w = 10000
[[vehicles]]
id = "car"
battery_kwh = 60
reserve_soc_percent = 40
[prices]
source = "csv"
csv_file = "{csv}"
supplier_margin_per_kwh = 0.02
vat_percent = 19
grid_fee_per_kwh = 0.12
energy_tax_per_kwh = 0.02
[preferences]
degradation_cost_per_kwh = 0.03
[[preferences.departures]]
days = ["mon", "tue", "wed", "thu", "fri"]
time = "07:30"
target_soc_percent = 80
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG.format(csv=YEARS["DE-LU"]), encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["backtest", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("area", sorted(YEARS))
def test_year_backtest_is_safe_and_beats_both_baselines(
    area: str, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        capsys, "--config", str(config), "--prices", str(YEARS[area]), "--format", "csv", "--json"
    )
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    assert doc["days"] > 250
    assert doc["reserve_violations"] == 0
    assert doc["missed_departures"] == 0
    assert doc["departures"] > 150
    assert doc["saving_vs_dumb_per_year"] > 50.0
    assert doc["saving_vs_cheapest"] > 0.0
    _check_slots_like_an_outside_tool(doc["slots"])


def _check_slots_like_an_outside_tool(slots: list[dict[str, Any]]) -> None:
    soc = 60.0  # the car starts full (max_soc_percent 100 of 60 kWh)
    for prev, s in zip([None, *slots], slots, strict=False):
        start, end = datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"])
        if prev is not None:
            assert start == datetime.fromisoformat(prev["end"])
        h = (end - start).total_seconds() / 3600
        if not s["plugged"]:
            assert s["charge_kw"] == 0 and s["discharge_kw"] == 0
        if s["discharge_kw"] > 0:
            assert soc >= 24.0 - 1e-4  # 40 % reserve
        new = soc + 0.95 * s["charge_kw"] * h - s["discharge_kw"] * h / 0.95
        # the trip is taken off between an away slot and the first plugged one
        if abs(new - s["soc_kwh"]) > 1e-3:
            assert prev is not None and not prev["plugged"] and s["plugged"]
            assert new - s["soc_kwh"] == pytest.approx(min(10.0, soc), abs=1e-3)
        soc = s["soc_kwh"]
        if s["discharge_kw"] > 0:
            assert soc >= 24.0 - 1e-4


def test_summary_and_plot_for_a_window(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "bt.png"
    code, out, err = _run(
        capsys,
        "--config", str(config), "--prices", str(YEARS["DE-LU"]), "--format", "csv",
        "--from", "2024-06-01", "--to", "2024-06-14", "--plot", str(png),
        "--arrive", "17:00", "--depart", "08:00", "--trip-kwh", "15",
    )  # fmt: skip
    assert code == 0, err
    assert "2024-06-01 .. 2024-06-14 (14 days)" in out
    assert "reserve violations: 0" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--from", "2024-13-01"], "--from: expected a date as YYYY-MM-DD"),
        (["--arrive", "7pm"], "--arrive: expected a local time as HH:MM"),
        (["--from", "2024-05-02", "--to", "2024-05-01"], "is before --from"),
        (["--from", "2025-01-01"], "fewer than 24 price slots"),
        (["--trip-kwh", "-1"], "--trip-kwh"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(
    extra: list[str], message: str, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--config", str(config), "--prices", str(YEARS["DK1"]), "--format", "csv", *extra]
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_missing_price_file_and_config_are_named(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.csv"
    code, _, err = _run(
        capsys, "--config", str(config), "--prices", str(missing), "--format", "csv"
    )
    assert code == 2 and str(missing) in err
    code, _, err = _run(
        capsys, "--config", str(tmp_path / "no.toml"), "--prices", str(missing), "--format", "csv"
    )
    assert code == 2 and "no.toml" in err


def test_short_gaps_are_filled_and_long_gaps_end_the_history() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)

    def slot(h: int, p: float) -> UserPriceSlot:
        return UserPriceSlot(t0 + timedelta(hours=h), t0 + timedelta(hours=h + 1), p, p / 2)

    notes: list[str] = []
    out = contiguous([slot(0, 0.1), slot(2, 0.3), slot(10, 0.5)], notes)
    assert [s.import_per_kwh for s in out] == [0.1, 0.1, 0.3]
    assert len(notes) == 2 and "ended there" in notes[1]


def test_capture_of_the_perfect_foresight_gain_is_reported(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        capsys, "--config", str(config), "--prices", str(YEARS["DE-LU"]), "--format", "csv",
        "--from", "2024-03-01", "--to", "2024-04-15", "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    names = [s["name"] for s in doc["strategies"]]
    assert names == ["planner", "dumb", "cheapest", "perfect"]
    perfect = doc["strategies"][3]
    assert perfect["net_cost"] <= doc["strategies"][0]["net_cost"] + 1e-6  # nobody beats it
    assert 0.5 < doc["perfect_foresight_capture"] <= 1.0


HOME = Path(__file__).parents[3] / "v2g_gateway/data/home/de-potsdam-pv-household-2024.csv"


def test_a_pv_home_through_the_site_plan(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = config.read_text().replace("[preferences]", "export_fixed_per_kwh = 0.08\n[preferences]")
    config.write_text(text + "[home]\nmain_fuse_a = 25\n")
    code, out, err = _run(
        capsys, "--config", str(config), "--prices", str(YEARS["DE-LU"]), "--format", "csv",
        "--from", "2024-06-01", "--to", "2024-06-30", "--home", str(HOME), "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["home"] is True
    by = {s["name"]: s for s in doc["strategies"]}
    assert set(by) == {"planner", "dumb", "cheapest", "pv_surplus", "perfect"}
    # the site plan beats evcc-style surplus charging and plain charging in a sunny June
    assert doc["saving_vs_pv_surplus"] > 5.0 and doc["saving_vs_dumb"] > 5.0
    assert doc["reserve_violations"] == 0 and doc["missed_departures"] == 0
    s = doc["slots"][0]
    assert {"load_kw", "pv_kw", "grid_import_kw", "grid_export_kw"} <= set(s)
    for s in doc["slots"]:
        net = s["load_kw"] - s["pv_kw"] + s["charge_kw"] - s["discharge_kw"]
        assert s["grid_import_kw"] - s["grid_export_kw"] == pytest.approx(net, abs=1e-3)
        assert s["grid_import_kw"] <= 25 * 230 * 3 / 1000 + 1e-3


def test_a_bad_home_file_is_one_line(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "home.csv"
    bad.write_text("start,load_w,pv_w\n2024-06-01T00:00Z,500,x\n2024-06-01T00:15Z,500,0\n")
    code, _out, err = _run(
        capsys, "--config", str(config), "--prices", str(YEARS["DE-LU"]), "--format", "csv",
        "--home", str(bad),
    )  # fmt: skip
    assert code == 2
    assert err.strip().count("\n") == 0 and "line 2: pv_w 'x' is not a number" in err
