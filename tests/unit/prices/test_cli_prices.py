import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from v2g_gateway.cli_prices import add_subparsers
from v2g_gateway.config import load_config
from v2g_gateway.model import PriceSlot
from v2g_gateway.store.db import Store

FIX = Path(__file__).parents[2] / "fixtures" / "prices"


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    add_subparsers(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    code: int = args.func(args)
    return code


def test_load_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIX / "nordpool/ha-core/indices_15.json"
    assert (
        run(["prices", "load", str(path), "--format", "nordpool", "--json", "--area", "SE3"]) == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 96
    assert rows[0] == {
        "start": "2025-09-30T22:00:00Z",
        "end": "2025-09-30T22:15:00Z",
        "price": 0.55668,
    }


def test_load_csv_table(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIX / "energidataservice/MTrab-energidataservice/20220325.json"
    assert run(["prices", "load", str(path), "--format", "energidataservice"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "start,end,price,currency"
    assert lines[1] == "2022-03-25T00:00:00Z,2022-03-25T01:00:00Z,0.242,EUR"
    assert len(lines) == 25


def test_load_errors_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.xml"
    bad.write_text("<Publication_MarketDocument>")
    assert run(["prices", "load", str(bad), "--format", "entsoe"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken.xml: entsoe: not XML" in err


def _config(tmp_path: Path, prices: str) -> Path:
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[gateway]\nstate_dir = "{tmp_path}"\ntimezone = "Europe/Berlin"\n{prices}')
    return cfg


def test_show_tariff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(
        tmp_path,
        '[prices]\nsource = "tariff"\n[[prices.tariff]]\nstart = "00:00"\nend = "00:00"\nimport_per_kwh = 0.31\n',
    )
    assert run(["prices", "show", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert out.count("0.3100") == 2  # today and tomorrow, cut at midnight


def test_show_reads_the_daemon_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _config(tmp_path, '[prices]\nsource = "awattar"\narea = "DE"\nvat_percent = 10\n')
    cfg = load_config(cfg_path)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    store = Store.open(tmp_path / "state.sqlite", cfg)
    store.save_price_slots("awattar:DE", [PriceSlot(now, now + timedelta(hours=1), 0.1)])
    store.close()
    assert run(["prices", "show", "--config", str(cfg_path)]) == 0
    out = capsys.readouterr().out
    assert "0.1000" in out and "0.1100" in out


def test_show_without_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, '[prices]\nsource = "awattar"\n')
    assert run(["prices", "show", "--config", str(cfg)]) == 2
    assert "no state database" in capsys.readouterr().err
