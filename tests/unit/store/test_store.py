"""The store on a real SQLite file: what it holds survives a restart; re-sent events apply once."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from v2g_gateway.capability import DischargeCapability
from v2g_gateway.clock import ManualClock
from v2g_gateway.config import parse_config
from v2g_gateway.errors import StoreError
from v2g_gateway.model import (
    ChargerBooted,
    ChargerCapability,
    ConnectorStatus,
    ConnectorStatusChanged,
    MeterSample,
    Override,
    OverrideKind,
    PriceSlot,
    TransactionChanged,
    TransactionEventType,
)
from v2g_gateway.store import Store
from v2g_gateway.store.schema import MIGRATIONS

T0 = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
CFG = parse_config(
    {
        "chargers": [{"id": "garage", "password": "a-long-random-secret"}],
        "vehicles": [{"id": "car", "battery_kwh": 60, "id_tokens": ["tok-1"]}],
    }
)


def fill(store: Store) -> None:
    store.apply(ChargerBooted("garage", T0, vendor="Acme", model="BiDi", firmware="1.2"))
    store.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.OCCUPIED, T0))
    store.apply(
        TransactionChanged(
            "garage",
            1,
            "tx-1",
            TransactionEventType.STARTED,
            T0,
            0,
            "CablePluggedIn",
            id_token="tok-1",
        )
    )
    store.apply(
        MeterSample(
            "garage", 1, T0, "tx-1", soc_percent=55.0, power_w=-7000.0, energy_export_wh=1200.0
        )
    )
    store.set_discharge_capability("garage", DischargeCapability().worked(T0))


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    clock = ManualClock(T0)
    s = Store.open(path, CFG, clock)
    fill(s)
    s.save_price_slots("entsoe", [PriceSlot(T0, T0 + timedelta(minutes=15), 0.123)])
    s.put_override(
        Override("o1", "car", OverrideKind.CHARGE_NOW, T0, T0 + timedelta(hours=2), 80.0)
    )
    s.close()

    s2 = Store.open(path, CFG, clock)
    snap = s2.snapshot(T0 + timedelta(minutes=1))
    ch = snap.chargers["garage"]
    assert (ch.vendor, ch.firmware, ch.supports_discharge) == ("Acme", "1.2", True)
    assert ch.online is False  # sessions do not survive a restart
    assert ch.evses[1].transaction_id == "tx-1"
    car = snap.vehicles["car"]
    assert (car.plugged, car.soc_percent, car.charger_id) == (True, 55.0, "garage")
    assert car.power_w == -7000.0
    assert car.session is not None and car.session.identified_by == "id_token"
    # The reading keeps its plug session and its age across the restart.
    assert car.usable_soc(clock.monotonic(), timedelta(minutes=30)) is not None
    assert [o.override_id for o in snap.overrides] == ["o1"]
    assert s2.load_price_slots("entsoe", T0, T0 + timedelta(hours=1))[0].price == 0.123
    s2.close()


def test_resent_transaction_event_applies_once(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "s.sqlite", CFG)
    fill(s)
    ended = TransactionChanged(
        "garage",
        1,
        "tx-1",
        TransactionEventType.ENDED,
        T0,
        5,
        "EVDeparted",
        stopped_reason="EVDisconnected",
    )
    s.apply(ended)
    assert s.snapshot(T0).vehicles["car"].plugged is False
    # The charger re-sends an old Updated (seqNo 0 again) after the end: no resurrection.
    s.apply(
        TransactionChanged(
            "garage", 1, "tx-1", TransactionEventType.STARTED, T0, 0, "CablePluggedIn"
        )
    )
    assert s.snapshot(T0).chargers["garage"].evses[1].transaction_id is None
    s.close()


async def test_readings_are_ordered_by_receipt_and_offline_ones_do_not_count(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    s = Store.open(tmp_path / "s.sqlite", CFG, clock)
    fill(s)
    # A charger whose clock is an hour ahead: its reading arrives later, so it is newer, and
    # its age is the gateway's (its stamp cannot make it younger than its receipt).
    await clock.advance(60)
    s.apply(MeterSample("garage", 1, T0 + timedelta(hours=1), "tx-1", soc_percent=54.0))
    assert s.snapshot(clock.now()).vehicles["car"].soc_percent == 54.0
    car = s.vehicle_view("car")
    assert car is not None and car.soc is not None
    assert car.soc.age_s(clock.monotonic()) == 0.0
    # An hour behind: measured an hour before it arrived, as far as the gateway can tell, so of
    # the past (history only) until the charger's skew is known...
    await clock.advance(60)
    s.apply(MeterSample("garage", 1, clock.now() - timedelta(hours=1), "tx-1", soc_percent=53.0))
    assert s.snapshot(clock.now()).vehicles["car"].soc_percent == 54.0
    # ...and once it is (issue 14's clock_skew_s), read with its age corrected.
    s.apply(ChargerCapability("garage", clock.now(), "clock_skew_s", -3600.0))
    s.apply(MeterSample("garage", 1, clock.now() - timedelta(hours=1), "tx-1", soc_percent=53.0))
    assert s.snapshot(clock.now()).vehicles["car"].soc_percent == 53.0
    # A reading that took 30 s to arrive is 30 s old; one measured before the last one taken
    # (it took two minutes) is older than it, and changes nothing.
    await clock.advance(60)
    late = clock.now() - timedelta(hours=1, seconds=30)
    s.apply(MeterSample("garage", 1, late, "tx-1", soc_percent=52.5))
    car = s.vehicle_view("car")
    assert car is not None and car.soc is not None and car.soc.percent == 52.5
    assert car.soc.age_s(clock.monotonic()) == 30.0
    older = clock.now() - timedelta(hours=1, minutes=2)
    s.apply(MeterSample("garage", 1, older, "tx-1", soc_percent=52.9))
    car = s.vehicle_view("car")
    assert car is not None and car.soc is not None and car.soc.percent == 52.5
    # ...but a value replayed from the charger's offline queue is of the past.
    s.apply(MeterSample("garage", 1, T0, "tx-1", soc_percent=70.0, offline=True))
    assert s.snapshot(clock.now()).vehicles["car"].soc_percent == 52.5
    with pytest.raises(ValueError):
        s.record_mqtt_soc("car", 140.0)
    s.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store.open(path, CFG).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this gateway"):
        Store.open(path, CFG)


def test_locked_database_is_a_clear_error_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    s = Store.open(path, CFG)
    fill(s)
    other = sqlite3.connect(path, timeout=0.1)
    other.execute("BEGIN EXCLUSIVE")
    s._db.execute("PRAGMA busy_timeout = 50")
    with pytest.raises(StoreError, match="cannot write"):
        s.save_price_slots("x", [PriceSlot(T0, T0 + timedelta(hours=1), 1.0)])
    # apply() never raises: it flags the store unhealthy instead.
    s.apply(ChargerCapability("garage", T0, "iso15118", True))
    assert s.healthy is False
    other.rollback()
    other.close()
    s.apply(ChargerCapability("garage", T0, "iso15118", True))
    assert s.healthy is True
    assert s.snapshot(T0).chargers["garage"].vendor == "Acme"
    s.close()


def test_values_the_store_cannot_hold_are_dropped_not_raised(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "s.sqlite", CFG, ManualClock(T0))
    fill(s)
    s.apply(MeterSample("garage", 1, T0 + timedelta(minutes=1), soc_percent=180.0))
    s.apply(ConnectorStatusChanged("garage", 2**63, 1, ConnectorStatus.OCCUPIED, T0))
    snap = s.snapshot(T0)
    assert snap.vehicles["car"].soc_percent == 55.0
    assert 2**63 not in snap.chargers["garage"].evses
    assert s.healthy
    s.close()


async def test_prune_drops_old_history_and_keeps_state(tmp_path: Path) -> None:
    from v2g_gateway.model import Notification

    old, recent = T0 - timedelta(days=100), T0 - timedelta(days=1)
    clock = ManualClock(old)
    s = Store.open(tmp_path / "s.sqlite", CFG, clock)
    for at, tx in ((old, "tx-old"), (recent, "tx-recent")):
        await clock.set(at)
        s.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.OCCUPIED, at))
        for seq, kind in enumerate((TransactionEventType.STARTED, TransactionEventType.ENDED)):
            s.apply(
                TransactionChanged("garage", 1, tx, kind, at, seq, "EVDeparted", plugged=seq == 0)
            )
            if seq == 0:
                s.apply(MeterSample("garage", 1, at, tx, soc_percent=50.0))
    await clock.set(T0)
    fill(s)  # tx-1 starts at T0 and is still open; SoC 55 % at T0
    for at in (old, recent):
        s.log_dispatch(at, "discharge", "peak price", vehicle_id="car", limit_w=-7000.0)
        s.notify(Notification(kind="test", message=f"at {at}", at=at))
        s.save_price_slots("entsoe", [PriceSlot(at, at + timedelta(hours=1), 0.1)])
    s.add_ledger("car", "2025-11-01", 1000.0, 0.0, 0.2, 0.0)

    deleted = s.prune(T0 - timedelta(days=90))

    assert deleted == {
        "soc_samples": 1,
        "dispatch_log": 1,
        "notifications": 1,
        "price_slots": 1,
        "transactions": 1,
        "plug_sessions": 1,
    }
    assert s.prune(T0 - timedelta(days=90)) == dict.fromkeys(deleted, 0)
    s.close()
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        txs = {r[0] for r in db.execute("SELECT transaction_id FROM transactions")}
        assert txs == {"tx-1", "tx-recent"}  # the open one stays whatever its age
        assert db.execute("SELECT min(at) FROM soc_samples").fetchone()[0] == recent.isoformat()
        assert db.execute("SELECT min(at) FROM dispatch_log").fetchone()[0] == recent.isoformat()
        assert db.execute("SELECT count(*) FROM ledger").fetchone()[0] == 1
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    again = Store.open(tmp_path / "s.sqlite", CFG, clock)
    assert again.snapshot(T0).vehicles["car"].soc_percent == 55.0
