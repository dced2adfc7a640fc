"""The state file's integrity and its backups: checked at every start, copied at every schema
migration and daily, restored by the user with `v2g-gateway state restore`.

A state file that is empty or damaged is never opened as if new: that would silently drop the
user's overrides, sessions and history. The gateway refuses to start with one line naming the
file and the way back (docs/reliability.md, "Damaged state").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from v2g_gateway.errors import StoreError
from v2g_gateway.store.schema import MIGRATIONS

BACKUP_DIR = "backups"
KEEP_DAILY = 7
KEEP_MIGRATION = 3
_SIDE_FILES = ("-wal", "-shm")
_STAMP = "%Y%m%dT%H%M%SZ"


def backup_dir(path: Path) -> Path:
    return path.parent / BACKUP_DIR


def _recovery(path: Path) -> str:
    backups = list_backups(path)
    if backups:
        return (
            f"restore the latest backup with `v2g-gateway state restore --config <file>` "
            f"({backups[0].name} in {backup_dir(path)}), or move the file away to start afresh"
        )
    return "no backup found; move the file away to start afresh (overrides and history are lost)"


@dataclass(frozen=True, slots=True)
class Checked:
    path: Path
    schema: int
    detail: str  # "ok", or what quick_check found


def check_file(path: Path, *, full: bool = False) -> Checked:
    """Integrity and schema of an existing state file; StoreError (one line: the file, what is
    wrong, how to recover) when it cannot be used. A missing file is not checked here."""
    size = path.stat().st_size
    if size == 0:
        raise StoreError(f"{path}: the state file is empty (0 bytes): {_recovery(path)}")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            pragma = "integrity_check" if full else "quick_check"
            rows = [str(r[0]) for r in db.execute(f"PRAGMA {pragma}").fetchmany(5)]
            schema = int(db.execute("PRAGMA user_version").fetchone()[0])
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: the state file is damaged ({exc}): {_recovery(path)}") from None
    if rows != ["ok"]:
        what = "; ".join(rows)[:200]
        raise StoreError(f"{path}: the state file is damaged ({what}): {_recovery(path)}")
    if schema == 0 and tables:
        raise StoreError(
            f"{path}: not a v2g-gateway state file (tables but no schema version): "
            f"{_recovery(path)}"
        )
    if schema > len(MIGRATIONS):
        raise StoreError(
            f"{path}: state database has schema {schema}, newer than this gateway knows "
            f"({len(MIGRATIONS)}); upgrade v2g-gateway"
        )
    return Checked(path, schema, "ok")


def list_backups(path: Path) -> list[Path]:
    """Backups of `path`, newest first."""
    where = backup_dir(path)
    if not where.is_dir():
        return []
    found = [p for p in where.glob(f"{path.stem}-*.sqlite") if p.is_file()]
    return sorted(
        found, key=lambda p: (made_at(p) or datetime.min.replace(tzinfo=UTC), p.name), reverse=True
    )


def made_at(p: Path) -> datetime | None:
    """When a backup was made, from its name (the gateway's clock, UTC)."""
    parts = p.stem.rsplit("-", 2)
    try:
        return datetime.strptime(parts[1], _STAMP).replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return None


def backup(db: sqlite3.Connection, path: Path, at: datetime, reason: str) -> Path:
    """A consistent copy of the open database (SQLite's online backup API: safe while the
    gateway writes), then the oldest ones of the same reason beyond the few kept removed."""
    where = backup_dir(path)
    where.mkdir(parents=True, exist_ok=True)
    target = where / f"{path.stem}-{at.astimezone(UTC).strftime(_STAMP)}-{reason}.sqlite"
    part = target.with_suffix(".part")
    try:
        with contextlib.closing(sqlite3.connect(part)) as dest:
            db.backup(dest)
        os.replace(part, target)
        _owned_like_folder(where)
        _owned_like_folder(target)
    except (sqlite3.Error, OSError) as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        raise StoreError(f"{target}: backup failed: {exc}") from exc
    keep = KEEP_MIGRATION if reason.startswith("schema") else KEEP_DAILY
    same = [p for p in list_backups(path) if _reason(p).startswith(reason.rstrip("0123456789"))]
    for old in same[keep:]:
        with contextlib.suppress(OSError):
            old.unlink()
    return target


def _owned_like_folder(p: Path) -> None:
    """Run as root (sudo, beside a service with its own uid): what we write belongs to the
    state folder's owner, so the service can still write and rotate it."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        st = p.parent.stat() if p.parent.name != BACKUP_DIR else p.parent.parent.stat()
        with contextlib.suppress(OSError):
            os.chown(p, st.st_uid, st.st_gid)


def _reason(p: Path) -> str:
    return p.stem.rsplit("-", 1)[-1]


def backup_file(path: Path, at: datetime, reason: str = "manual") -> Path:
    """`v2g-gateway state backup`: a copy of the file on disk (checked first)."""
    check_file(path)
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return backup(db, path, at, reason)


def restore(path: Path, source: Path | None, at: datetime) -> tuple[Path, Path | None]:
    """Put a backup (the newest that checks out, or `source`) in place of the state file; the
    file it replaces is moved aside, never deleted. Returns (backup used, where the old went)."""
    candidates = [source] if source is not None else list_backups(path)
    if not candidates:
        raise StoreError(f"{backup_dir(path)}: no backup of {path.name} to restore")
    problems: list[str] = []
    for candidate in candidates:
        try:
            check_file(candidate, full=True)
        except (StoreError, OSError) as exc:
            problems.append(str(exc))
            continue
        aside = None
        if path.exists():
            aside = path.with_name(f"{path.name}.replaced-{at.astimezone(UTC).strftime(_STAMP)}")
            os.replace(path, aside)
        for side in _SIDE_FILES:
            old = path.with_name(path.name + side)
            if old.exists():
                os.replace(old, (aside or path).with_name((aside or path).name + side))
        tmp = path.with_name(path.name + ".restoring")
        shutil.copyfile(candidate, tmp)
        _owned_like_folder(tmp)
        os.replace(tmp, path)
        return candidate, aside
    raise StoreError(f"no usable backup: {problems[0]}")
