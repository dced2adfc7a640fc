"""Every profile sent passed the gate: the type checker proves it, and this test shows how.

The OCPP command layer takes only a GatedProfile, and only `gate()` makes one. A bypass (a
ChargingProfileSpec handed straight to the command layer) is a mypy error, shown here by
running mypy on such a snippet; making a GatedProfile without the gate fails at run time, and
no module but the gate holds its seal.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mypy import api

from v2g_gateway.dispatch.gate import GatedProfile
from v2g_gateway.model import ChargingProfileSpec, ProfilePeriod, ProfilePurpose

ROOT = Path(__file__).resolve().parents[3]

BYPASS = """
from datetime import UTC, datetime, timedelta
from v2g_gateway.csms.commands import Commands
from v2g_gateway.model import ChargingProfileSpec, ProfilePeriod, ProfilePurpose

async def discharge_without_the_gate(commands: Commands) -> None:
    now = datetime.now(UTC)
    spec = ChargingProfileSpec(
        "garage", 1, 2001, ProfilePurpose.TX_PROFILE, now, now + timedelta(hours=8),
        (ProfilePeriod(0, -11000),), "tx-1",
    )
    await commands.set_charging_profile(spec)
"""


def test_mypy_rejects_a_profile_that_did_not_pass_the_gate(tmp_path: Path) -> None:
    snippet = tmp_path / "bypass.py"
    snippet.write_text(BYPASS)
    cfg = tmp_path / "mypy.ini"
    cfg.write_text(
        "[mypy]\nstrict = True\n[mypy-ocpp.*,highspy.*]\nignore_missing_imports = True\n"
    )
    out, _err, status = api.run(
        [
            "--config-file",
            str(cfg),
            "--no-error-summary",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(snippet),
        ]
    )
    assert status == 1, out
    assert 'incompatible type "ChargingProfileSpec"; expected "GatedProfile"' in out, out


def test_a_gated_profile_cannot_be_made_without_the_gate() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    spec = ChargingProfileSpec(
        "garage", 1, 2001, ProfilePurpose.TX_PROFILE, now, now, (ProfilePeriod(0, -11000),)
    )
    with pytest.raises(TypeError, match="made only by"):
        GatedProfile(object(), spec, None, None, ())  # type: ignore[arg-type]


def test_no_module_but_the_gate_touches_its_seal() -> None:
    offenders = []
    for path in (ROOT / "v2g_gateway").rglob("*.py"):
        if path.name == "gate.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
            if name in ("_SEAL", "_Seal"):
                offenders.append(str(path.relative_to(ROOT)))
            if isinstance(node, ast.ImportFrom) and any(
                a.name in ("_SEAL", "_Seal") for a in node.names
            ):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
