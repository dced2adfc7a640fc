"""Plug sessions on a real store: which SoC counts, for which car, and for how long.

Time is a ManualClock: `advance` is time passing (wall and monotonic), `set` is a step of the
wall clock only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import Config, parse_config
from v2g_gateway.model import (
    ChargerBooted,
    ConnectorStatus,
    ConnectorStatusChanged,
    MeterSample,
    TransactionChanged,
    TransactionEventType,
)
from v2g_gateway.soc import SocSource
from v2g_gateway.store import Store

T0 = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
FRESH = timedelta(minutes=30)


def config(**vehicle: object) -> Config:
    return parse_config(
        {
            "chargers": [
                {"id": "garage", "password": "a-long-random-secret"},
                {"id": "shed", "password": "a-long-random-secret"},
            ],
            "vehicles": [
                {"id": "car", "battery_kwh": 60, "charger": "garage", **vehicle},
                {"id": "van", "battery_kwh": 75, "id_tokens": ["van-tag"]},
            ],
        }
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    s = Store.open(tmp_path / "s.sqlite", config(), clock)
    s.apply(ChargerBooted("garage", T0, vendor="Acme", model="BiDi"))
    yield s
    s.close()


def plug(s: Store, at: datetime, charger: str = "garage", token: str | None = None) -> None:
    s.apply(ConnectorStatusChanged(charger, 1, 1, ConnectorStatus.OCCUPIED, at))
    if token is not None:
        s.apply(
            TransactionChanged(
                charger,
                1,
                f"tx-{token}",
                TransactionEventType.STARTED,
                at,
                0,
                "Authorized",
                id_token=token,
            )
        )


def unplug(s: Store, at: datetime, charger: str = "garage") -> None:
    s.apply(ConnectorStatusChanged(charger, 1, 1, ConnectorStatus.AVAILABLE, at))


def usable(s: Store, clock: ManualClock, vehicle: str = "car") -> float | None:
    v = s.vehicle_view(vehicle)
    assert v is not None
    r = v.usable_soc(clock.monotonic(), FRESH)
    return None if r is None else r.percent


async def test_a_charger_clock_hours_ahead_neither_makes_readings_young_nor_blocks_later_ones(
    store: Store, clock: ManualClock
) -> None:
    plug(store, T0)
    ahead = T0 + timedelta(hours=2)
    store.apply(MeterSample("garage", 1, ahead, soc_percent=60.0))
    assert usable(store, clock) == 60.0
    await clock.advance(31 * 60)
    assert usable(store, clock) is None  # stale by the gateway's clock, whatever the charger says
    # A correct later reading (MQTT) is taken, though the charger's stamp says "the future".
    assert store.record_mqtt_soc("car", 58.0) == "accepted"
    assert usable(store, clock) == 58.0
    store.apply(MeterSample("garage", 1, ahead + timedelta(minutes=31), soc_percent=57.5))
    v = store.vehicle_view("car")
    assert v is not None and v.soc is not None and v.soc.source == SocSource.CHARGER


async def test_a_wall_clock_step_changes_no_age(store: Store, clock: ManualClock) -> None:
    plug(store, T0)
    store.apply(MeterSample("garage", 1, T0, soc_percent=60.0))
    await clock.set(T0 - timedelta(hours=1))  # NTP steps the clock back an hour
    assert usable(store, clock) == 60.0
    assert store.record_mqtt_soc("car", 59.0) == "accepted"  # not "older than what we know"
    await clock.set(T0 + timedelta(hours=5))  # ...or forward: the reading is not suddenly old
    assert usable(store, clock) == 59.0


async def test_retained_mqtt_soc_is_of_unknown_age_unless_it_says_when(
    store: Store, clock: ManualClock
) -> None:
    plug(store, T0)
    await clock.advance(60)
    assert store.record_mqtt_soc("car", 70.0, retained=True) == "retained, age unknown"
    assert usable(store, clock) is None
    v = store.vehicle_view("car")
    assert v is not None and v.soc_percent == 70.0  # shown, not used
    # A retained message that carries its own time, measured after the plug-in: usable.
    measured = clock.now() - timedelta(seconds=30)
    assert store.record_mqtt_soc("car", 69.0, retained=True, measured_at=measured) == "accepted"
    assert usable(store, clock) == 69.0
    await clock.advance(30 * 60 - 30)
    assert usable(store, clock) == 69.0  # 30 minutes after it was measured
    await clock.advance(1)
    assert usable(store, clock) is None
    # Measured before the plug-in: not this session's.
    old = T0 - timedelta(minutes=10)
    assert store.record_mqtt_soc("car", 50.0, measured_at=old) == "not for a plug session"


async def test_mqtt5_message_expiry_is_honoured(store: Store, clock: ManualClock) -> None:
    plug(store, T0)
    await clock.advance(1)
    store.record_mqtt_soc("car", 66.0, expiry_s=120)
    await clock.advance(119)
    assert usable(store, clock) == 66.0
    await clock.advance(1)
    assert usable(store, clock) is None


async def test_the_next_car_starts_with_no_soc_and_an_unknown_token_is_a_guest(
    store: Store, clock: ManualClock
) -> None:
    plug(store, T0)
    store.apply(MeterSample("garage", 1, T0, soc_percent=60.0))
    assert usable(store, clock) == 60.0
    await clock.advance(300)
    unplug(store, clock.now())
    car = store.vehicle_view("car")
    assert car is not None and not car.plugged and car.session is None and car.charger_id is None
    # The same car back after a short drive: a new session, no SoC until a reading comes.
    await clock.advance(600)
    plug(store, clock.now())
    assert usable(store, clock) is None
    unplug(store, clock.now())
    # A guest with its own card: someone else's car, never the configured one.
    plug(store, clock.now(), token="friend-card")
    store.apply(MeterSample("garage", 1, clock.now(), soc_percent=90.0))
    ev = store.charger_state("garage").evses[1]  # type: ignore[union-attr]
    assert ev.session is not None and ev.session.guest and ev.session.soc is not None
    car = store.vehicle_view("car")
    assert car is not None and car.session is None and not car.plugged


async def test_a_token_rebinds_and_two_vehicles_never_share_an_evse(
    store: Store, clock: ManualClock
) -> None:
    plug(store, T0)  # the garage's default car, by default
    assert store.vehicle_at("garage", 1) == "car"
    store.apply(MeterSample("garage", 1, T0, soc_percent=40.0))
    # The transaction's token says it is the van: the van gets this session, the car is free.
    store.apply(
        TransactionChanged(
            "garage",
            1,
            "tx-9",
            TransactionEventType.STARTED,
            T0,
            0,
            "Authorized",
            id_token="van-tag",
        )
    )
    assert store.vehicle_at("garage", 1) == "van"
    car, van = store.vehicle_view("car"), store.vehicle_view("van")
    assert car is not None and van is not None
    assert car.session is None and not car.plugged
    assert van.plugged and van.soc is not None and van.soc.percent == 40.0
    # The van's token at the shed moves the van there; the garage session becomes a guest.
    plug(store, T0, charger="shed", token="van-tag")
    assert store.vehicle_at("shed", 1) == "van"
    assert store.vehicle_at("garage", 1) is None


async def test_a_default_never_takes_a_car_identified_elsewhere(
    tmp_path: Path, clock: ManualClock
) -> None:
    s = Store.open(tmp_path / "d.sqlite", config(id_tokens=["car-tag"]), clock)
    plug(s, T0, charger="shed", token="car-tag")
    assert s.vehicle_at("shed", 1) == "car"
    plug(s, T0)  # at the car's usual charger: but the car is at the shed
    assert s.vehicle_at("garage", 1) is None
    assert s.vehicle_at("shed", 1) == "car"
    s.close()


async def test_a_reboot_ends_the_sessions_and_transactions_of_that_charger(
    store: Store, clock: ManualClock
) -> None:
    plug(store, T0, token="van-tag")
    store.apply(MeterSample("garage", 1, T0, "tx-van-tag", soc_percent=50.0))
    store.apply(ChargerBooted("garage", clock.now(), vendor="Acme", model="BiDi"))
    ev = store.charger_state("garage").evses[1]  # type: ignore[union-attr]
    assert ev.transaction_id is None and ev.session is None
    assert store.vehicle_view("van").session is None  # type: ignore[union-attr]
    plug(store, clock.now())  # the charger reports the connector again: a fresh session
    assert usable(store, clock) is None


async def test_an_implausible_soc_jump_is_held_until_confirmed(
    store: Store, clock: ManualClock
) -> None:
    plug(store, T0)
    store.apply(MeterSample("garage", 1, clock.now(), soc_percent=41.0))
    await clock.advance(1)
    store.apply(MeterSample("garage", 1, clock.now(), soc_percent=95.0))
    assert usable(store, clock) == 41.0
    kinds = [n["kind"] for n in store.recent_notifications()]
    assert kinds.count("soc_jump_held") == 1
    await clock.advance(1)
    store.apply(MeterSample("garage", 1, clock.now(), soc_percent=41.0))
    assert usable(store, clock) == 41.0
    # A real change (another source that was right all along) is confirmed by a second reading.
    store.record_mqtt_soc("car", 60.0)
    assert usable(store, clock) == 41.0
    await clock.advance(10)
    store.record_mqtt_soc("car", 60.0)
    assert usable(store, clock) == 60.0
    # Within what 11 kW can do in 10 minutes (3 points), plus a tolerance: taken at once.
    await clock.advance(600)
    store.apply(MeterSample("garage", 1, clock.now(), soc_percent=62.5))
    assert usable(store, clock) == 62.5


async def test_transactions_are_keyed_by_charger_and_id(store: Store, clock: ManualClock) -> None:
    for charger in ("garage", "shed"):
        store.apply(ConnectorStatusChanged(charger, 1, 1, ConnectorStatus.OCCUPIED, T0))
        store.apply(
            TransactionChanged(
                charger, 1, "1", TransactionEventType.STARTED, T0, 0, "CablePluggedIn"
            )
        )
    assert store.charger_state("garage").evses[1].transaction_id == "1"  # type: ignore[union-attr]
    assert store.charger_state("shed").evses[1].transaction_id == "1"  # type: ignore[union-attr]
    # The shed's seqNo 1 does not pre-empt the garage's.
    store.apply(
        TransactionChanged(
            "shed", 1, "1", TransactionEventType.ENDED, T0, 1, "EVDeparted", plugged=False
        )
    )
    store.apply(
        TransactionChanged(
            "garage", 1, "1", TransactionEventType.UPDATED, T0, 1, "MeterValuePeriodic"
        )
    )
    assert store.charger_state("garage").evses[1].transaction_id == "1"  # type: ignore[union-attr]
    assert store.charger_state("shed").evses[1].transaction_id is None  # type: ignore[union-attr]


def test_a_reconnected_charger_is_left_alone_until_it_speaks(
    store: Store, clock: ManualClock
) -> None:
    """A charger that rebooted says so first (BootNotification): until its first message on a
    new connection, dispatch sends nothing that was decided for its old transaction."""
    from v2g_gateway.dispatch.controller import SETTLE, settling
    from v2g_gateway.model import ChargerConnected, HeartbeatSeen

    ch = store.charger_state("garage")
    assert ch is not None and ch.spoken and not settling(ch, T0)
    store.apply(ChargerConnected("garage", T0))
    ch = store.charger_state("garage")
    assert ch is not None and not ch.spoken
    assert settling(ch, T0 + SETTLE - timedelta(seconds=1))
    assert not settling(ch, T0 + SETTLE)  # a charger silent that long is controlled again
    store.apply(HeartbeatSeen("garage", T0))
    ch = store.charger_state("garage")
    assert ch is not None and ch.spoken and not settling(ch, T0)
