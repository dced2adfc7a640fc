"""Backups of the state file: one before each schema migration and one a day, a few kept."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import parse_config
from v2g_gateway.errors import StoreError
from v2g_gateway.store import Store
from v2g_gateway.store.backup import KEEP_DAILY, list_backups, made_at, restore
from v2g_gateway.store.schema import MIGRATIONS

T0 = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
CFG = parse_config({"vehicles": [{"id": "car", "battery_kwh": 60}]})


def reasons(path: Path) -> list[str]:
    return [p.stem.rsplit("-", 1)[-1] for p in list_backups(path)]


def test_a_migration_is_preceded_by_a_backup_of_the_old_schema(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(MIGRATIONS[0])
    old.execute("INSERT INTO kv VALUES ('mine', 'kept')")
    old.execute("PRAGMA user_version = 1")
    old.close()

    Store.open(path, CFG, ManualClock(T0)).close()
    assert sorted(reasons(path)) == ["daily", "schema1"]
    (copy,) = [p for p in list_backups(path) if p.stem.endswith("schema1")]
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
        assert db.execute("SELECT value FROM kv WHERE key='mine'").fetchone()[0] == "kept"
    db.close()


async def test_one_backup_a_day_and_only_a_few_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    clock = ManualClock(T0)
    store = Store.open(path, CFG, clock)
    try:
        assert reasons(path) == ["daily"]  # the first start
        assert store.daily_backup() is None  # not twice the same day
        for _ in range(KEEP_DAILY + 3):
            await clock.advance(86400)
            assert store.daily_backup() is not None
        backups = list_backups(path)
        assert len(backups) == KEEP_DAILY
        assert made_at(backups[0]) == clock.now() and made_at(backups[-1]) == clock.now() - (
            timedelta(days=KEEP_DAILY - 1)
        )
    finally:
        store.close()


def test_restore_takes_the_newest_good_backup_and_keeps_the_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    Store.open(path, CFG, ManualClock(T0)).close()
    (good,) = list_backups(path)
    bad = good.with_name("state-20990101T000000Z-daily.sqlite")  # newest, but empty
    bad.write_bytes(b"")
    path.write_bytes(b"junk")
    with pytest.raises(StoreError, match="damaged"):
        Store.open(path, CFG, ManualClock(T0))
    used, aside = restore(path, None, T0)
    assert used == good and aside is not None and aside.read_bytes() == b"junk"
    Store.open(path, CFG, ManualClock(T0)).close()


def test_a_file_of_tables_without_a_schema_version_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE someone_elses (x)")
    other.commit()
    other.close()
    with pytest.raises(StoreError, match="not a v2g-gateway state file"):
        Store.open(path, CFG)


def test_a_missing_file_beside_backups_is_said_not_silent(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    Store.open(path, CFG, ManualClock(T0)).close()
    path.unlink()
    with capture_logs() as logs:
        Store.open(path, CFG, ManualClock(T0)).close()
    (warned,) = [e for e in logs if e["event"] == "store.new_state_file"]
    assert warned["log_level"] == "warning" and "state restore" in warned["detail"]
