"""docs/getting-started.md shows the real outputs: config init, config check after the edits it
describes (and its one-line mistake), the charger URL line, the demo's summary rows; and its
install commands are those of docs/operations.md, in the same order."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from service_support import open_dir

from v2g_gateway.config import parse_config
from v2g_gateway.demo_report import print_summary
from v2g_gateway.startup import charger_urls, url_message

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "getting-started.md").read_text()
OPS = (ROOT / "docs" / "operations.md").read_text()


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC, re.S)


def block_after(words: str, kind: str = "") -> str:
    part = DOC[DOC.index(words) :]
    m = re.search(rf"```{kind}\n(.*?)```", part, re.S)
    assert m is not None, words
    return m.group(1)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    return subprocess.run(
        [sys.executable, "-m", "v2g_gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_init_and_check_outputs_are_the_real_ones() -> None:
    tmp_path = open_dir("v2g-start-")  # others may enter, as /etc: no "only root" warning
    try:
        check_outputs(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def check_outputs(tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "v2g-gateway"
    cfg = etc / "gateway.toml"
    r = cli("config", "init", "--output", str(cfg))
    assert r.returncode == 0
    shown = block_after("`config init` answers:")
    assert r.stdout.replace(str(tmp_path), "") == shown

    # The edits of step 4, as the doc gives them.
    text = cfg.read_text()
    prices = block_after("replace the `[prices]` section", "toml")
    start = text.index("[prices]\n")
    end = text.index("[preferences]\n")
    text = text[:start] + prices + "\n" + text[end:]
    v2g = block_after("switch V2G on in `[preferences]`", "toml").strip()
    text = re.sub(r"^v2g_enabled = false.*$", v2g, text, flags=re.M)
    text = text.replace('"/var/lib/v2g-gateway"', f'"{tmp_path / "state"}"')
    cfg.write_text(text)
    token = etc / "credentials" / "entsoe-token"
    token.write_text("an-entsoe-token\n")
    token.chmod(0o600)  # the doc's `install -m 0600`: no "readable by others" warning
    r = cli("config", "check", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    after = DOC[DOC.index("sudo .venv/bin/v2g-gateway config check") :]
    after = after[after.index("```\n") + 4 :]  # past the end of the command's block
    expected = re.search(r"```\n(.*?)```", after, re.S)  # the next block: its output
    assert expected is not None
    assert r.stdout.replace(str(tmp_path), "") == expected.group(1)

    token.unlink()
    r = cli("config", "check", "--config", str(cfg))
    assert r.returncode == 2
    example = re.search(r"without the token\s+file: `(.*?)\.\.\.`", DOC, re.S)
    assert example is not None
    said = " ".join(example.group(1).split())
    assert r.stderr.replace(str(tmp_path), "").startswith("v2g-gateway: " + said)


def test_the_charger_url_line_is_the_one_logged() -> None:
    line = block_after("the URL for the charger:").strip()
    doc = json.loads(line)
    cfg = parse_config(
        {
            "ocpp": {"host": "192.168.1.20", "port": 9000},
            "chargers": [{"id": "garage", "credential": "charger-garage"}],
        }
    )
    u = charger_urls(cfg, 9000)[0]
    assert doc["event"] == url_message(u)
    assert (doc["charger_id"], doc["url"], doc["base_url"], doc["security_profile"]) == (
        u.charger_id,
        u.url,
        u.base_url,
        u.security_profile,
    )


def test_the_demo_summary_rows_are_the_printed_ones(capsys: object) -> None:
    shown = block_after("ends with a summary like this").splitlines()
    labels = [re.split(r"\s{2,}", x.strip())[0] for x in shown[1:]]
    summary = {
        "scenario": "default",
        "charged_kwh": 1.0,
        "discharged_kwh": 1.0,
        "soc_min_percent": 41.0,
        "soc_max_percent": 95.0,
        "reserve_percent": 40.0,
        "reserve_respected": True,
        "arrived_below_reserve": [],
        "discharged_below_floor": [],
        "departures": [
            {"at": "2024-10-07T07:30:00+02:00", "soc_percent": 89.2, "target_percent": 80.0}
        ],
        "cost": 1.0,
        "revenue": 1.0,
        "net_cost": 0.0,
        "plain_charging_cost": 1.0,
        "saving": 1.0,
        "events": [],
    }
    from zoneinfo import ZoneInfo

    print_summary(summary, "EUR", "One car, one evening peak, one night", ZoneInfo("Europe/Berlin"))
    out = capsys.readouterr().out.splitlines()  # type: ignore[attr-defined]
    printed = [
        re.split(r"\s{2,}", x.strip())[0] for x in out[1:] if not x.strip().startswith("events")
    ]
    assert labels == printed
    assert shown[0] == out[0] == "v2g-gateway demo"


def test_install_commands_are_operations_md_in_order() -> None:
    ops = OPS[OPS.index("## Install") :]
    ops_lines = [x.strip() for x in re.search(r"```sh\n(.*?)```", ops, re.S).group(1).splitlines()]  # type: ignore[union-attr]
    used = []
    for b in blocks("sh"):
        for line in b.splitlines():
            line = line.strip()
            if line.startswith(
                (
                    "sudo git clone",
                    "cd /opt",
                    "sudo python3",
                    "sudo .venv",
                    "sudo install -m 0644",
                    "sudo systemctl",
                    "journalctl",
                )
            ):
                used.append(line)
    assert used, "no install command found"
    positions = [ops_lines.index(x) for x in used]  # each one is in operations.md ...
    assert positions == sorted(positions)  # ... in the same order
