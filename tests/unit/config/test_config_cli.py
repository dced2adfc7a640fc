"""Config mistakes reach the user as one line naming file, key and problem; exit 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from v2g_gateway.config import Config, load_config

GOOD = """
[gateway]
id = "home"
state_dir = "state"
timezone = "Europe/Berlin"
[[chargers]]
id = "garage"
password = "a-long-random-secret"
[[vehicles]]
id = "car"
battery_kwh = 60
charger = "garage"
[prices]
source = "tariff"
[[prices.tariff]]
start = "00:00"
end = "00:00"
import_per_kwh = 0.3
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "v2g_gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (("[gateway]", "[gateway"), "invalid TOML"),
        (('id = "home"\n', ""), None),  # a default: still valid
        (("battery_kwh = 60\n", ""), "vehicles[0].battery_kwh: required key is missing"),
        (("battery_kwh = 60", 'battery_kwh = "big"'), "vehicles[0].battery_kwh"),
        (("timezone = ", "colour = 1\ntimezone = "), "gateway.colour: unknown key"),
        (('charger = "garage"', 'charger = "shed"'), "vehicles[0].charger: unknown charger 'shed'"),
        (('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"'), "gateway.timezone"),
        (('start = "00:00"', 'start = "25:00"'), "prices.tariff[0].start"),
    ],
)
def test_config_check_reports_one_line(
    tmp_path: Path, mutation: tuple[str, str], expected: str | None
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(GOOD.replace(*mutation, 1))
    r = cli("config", "check", "--config", str(path))
    if expected is None:
        assert r.returncode == 0, r.stderr
        assert "OK" in r.stdout
        return
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(path) in lines[0]
    assert expected in lines[0]
    assert "Traceback" not in r.stderr


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    r = cli("config", "check", "--config", str(tmp_path / "nope.toml"))
    assert r.returncode == 2
    assert "file not found" in r.stderr and "Traceback" not in r.stderr


def test_password_is_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text(GOOD.replace("a-long-random-secret", "tooshort"))
    r = cli("config", "check", "--config", str(path))
    assert r.returncode == 2
    assert "chargers[0].password" in r.stderr
    assert "tooshort" not in r.stderr


def test_example_config_is_valid() -> None:
    cfg = load_config(Path(__file__).parents[3] / "config" / "gateway.example.toml")
    assert cfg.prices.tariff[0].start == "17:00"
    assert cfg.preferences.discharge_above_per_kwh == 0.30


def test_example_documents_every_key() -> None:
    """Every key the config accepts appears in the example, set or commented out."""
    text = (Path(__file__).parents[3] / "config" / "gateway.example.toml").read_text()

    def keys(model: type[BaseModel], path: str) -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            inner = field.annotation
            args = getattr(inner, "__args__", ())
            sub = next(
                (a for a in (inner, *args) if isinstance(a, type) and issubclass(a, BaseModel)),
                None,
            )
            if sub is not None:
                out += keys(sub, f"{path}{name}.")
            else:
                out.append(f"{path}{name}")
        return out

    missing = [
        k
        for k in keys(Config, "")
        if not re.search(rf"^#? ?{re.escape(k.rsplit('.', 1)[-1])} = ", text, re.MULTILINE)
        and f"[{k}]" not in text
        and f"[[{k}]]" not in text
    ]
    assert not missing, f"undocumented config keys: {missing}"


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).parents[3] / "config" / "examples").glob("*.toml")),
    ids=lambda p: p.name,
)
def test_shipped_examples_are_valid(path: Path) -> None:
    assert load_config(path).vehicles


def test_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(GOOD)
    assert load_config(path).gateway.state_dir == tmp_path / "state"
