"""The replanner on a real store: plans from stored state, replans only when something matters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import Config, parse_config
from v2g_gateway.dispatch.policy import Policy, PolicyError
from v2g_gateway.dispatch.replanner import Replanner, next_departure
from v2g_gateway.model import (
    ChargerBooted,
    ConnectorStatus,
    ConnectorStatusChanged,
    MeterSample,
    UserPriceSlot,
)
from v2g_gateway.prices.tariff import tariff_prices
from v2g_gateway.store import Store

# Thursday 2026-01-15, 17:30 in Berlin (16:30 UTC).
NOW = datetime(2026, 1, 15, 16, 30, tzinfo=UTC)


def config(**prefs: object) -> Config:
    return parse_config(
        {
            "gateway": {"timezone": "Europe/Berlin"},
            "chargers": [{"id": "garage", "password": "a-long-random-secret"}],
            "vehicles": [{"id": "car", "battery_kwh": 60, "reserve_soc_percent": 40}],
            "prices": {
                "tariff": [
                    {
                        "start": "17:00",
                        "end": "21:00",
                        "import_per_kwh": 0.45,
                        "export_per_kwh": 0.40,
                    },
                    {
                        "start": "21:00",
                        "end": "17:00",
                        "import_per_kwh": 0.15,
                        "export_per_kwh": 0.05,
                    },
                ]
            },
            "preferences": {
                "departures": [{"days": ["fri"], "time": "07:30", "target_soc_percent": 80}],
                "degradation_cost_per_kwh": 0.03,
                **prefs,
            },
        }
    )


class TariffView:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.calls = 0

    def user_prices(self, start: datetime, end: datetime) -> Sequence[UserPriceSlot]:
        self.calls += 1
        return tariff_prices(self.cfg.prices.tariff, self.cfg.gateway.tz, start, end)


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Config, Store, Replanner, ManualClock]:
    cfg = config()
    clock = ManualClock(NOW)
    store = Store.open(tmp_path / "s.sqlite", cfg, clock)
    store.apply(ChargerBooted("garage", NOW, vendor="Sim", model="BiDi"))
    store.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.OCCUPIED, NOW))
    store.apply(MeterSample("garage", 1, NOW, soc_percent=70.0, power_w=0.0))
    policy = Policy(cfg, store, clock)
    return cfg, store, Replanner(cfg, store, policy, TariffView(cfg), clock), clock


def test_plan_discharges_at_the_peak_and_refills_for_departure(
    parts: tuple[Config, Store, Replanner, ManualClock],
) -> None:
    _cfg, store, rp, _clock = parts
    now_power = rp.lookup("car", NOW)
    assert now_power is not None and now_power.power_w < 0, now_power
    plan = rp.current("car")
    assert plan is not None and not plan.target_at_risk
    departure = datetime(2026, 1, 16, 6, 30, tzinfo=UTC)
    at_departure = next(s for s in plan.slots if s.end == departure)
    assert at_departure.soc_end_kwh >= 0.8 * 60 - 1e-3
    assert min(s.soc_end_kwh for s in plan.slots) >= 0.4 * 60 - 1e-3
    night = [s for s in plan.slots if s.start.hour in (21, 22, 23, 0, 1, 2, 3, 4)]
    assert sum(s.charge_kw for s in night) > 0
    stored = store.load_plan("car")
    assert stored is not None and stored["slots"][0]["discharge_kw"] > 0
    kinds = [n["kind"] for n in store.recent_notifications()]
    assert "plan_changed" in kinds


def test_no_replan_without_a_material_change(
    parts: tuple[Config, Store, Replanner, ManualClock],
) -> None:
    _cfg, store, rp, _clock = parts
    rp.lookup("car", NOW)
    rp.lookup("car", NOW + timedelta(seconds=30))
    assert rp.solves == 1
    store.set_preference("car.reserve_soc_percent", 60.0, NOW)
    after = rp.lookup("car", NOW + timedelta(seconds=60))
    assert rp.solves == 2
    assert after is not None and after.power_w < 0  # 70 % still above a 60 % reserve
    plan = rp.current("car")
    assert plan is not None and min(s.soc_end_kwh for s in plan.slots) >= 36 - 1e-3


async def test_soc_drift_replans(parts: tuple[Config, Store, Replanner, ManualClock]) -> None:
    _cfg, store, rp, clock = parts
    rp.lookup("car", NOW)
    await clock.advance(120)
    store.apply(MeterSample("garage", 1, clock.now(), soc_percent=65.0))  # 5 points off plan
    rp.lookup("car", clock.now())
    assert rp.solves == 2


async def test_stale_soc_plans_by_price_without_discharge_and_unplugged_has_no_plan(
    parts: tuple[Config, Store, Replanner, ManualClock],
) -> None:
    _cfg, store, rp, clock = parts
    await clock.advance(2 * 3600)  # the 70 % reading is two hours old now: stale
    later = rp.lookup("car", clock.now())
    assert later is not None and later.power_w >= 0  # never a discharge without a fresh SoC
    plan = rp.current("car")
    assert plan is not None and max(s.discharge_kw for s in plan.slots) == 0
    # Worst case: the 60 kWh car is empty, so 80 % by Friday 07:30 is 48 kWh, in the night.
    assert plan.notes[0] == "SoC unknown: charging by price for 48 kWh"
    assert all(s.reason.startswith("SoC unknown") for s in plan.slots)
    charged = [s for s in plan.slots if s.charge_kw > 0.05]
    assert charged and all(s.import_per_kwh < 0.2 for s in charged)  # cheap hours only
    assert sum(s.charge_kw * s.hours for s in plan.slots) * 0.95 >= 48 - 1e-3
    store.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.AVAILABLE, clock.now()))
    assert rp.lookup("car", clock.now()) is None


def test_next_departure_uses_weekdays_and_one_off(
    parts: tuple[Config, Store, Replanner, ManualClock],
) -> None:
    cfg, store, _rp, clock = parts
    policy = Policy(cfg, store, clock)
    v = store.snapshot(NOW).vehicles["car"]
    vcfg = cfg.vehicles[0]
    dep = next_departure(cfg, policy, vcfg, v, NOW)
    assert dep == (datetime(2026, 1, 16, 6, 30, tzinfo=UTC), 80.0)
    # Friday 08:00: the next Friday departure is a week away.
    fri = datetime(2026, 1, 16, 7, 0, tzinfo=UTC)
    assert next_departure(cfg, policy, vcfg, v, fri) == (
        datetime(2026, 1, 23, 6, 30, tzinfo=UTC),
        80.0,
    )
    policy.set_preference("departure_time", "06:00", "car")
    policy.set_preference("target_soc_percent", 90, "car")
    assert next_departure(cfg, policy, vcfg, v, NOW) == (
        datetime(2026, 1, 16, 5, 0, tzinfo=UTC),
        90.0,
    )


def test_v2h_only_discharges_at_most_the_home_load(
    parts: tuple[Config, Store, Replanner, ManualClock],
) -> None:
    cfg, store, _rp, clock = parts
    policy = Policy(cfg, store, clock)
    policy.set_preference("v2h_only", True)
    load: dict[str, float | None] = {"w": None}
    rp = Replanner(cfg, store, policy, TariffView(cfg), clock, home_load_w=lambda _now: load["w"])
    blind = rp.lookup("car", NOW)
    assert blind is not None and blind.power_w >= 0  # no home meter: V2H-only cannot discharge
    load["w"] = 1800.0
    now = rp.lookup("car", NOW + timedelta(seconds=10))
    assert now is not None and -1800.0 - 1e-6 <= now.power_w < 0
    plan = rp.current("car")
    assert plan is not None and max(s.discharge_kw for s in plan.slots) <= 1.8 + 1e-9


def test_a_weekly_departure_plan_set_at_run_time_replaces_the_configs(
    parts: tuple[Config, Store, Replanner, ManualClock],
) -> None:
    cfg, store, _rp, clock = parts
    policy = Policy(cfg, store, clock)
    v = store.snapshot(NOW).vehicles["car"]
    weekly = [
        {"days": ["thu", "fri"], "time": "06:15", "target_soc_percent": 90},
        {"days": ["sat"], "time": "10:00"},
    ]
    clean = policy.set_preference("departures", weekly, "car")
    assert clean[1] == {"days": ["sat"], "time": "10:00", "target_soc_percent": 80.0}
    # Thursday 17:30: the next is Friday 06:15 local (05:15 UTC), at 90 %.
    assert next_departure(cfg, policy, cfg.vehicles[0], v, NOW) == (
        datetime(2026, 1, 16, 5, 15, tzinfo=UTC),
        90.0,
    )
    for bad, why in (
        ([{"days": ["someday"], "time": "07:00"}], "days must be"),
        ([{"time": "25:00"}], "25:00"),
        ([{"days": ["mon"]}], "time is required"),
        ([{"days": ["mon"], "time": 700}], "HH:MM"),
        ("07:00", "a list"),
        ([{"days": ["mon"], "time": "07:00", "colour": "red"}], "expected days"),
    ):
        with pytest.raises(PolicyError, match=why):
            policy.set_preference("departures", bad, "car")
    policy.set_preference("departures", None, "car")  # back to the config's Friday 07:30
    assert next_departure(cfg, policy, cfg.vehicles[0], v, NOW) == (
        datetime(2026, 1, 16, 6, 30, tzinfo=UTC),
        80.0,
    )
