"""`config init`: a commented, valid, safe start; the charger password as a credential file."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

from v2g_gateway.config import load_config, parse_config
from v2g_gateway.config_init import SECTIONS, InitValues, render
from v2g_gateway.csms.auth import Credentials
from v2g_gateway.prices.tariff import tariff_prices


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "v2g_gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_init_writes_config_without_secrets_and_the_password_as_a_credential(
    tmp_path: Path,
) -> None:
    out = tmp_path / "etc" / "v2g-gateway" / "gateway.toml"
    r = cli("config", "init", "--output", str(out))
    assert r.returncode == 0, r.stderr
    secret = out.parent / "credentials" / "charger-garage"
    # The config is readable by the service's dynamic user; the secret only by its owner.
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    password = secret.read_text().strip()
    assert 16 <= len(password) <= 40
    assert password not in out.read_text()
    cfg = load_config(out)
    assert cfg.chargers[0].credential == "charger-garage"
    assert cfg.chargers[0].password_file == secret  # bound to the credentials folder
    assert Credentials(cfg).verify("garage", password)
    assert f"wrote {secret}" in r.stdout and "config check" in r.stdout
    web = secret.parent / "web-password"
    assert stat.S_IMODE(web.stat().st_mode) == 0o600 and web.read_text().strip() != password
    assert cfg.web is not None and cfg.web.credential == "web-password"
    assert cfg.web.password_file == web
    again = cli("config", "init", "--output", str(out))
    assert again.returncode == 2 and "exists" in again.stderr
    forced = cli("config", "init", "--output", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert secret.read_text().strip() == password  # the charger keeps working
    assert "kept" in forced.stdout


def test_init_to_stdout_is_valid_with_the_password_inline() -> None:
    r = cli("config", "init")
    assert r.returncode == 0, r.stderr
    cfg = parse_config(tomllib.loads(r.stdout))
    assert cfg.chargers[0].password is not None and len(cfg.chargers[0].password) >= 16
    assert cfg.web is not None and cfg.web.password is not None
    assert cli("config", "init").stdout != r.stdout  # a fresh password each time


def test_init_is_commented_in_a_sensible_order() -> None:
    text = render(InitValues(credential="charger-garage", web_credential="web-password"))
    headers = re.findall(r"^\[+([a-z_.]+)\]+", text, re.MULTILINE)
    order = [
        "gateway",
        "ocpp",
        "chargers",
        "vehicles",
        "prices",
        "preferences",
        "outage",
        "mqtt",
        "web",
    ]
    assert [h for h in dict.fromkeys(headers) if h in order] == order
    # Every key set is explained: on its line or in the comment lines just above it.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line) and "#" not in line:
            above = lines[i - 1] if i else ""
            assert above.startswith("#") or above.startswith("["), f"unexplained: {line!r}"


def test_a_section_is_one_more_block() -> None:
    """Another section (say [web]) is added by appending a block: the file stays valid."""

    def extra(v: InitValues) -> str:
        return "[gateway_extra_for_test]\n"

    values = InitValues(password="x" * 20, web_password="y" * 20)
    assert render(values, [*SECTIONS, extra]) == render(values) + "\n[gateway_extra_for_test]\n"


def test_the_sample_cannot_pay_for_a_discharge_and_v2g_starts_off() -> None:
    """Invented prices must never discharge a car: V2G is off, and even switched on (say from
    Home Assistant), a flat tariff has no spread, so no discharge can pay on it."""
    cfg = parse_config(tomllib.loads(render(InitValues(password="x" * 20, web_password="y" * 20))))
    assert cfg.preferences.v2g_enabled is False
    assert cfg.preferences.discharge_above_per_kwh is None
    from datetime import UTC, datetime

    slots = tariff_prices(
        cfg.prices.tariff,
        cfg.gateway.tz,
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    highest_export = max(s.export_per_kwh for s in slots)
    cheapest_refill = min(s.import_per_kwh for s in slots) / (0.95 * 0.95)
    assert highest_export < cheapest_refill  # selling never beats buying back
    assert len({s.import_per_kwh for s in slots}) == 1  # and no peak to shave for the house


def test_init_output_passes_check_with_notes_only(tmp_path: Path) -> None:
    out = tmp_path / "gateway.toml"
    assert cli("config", "init", "--output", str(out)).returncode == 0
    text = out.read_text().replace('"/var/lib/v2g-gateway"', '"state"')
    out.write_text(text)
    r = cli("config", "check", "--config", str(out))
    assert r.returncode == 0, r.stderr
    assert "V2G is off" in r.stdout
    assert "SAMPLE" in r.stdout
    assert r.stdout.strip().splitlines()[-1].endswith("prices from tariff)")
