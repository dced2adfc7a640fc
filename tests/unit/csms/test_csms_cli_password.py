from __future__ import annotations

import subprocess
import sys

import pytest

from v2g_gateway.cli_ocpp import ALPHABET, generate_password


@pytest.mark.parametrize("length", [16, 32, 40])
def test_generated_password_fits_ocpp(length: int) -> None:
    pw = generate_password(length)
    assert len(pw) == length
    assert set(pw) <= set(ALPHABET)


def test_passwords_differ() -> None:
    assert len({generate_password() for _ in range(50)}) == 50


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "v2g_gateway.cli", "password", "generate", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_prints_one_password() -> None:
    out = run("--length", "20")
    assert out.returncode == 0
    assert len(out.stdout.strip()) == 20


@pytest.mark.parametrize("length", ["15", "41"])
def test_cli_refuses_bad_length(length: str) -> None:
    out = run("--length", length)
    assert out.returncode == 2
    assert "--length" in out.stderr and "16-40" in out.stderr
    assert "Traceback" not in out.stderr
