"""The energy ledger on a real store: register deltas priced at the moment, kept across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import parse_config
from v2g_gateway.dispatch.ledger import Ledger
from v2g_gateway.model import (
    ChargerBooted,
    ConnectorStatus,
    ConnectorStatusChanged,
    MeterSample,
    UserPriceSlot,
)
from v2g_gateway.prices.tariff import tariff_prices
from v2g_gateway.store import Store

T0 = datetime(2026, 1, 15, 16, 30, tzinfo=UTC)  # 17:30 Berlin, inside the 17-21 peak
CFG = parse_config(
    {
        "gateway": {"timezone": "Europe/Berlin"},
        "chargers": [{"id": "garage", "password": "a-long-random-secret"}],
        "vehicles": [{"id": "car", "battery_kwh": 60}],
        "prices": {
            "tariff": [
                {"start": "17:00", "end": "21:00", "import_per_kwh": 0.40, "export_per_kwh": 0.30},
                {"start": "21:00", "end": "17:00", "import_per_kwh": 0.20, "export_per_kwh": 0.05},
            ]
        },
    }
)


class Tariff:
    def user_prices(self, start: datetime, end: datetime) -> list[UserPriceSlot]:
        return tariff_prices(CFG.prices.tariff, CFG.gateway.tz, start, end)


def meter(store: Store, at: datetime, imp: float, exp: float) -> None:
    store.apply(MeterSample("garage", 1, at, energy_import_wh=imp, energy_export_wh=exp))


def test_register_deltas_are_booked_per_day_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = Store.open(path, CFG)
    clock = ManualClock(T0)
    store.apply(ChargerBooted("garage", T0, vendor="Sim", model="BiDi"))
    store.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.OCCUPIED, T0))
    ledger = Ledger(CFG, store, Tariff(), clock)
    meter(store, T0, 1000.0, 5000.0)
    ledger.on_meter("garage")  # baseline only
    meter(store, T0, 1000.0, 7000.0)
    ledger.on_meter("garage")  # 2 kWh exported in the peak
    (row,) = ledger.today()
    assert (row["export_wh"], row["import_wh"]) == (2000.0, 0.0)
    assert row["revenue"] == pytest.approx(0.60)
    store.close()

    store = Store.open(path, CFG)
    later = T0 + timedelta(hours=5)  # 22:30 Berlin, off-peak
    clock2 = ManualClock(later)
    ledger = Ledger(CFG, store, Tariff(), clock2)
    meter(store, later, 4000.0, 7000.0)
    ledger.on_meter("garage")  # 3 kWh imported since the last reading before the restart
    (row,) = ledger.today()
    assert row["import_wh"] == 3000.0 and row["cost"] == pytest.approx(0.60)
    meter(store, later, 10.0, 0.0)  # a replaced meter starts again from zero
    ledger.on_meter("garage")
    assert ledger.today()[0]["import_wh"] == 3000.0
    store.close()
