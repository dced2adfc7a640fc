"""OCPP 2.1: what the car says about its powers bounds the gate (and only in its plug session)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from world import World

from v2g_gateway.car_limits import CarLimits, car_limits, key
from v2g_gateway.clock import ManualClock
from v2g_gateway.config import parse_config
from v2g_gateway.dispatch.core import step
from v2g_gateway.dispatch.decision import Mode
from v2g_gateway.model import (
    ConnectorStatus,
    ConnectorStatusChanged,
    EvChargingNeeds,
    TransactionChanged,
    TransactionEventType,
)
from v2g_gateway.store import Store


def _car(**kw: object) -> dict[str, object]:
    return {key(1): {"session_id": "s1", "bidirectional": True, **kw}}


def test_the_cars_discharge_power_caps_the_gate() -> None:
    out = step(World(capabilities=_car(max_discharge_w=6000.0)).build())
    assert out.send is not None and out.send.spec.periods[0].limit_w == -6000


def test_a_car_that_did_not_ask_for_bpt_is_never_discharged() -> None:
    sit = World(capabilities=_car(bidirectional=False)).build()
    assert sit.limits.no_discharge == "the car did not ask for a bidirectional mode"
    out = step(sit)
    assert out.decision.mode != Mode.DISCHARGE
    assert out.send is not None and all(p.limit_w >= 0 for p in out.send.spec.periods)


def test_the_cars_v2x_floor_raises_the_reserve() -> None:
    # Reserve 40 %; the car wants 65 % before it gives energy back: at 70 % it stops above 65.
    out = step(World(capabilities=_car(floor_percent=65.0)).build())
    assert out.send is not None and out.send.min_floor_percent == 65.0


def test_limits_of_another_plug_session_do_not_count() -> None:
    caps = {key(1): {"session_id": "old", "bidirectional": False}}
    out = step(World(capabilities=caps).build())
    assert out.send is not None and out.send.spec.periods[0].limit_w == -10000
    assert CarLimits(max_charge_w=3000).bound(11000, 7000) == (3000, 7000)


def test_the_store_keeps_the_cars_limits_for_its_session(tmp_path: Path) -> None:
    t0 = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
    cfg = parse_config(
        {
            "chargers": [{"id": "garage", "password": "a-long-random-secret"}],
            "vehicles": [{"id": "car", "battery_kwh": 60, "id_tokens": ["tok-1"]}],
        }
    )
    store = Store.open(tmp_path / "state.sqlite", cfg, ManualClock(t0))
    store.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.OCCUPIED, t0))
    store.apply(
        TransactionChanged(
            "garage",
            1,
            "tx-1",
            TransactionEventType.STARTED,
            t0,
            0,
            "CablePluggedIn",
            id_token="tok-1",
        )
    )
    store.apply(
        EvChargingNeeds(
            "garage",
            1,
            t0,
            soc_percent=50.0,
            capacity_wh=60000,
            max_charge_w=11000,
            max_discharge_w=7000,
            min_discharge_w=1000,
            bidirectional=True,
            v2x_min_energy_wh=6000,
        )
    )
    snap = store.snapshot(t0)
    charger = snap.chargers["garage"]
    car = car_limits(charger, snap.vehicles["car"].session)
    assert (car.max_discharge_w, car.min_discharge_w, car.bidirectional) == (7000, 1000, True)
    assert car.floor_percent == 60.0  # 50 % + 6 kWh of 60 kWh
    store.close()
