"""Playing systemd for the unit in systemd/: another uid, a credentials copy, the notify socket.

systemd itself cannot run in this container; what the unit asks of it is small and documented
(systemd.exec(5)): run the process as a dynamic uid with no supplementary groups, copy every
file of a `LoadCredential=ID:DIR` folder to `$CREDENTIALS_DIRECTORY/ID_NAME` readable by that
uid only, give it its own StateDirectory, and listen on `$NOTIFY_SOCKET`. Doing exactly that
here tests the permission logic against files made the documented way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVICE_UID = 61873  # in systemd's DynamicUser range (61184-65519)
UNIT_CREDENTIAL_ID = "v2g-gateway"


def open_dir(prefix: str) -> Path:
    """A temporary folder other users can enter (pytest's tmp_path is root-only)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    d.chmod(0o755)
    return d


@dataclass(frozen=True)
class Interpreter:
    argv: list[str]
    env: dict[str, str]


def _others_can_run(path: Path) -> bool:
    real = path.resolve()
    return all(os.stat(p).st_mode & 0o001 for p in [real, *real.parents])


def interpreter_for_others() -> Interpreter | None:
    """A Python that another uid can execute, with this checkout and its packages importable.

    The venv's own interpreter may live under /root (pyenv); the system one of the same minor
    version runs the same wheels.
    """
    site = next(p for p in sys.path if p.endswith("site-packages") and ".venv" in p)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{REPO}:{site}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    candidates = [
        Path(sys.executable),
        Path(f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"),
    ]
    for exe in candidates:
        if exe.exists() and _others_can_run(exe) and _others_can_run(Path(site)):
            return Interpreter([str(exe)], env)
    return None


def can_switch_uid() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _argv_env(
    interp: Interpreter, args: list[str], extra_env: dict[str, str] | None
) -> tuple[list[str], dict[str, str]]:
    return [*interp.argv, "-m", "v2g_gateway.cli", *args], {**interp.env, **(extra_env or {})}


_AS_SERVICE = {"user": SERVICE_UID, "group": SERVICE_UID, "extra_groups": [], "cwd": "/"}


def run_as_service(
    interp: Interpreter, args: list[str], *, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`v2g-gateway ARGS` as the service's uid, no groups, no capabilities; until it exits."""
    argv, env = _argv_env(interp, args, extra_env)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, **_AS_SERVICE)


def start_as_service(
    interp: Interpreter, args: list[str], *, extra_env: dict[str, str], stderr: Path
) -> subprocess.Popen[bytes]:
    """The same, left running (the daemon); stderr appended to `stderr`, like the journal."""
    argv, env = _argv_env(interp, args, extra_env)
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr.open("ab"), **_AS_SERVICE
    )


def load_credentials(folder: Path, runtime: Path) -> Path:
    """What `LoadCredential=v2g-gateway:FOLDER` does at start: a private copy per file."""
    target = runtime / "credentials" / "v2g-gateway.service"
    target.mkdir(parents=True)
    for f in sorted(folder.iterdir()):
        if f.is_file() and not f.is_symlink():
            dst = target / f"{UNIT_CREDENTIAL_ID}_{f.name}"
            shutil.copyfile(f, dst)
            os.chown(dst, SERVICE_UID, SERVICE_UID)
            dst.chmod(0o400)
    os.chown(target, SERVICE_UID, SERVICE_UID)
    target.chmod(0o500)
    for p in (runtime / "credentials", runtime):
        p.chmod(0o755)
    return target


def state_directory(root: Path) -> Path:
    """StateDirectory=v2g-gateway: owned by the service, 0700 (StateDirectoryMode)."""
    d = root / "var" / "lib" / "v2g-gateway"
    d.mkdir(parents=True)
    os.chown(d, SERVICE_UID, SERVICE_UID)
    d.chmod(0o700)
    for p in (d.parent, d.parent.parent):
        p.chmod(0o755)
    return d
