"""scripts/bootstrap notices a .venv made by a Python the package does not support (an old
Debian's 3.9, or an interpreter removed by an upgrade), says so and rebuilds it; an unsupported
interpreter to build with is one clear line, exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def fake_python(path: Path, version: str, real: str | None = None) -> None:
    """An interpreter that claims `version`; with `real`, runs -c snippets by the real one and
    makes a venv whose python is another fake of the real version (pip does nothing)."""
    major, minor = (int(x) for x in version.split(".")[:2])
    venv = ""
    if real is not None:
        venv = """
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  cp "$0" "$3/bin/python"
  echo made-by-fake > "$3/marker"
  exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then exit 0; fi
"""
    path.write_text(
        f"""#!/bin/sh
{venv}
if [ "$1" = "-c" ]; then
  case "$2" in
    *version_info*) [ {major * 100 + minor} -ge 311 ] && exit 0 || exit 1 ;;
    *python_version*) echo {version}; exit 0 ;;
  esac
fi
exit 0
"""
    )
    path.chmod(0o755)


def checkout(tmp: Path) -> Path:
    repo = tmp / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap", repo / "scripts" / "bootstrap")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    return repo


def run(repo: Path, python: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(repo / "scripts" / "bootstrap")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHON": str(python)},
    )


def test_a_venv_of_an_unsupported_python_is_rebuilt(tmp_path: Path) -> None:
    repo = checkout(tmp_path)
    tools = tmp_path / "tools"
    tools.mkdir()
    fake_python(tools / "python3", "3.11.9", real=sys.executable)
    (repo / ".venv" / "bin").mkdir(parents=True)
    fake_python(repo / ".venv" / "bin" / "python", "3.9.2")
    r = run(repo, tools / "python3")
    assert r.returncode == 0, r.stderr
    assert (
        "bootstrap: .venv was made by Python 3.9.2; v2g-gateway needs 3.11 or newer: rebuilding "
        f"it with {tools / 'python3'} (Python 3.11.9)"
    ) in r.stderr.replace("\n", " ")
    assert (repo / ".venv" / "marker").read_text().strip() == "made-by-fake"
    again = run(repo, tools / "python3")  # a good .venv is left alone
    assert again.returncode == 0 and "rebuilding" not in again.stderr


def test_a_venv_whose_python_is_gone_is_rebuilt(tmp_path: Path) -> None:
    repo = checkout(tmp_path)
    tools = tmp_path / "tools"
    tools.mkdir()
    fake_python(tools / "python3", "3.12.1", real=sys.executable)
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").symlink_to(tmp_path / "removed-by-an-upgrade")
    r = run(repo, tools / "python3")
    assert r.returncode == 0, r.stderr
    assert "made by Python an interpreter that no longer runs" in r.stderr
    assert (repo / ".venv" / "marker").exists()


def test_an_unsupported_python_to_build_with_is_one_line(tmp_path: Path) -> None:
    repo = checkout(tmp_path)
    tools = tmp_path / "tools"
    tools.mkdir()
    fake_python(tools / "python3", "3.9.2")
    r = run(repo, tools / "python3")
    assert r.returncode == 2
    assert r.stderr.strip().startswith(
        f"bootstrap: {tools / 'python3'} is Python 3.9.2; v2g-gateway needs Python 3.11 or newer"
    )
    assert not (repo / ".venv").exists()
