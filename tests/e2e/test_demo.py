"""`v2g-gateway demo` as a user runs it (faster clock): it finishes, respects the reserve, meets
the departure target, discharges in the evening peak and charges at night, and draws the day."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path


def test_demo_day(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = subprocess.run(
        [sys.executable, "-m", "v2g_gateway.cli", "demo", "--speed", "4800", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reserve_respected"] and summary["departure_target_met"]
    assert summary["departures"] and summary["departures"][0]["soc_percent"] >= 80 - 0.5
    assert summary["discharged_kwh"] > 1 and summary["charged_kwh"] > 10
    starts = [
        datetime.fromisoformat(e["at"]).astimezone(datetime.fromisoformat(summary["start"]).tzinfo)
        for e in summary["events"]
        if e["kind"] == "dispatch_started"
    ]
    assert any(17 <= t.hour < 22 for t in starts), starts  # the evening peak
    assert (out / "demo.png").stat().st_size > 10_000
    assert "saved by the gateway" in r.stdout
