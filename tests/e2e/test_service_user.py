"""The daemon as the unit's dynamic user: what it cannot read or write is one line, exit 2.

These are the traps of a systemd install done the old way (a root-only 0600 config, a secret
file only root can read, a state folder it cannot write, a credential the folder lacks), run
for real as another uid against files made the documented way (`config init --output`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_support import (
    REPO,
    Interpreter,
    can_switch_uid,
    interpreter_for_others,
    load_credentials,
    open_dir,
    run_as_service,
    state_directory,
)

pytestmark = pytest.mark.skipif(not can_switch_uid(), reason="needs root to switch uid")


@pytest.fixture
def interp() -> Interpreter:
    found = interpreter_for_others()
    if found is None:
        pytest.skip("no Python interpreter another uid may run")
    return found


@pytest.fixture
def root() -> Iterator[Path]:
    d = open_dir("v2g-svc-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def init(root: Path) -> Path:
    cfg = root / "etc" / "v2g-gateway" / "gateway.toml"
    r = subprocess.run(
        [sys.executable, "-m", "v2g_gateway.cli", "config", "init", "--output", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    state = state_directory(root)
    text = cfg.read_text().replace('"/var/lib/v2g-gateway"', f'"{state}"')
    cfg.write_text(
        text.replace('host = "0.0.0.0"', 'host = "127.0.0.1"').replace("port = 9000 ", "port = 0 ")
    )
    return cfg


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_a_root_only_config_is_refused_in_one_line(interp: Interpreter, root: Path) -> None:
    cfg = init(root)
    cfg.chmod(0o600)  # what config init used to write
    line = one_line(run_as_service(interp, ["run", "--config", str(cfg)]))
    assert line == f"v2g-gateway: {cfg}: cannot read: Permission denied"


def test_without_systemd_the_root_only_credentials_are_named(
    interp: Interpreter, root: Path
) -> None:
    cfg = init(root)
    r = run_as_service(interp, ["run", "--config", str(cfg)])
    line = one_line(r)
    assert "chargers[0].credential" in line and "'charger-garage'" in line
    assert "Permission denied" in line
    assert "LoadCredential=v2g-gateway:/etc/v2g-gateway/credentials" in line


def test_a_credential_missing_from_the_folder_is_named(interp: Interpreter, root: Path) -> None:
    cfg = init(root)
    text = cfg.read_text().replace('# credential = "mqtt-password"', 'credential = "mqtt-password"')
    cfg.write_text(text)
    creds = load_credentials(cfg.parent / "credentials", root / "run")
    r = run_as_service(
        interp, ["run", "--config", str(cfg)], extra_env={"CREDENTIALS_DIRECTORY": str(creds)}
    )
    line = one_line(r)
    assert "mqtt.credential" in line
    assert str(creds / "v2g-gateway_mqtt-password") in line and "does not exist" in line


def test_a_secret_file_only_root_can_read_is_named(interp: Interpreter, root: Path) -> None:
    cfg = init(root)
    secret = cfg.parent / "garage.secret"
    secret.write_text("a-long-random-secret-42\n")
    secret.chmod(0o600)
    cfg.write_text(
        cfg.read_text().replace('credential = "charger-garage"', 'password_file = "garage.secret"')
    )
    line = one_line(run_as_service(interp, ["run", "--config", str(cfg)]))
    assert f"chargers[0].password_file: cannot read {secret}: Permission denied" in line
    # config check, run by root as the docs say, warns about exactly this before it happens.
    r = subprocess.run(
        [sys.executable, "-m", "v2g_gateway.cli", "config", "check", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "chargers[0].password_file: warning: the systemd unit cannot read it" in r.stdout


def test_a_state_dir_it_cannot_write_is_named(interp: Interpreter, root: Path) -> None:
    cfg = init(root)
    state = root / "var" / "lib" / "v2g-gateway"
    os.chown(state, 0, 0)
    state.chmod(0o755)
    creds = load_credentials(cfg.parent / "credentials", root / "run")
    r = run_as_service(
        interp, ["run", "--config", str(cfg)], extra_env={"CREDENTIALS_DIRECTORY": str(creds)}
    )
    line = one_line(r)
    assert f"gateway.state_dir: cannot write in {state}: Permission denied" in line


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    unit = (REPO / "systemd" / "v2g-gateway.service").read_text()
    # verify checks that ExecStart's program exists: point it at this checkout's venv.
    venv_exe = Path(sys.prefix) / "bin" / "v2g-gateway"
    copy = tmp_path / "v2g-gateway.service"
    copy.write_text(unit.replace("/opt/v2g-gateway/.venv/bin/v2g-gateway", str(venv_exe)))
    r = subprocess.run([exe, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr
    assert "LoadCredential=v2g-gateway:/etc/v2g-gateway/credentials\n" in unit
    assert "mqtt-password" not in unit  # no optional secret the unit would insist on
