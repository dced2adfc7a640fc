"""`config check` lists every mistake `run` would stop on, one line each, exit 2; and `run`
stops on exactly those (the same checks run at start)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from v2g_gateway.config import load_config
from v2g_gateway.config_check import CHECKS, CheckContext, Finding, check, errors, run_checks

BASE = """
[gateway]
id = "chk"
state_dir = "state"
[ocpp]
host = "127.0.0.1"
port = 0
[[chargers]]
id = "garage"
password_file = "garage.secret"
[[vehicles]]
id = "car"
battery_kwh = 60
[prices]
source = "tariff"
[[prices.tariff]]
start = "00:00"
end = "00:00"
import_per_kwh = 0.30
[mqtt]
enabled = false
"""


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "v2g_gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def write(tmp: Path, text: str, secret: bool = True) -> Path:
    path = tmp / "gateway.toml"
    path.write_text(text)
    if secret:
        (tmp / "garage.secret").write_text("a-long-random-secret-1\n")
    return path


def test_a_good_config_is_ok(tmp_path: Path) -> None:
    r = cli("config", "check", "--config", str(write(tmp_path, BASE)))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert "OK" in r.stdout


def test_every_mistake_is_listed_one_line_each(tmp_path: Path) -> None:
    text = (
        BASE.replace('password_file = "garage.secret"', 'password_file = "missing.secret"')
        .replace('source = "tariff"', 'source = "entsoe"\narea = "DE-LU"')
        .replace("[mqtt]\nenabled = false", '[mqtt]\ncredential = "mqtt-password"')
    )
    r = cli("config", "check", "--config", str(write(tmp_path, text)))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 3, r.stderr
    assert any(
        "chargers[0].password_file" in x and "missing.secret does not exist" in x for x in lines
    )
    assert any("prices" in x and "needs its security token" in x for x in lines)
    assert any("mqtt.credential" in x and "'mqtt-password'" in x for x in lines)
    assert all(str(tmp_path / "gateway.toml") in x for x in lines)
    assert "Traceback" not in r.stderr


def test_schema_mistakes_are_all_listed(tmp_path: Path) -> None:
    text = BASE.replace("battery_kwh = 60", 'battery_kwh = "big"\ncolour = 1').replace(
        "port = 0", "port = 70000"
    )
    r = cli("config", "check", "--config", str(write(tmp_path, text)))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 3, r.stderr
    assert any("vehicles[0].battery_kwh" in x for x in lines)
    assert any("vehicles[0].colour: unknown key" in x for x in lines)
    assert any("ocpp.port" in x for x in lines)


def test_tariff_gaps_are_named(tmp_path: Path) -> None:
    text = BASE.replace(
        'start = "00:00"\nend = "00:00"\nimport_per_kwh = 0.30',
        'start = "07:00"\nend = "22:00"\nimport_per_kwh = 0.30\n'
        '[[prices.tariff]]\nstart = "22:00"\nend = "06:00"\nimport_per_kwh = 0.20\n'
        'days = ["mon", "tue", "wed", "thu", "fri"]',
    )
    r = cli("config", "check", "--config", str(write(tmp_path, text)))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    # 06:00-07:00 is open every day; the weekday nights do not cover Saturday and Sunday
    # evenings, nor the mornings after them (Sunday's and Monday's, merged with 06:00-07:00).
    gaps = sorted(x.split("no period covers ")[1] for x in lines)
    assert gaps == [
        "00:00-07:00 local time, mon, sun",
        "06:00-07:00 local time, tue, wed, thu, fri, sat",
        "22:00-24:00 local time, sat, sun",
    ]


def test_tls_files_must_exist_and_load(tmp_path: Path) -> None:
    text = BASE.replace(
        "port = 0",
        'port = 0\nsecurity_profile = 2\ntls_cert_file = "server.pem"\ntls_key_file = "server.key"',
    )
    path = write(tmp_path, text)
    r = cli("config", "check", "--config", str(path))
    assert r.returncode == 2
    assert "ocpp.tls_cert_file" in r.stderr and "server.pem does not exist" in r.stderr
    (tmp_path / "server.pem").write_text("not a certificate\n")
    (tmp_path / "server.key").write_text("not a key\n")
    r = cli("config", "check", "--config", str(path))
    assert r.returncode == 2
    assert "certificate and key do not load together" in r.stderr


def test_credentials_come_from_the_folder_by_hand_and_from_systemd_under_it(
    tmp_path: Path,
) -> None:
    text = BASE.replace('password_file = "garage.secret"', 'credential = "charger-garage"')
    path = write(tmp_path, text, secret=False)
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    r = cli("config", "check", "--config", str(path), env=env)
    assert r.returncode == 2
    assert "chargers[0].credential" in r.stderr
    assert str(tmp_path / "credentials" / "charger-garage") in r.stderr
    assert "LoadCredential=v2g-gateway:/etc/v2g-gateway/credentials" in r.stderr
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "charger-garage").write_text("a-long-random-secret-1\n")
    r = cli("config", "check", "--config", str(path), env=env)
    assert r.returncode == 0, r.stderr
    assert "read from" in r.stdout and "credentials/" in r.stdout
    # Under systemd: the copy in $CREDENTIALS_DIRECTORY, prefixed with the unit's ID.
    systemd = tmp_path / "run-credentials"
    systemd.mkdir()
    r = cli(
        "config", "check", "--config", str(path), env={**env, "CREDENTIALS_DIRECTORY": str(systemd)}
    )
    assert r.returncode == 2 and "v2g-gateway_charger-garage does not exist" in r.stderr
    (systemd / "v2g-gateway_charger-garage").write_text("a-long-random-secret-1\n")
    r = cli(
        "config", "check", "--config", str(path), env={**env, "CREDENTIALS_DIRECTORY": str(systemd)}
    )
    assert r.returncode == 0, r.stderr
    assert "$CREDENTIALS_DIRECTORY" in r.stdout


def test_a_charger_without_a_password_is_refused_by_both(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace('password_file = "garage.secret"\n', ""))
    r = cli("config", "check", "--config", str(path))
    assert r.returncode == 2
    assert "chargers[0].password: security profile 1 needs a password" in r.stderr


def test_run_refuses_what_check_calls_an_error(tmp_path: Path) -> None:
    text = BASE.replace('password_file = "garage.secret"', 'password_file = "missing.secret"')
    path = write(tmp_path, text)
    check_line = cli("config", "check", "--config", str(path)).stderr.strip()
    r = cli("run", "--config", str(path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == check_line
    assert not (tmp_path / "state").exists()  # refused before anything was made


def test_checks_are_independent_and_a_new_one_is_easy() -> None:
    """Another module adds a check with @check; a failing check does not hide the others."""
    calls: list[str] = []

    def first(ctx: CheckContext) -> list[Finding]:
        calls.append("first")
        return [Finding("warning", "mqtt.host", "first says so")]

    def broken(ctx: CheckContext) -> list[Finding]:
        from v2g_gateway.errors import ConfigError

        raise ConfigError("x", "prices.area", "tripped")

    def last(ctx: CheckContext) -> list[Finding]:
        calls.append("last")
        return []

    cfg = load_config(Path(__file__).parents[3] / "config" / "gateway.example.toml")
    found = run_checks(CheckContext(cfg, Path("gateway.toml")), [first, broken, last])
    assert calls == ["first", "last"]
    assert [(f.level, f.key) for f in found] == [("warning", "mqtt.host"), ("error", "prices.area")]
    assert errors(found) == [found[1]]
    n = len(CHECKS)
    try:
        check(last)
        assert CHECKS[-1] is last
    finally:
        del CHECKS[n:]


@pytest.mark.skipif(os.geteuid() != 0, reason="the service-user view is checked when run as root")
def test_as_root_a_file_the_service_cannot_read_is_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    r = cli("config", "check", "--config", str(path))
    assert "a folder above it is closed to other users" in r.stdout  # pytest's tmp is 0700
    open_dir = Path(tempfile.mkdtemp(prefix="v2g-check-"))
    open_dir.chmod(0o755)
    tmp_path = open_dir
    path = write(tmp_path, BASE)
    path.chmod(0o600)
    (tmp_path / "garage.secret").chmod(0o600)
    r = cli("config", "check", "--config", str(path))
    assert r.returncode == 0
    assert "only root can read this file" in r.stdout
    assert "password_file" in r.stdout and "move it to credentials/" in r.stdout
    path.chmod(0o644)
    (tmp_path / "garage.secret").chmod(0o644)
    r = cli("config", "check", "--config", str(path))
    assert "only root can read" not in r.stdout
    assert "readable only by root" not in r.stdout
    shutil.rmtree(open_dir)


def test_secret_files_others_can_read_are_warned_by_check_and_at_start(tmp_path: Path) -> None:
    """issue 19: a world-readable password file passed without a word."""
    path = write(tmp_path, BASE)
    secret = tmp_path / "garage.secret"
    secret.chmod(0o644)
    r = cli("config", "check", "--config", str(path))
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if "holds a secret" in x)
    assert "chargers[0].password_file: warning:" in line
    assert "readable by its group and others (mode 0644)" in line
    assert "chmod 600" in line
    found = run_checks(CheckContext(load_config(path), path, purpose="start"))
    assert [f.key for f in found if f.level == "warning"] == ["chargers[0].password_file"]
    secret.chmod(0o600)
    r = cli("config", "check", "--config", str(path))
    assert "readable by" not in r.stdout
    # Inline secrets: the config file itself is the secret file.
    inline = BASE.replace('password_file = "garage.secret"', 'password = "a-long-random-secret-1"')
    path = write(tmp_path, inline, secret=False)
    path.chmod(0o640)
    r = cli("config", "check", "--config", str(path))
    assert "holds secrets inline (chargers[0].password) and is readable by its group" in r.stdout


def test_secrets_in_the_systemd_credentials_directory_are_not_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "v2g-gateway_garage").write_text("a-long-random-secret-1\n")
    (creds / "v2g-gateway_garage").chmod(0o644)
    text = BASE.replace('password_file = "garage.secret"', 'credential = "garage"')
    path = write(tmp_path, text, secret=False)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = load_config(path)
    assert cfg.chargers[0].password_file == creds / "v2g-gateway_garage"
    found = run_checks(CheckContext(cfg, path))
    assert not [f for f in found if "readable by" in f.message]


def test_an_outage_floor_below_the_cars_minimum_is_refused(tmp_path: Path) -> None:
    text = BASE.replace("battery_kwh = 60", "battery_kwh = 60\nmin_soc_percent = 15") + (
        "[outage]\nfloor_soc_percent = 0\n"
    )
    path = write(tmp_path, text)
    r = cli("config", "check", "--config", str(path))
    assert r.returncode == 2
    assert "outage.floor_soc_percent: 0 % is below the minimum of vehicle 'car'" in r.stderr
    assert "vehicles[0].min_soc_percent = 15 %" in r.stderr
    r = cli("run", "--config", str(path))
    assert r.returncode == 2 and "outage.floor_soc_percent: 0 % is below" in r.stderr
