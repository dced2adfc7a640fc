"""Years on an SD card: the gateway drops history older than `history_days` when it starts."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from e2e_helpers import running, skeleton_config

from v2g_gateway.app import STATE_FILE, Gateway
from v2g_gateway.clock import ManualClock
from v2g_gateway.model import ConnectorStatus, ConnectorStatusChanged, MeterSample
from v2g_gateway.store import Store

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


async def test_history_older_than_history_days_is_dropped_at_start(tmp_path: Path) -> None:
    cfg = skeleton_config(
        tmp_path,
        0,
        gateway={"state_dir": str(tmp_path), "timezone": "Europe/Berlin", "history_days": 30},
        mqtt={"enabled": False},
    )
    clock = ManualClock(NOW - timedelta(days=45))
    store = Store.open(tmp_path / STATE_FILE, cfg, clock)
    for days in (45, 29, 1):
        await clock.set(NOW - timedelta(days=days))
        store.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.OCCUPIED, clock.now()))
        store.apply(MeterSample("garage", 1, clock.now(), soc_percent=50.0 + days))
        store.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.AVAILABLE, clock.now()))
    store.close()

    async with running(Gateway(cfg, ManualClock(NOW))) as gw:
        assert gw.store.snapshot(NOW).vehicles["car"].soc_percent == 51.0  # state is not history
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        ages = sorted(
            (NOW - datetime.fromisoformat(r[0])).days
            for r in db.execute("SELECT at FROM soc_samples")
        )
    assert ages == [1, 29]
