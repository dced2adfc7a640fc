"""Home Assistant entities mean what they say: every template rendered with Jinja (the engine
Home Assistant uses) against the bodies the gateway really publishes, in awkward states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import pytest

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import Config, parse_config
from v2g_gateway.dispatch.policy import Policy, PolicyError
from v2g_gateway.model import (
    ChargerState,
    Override,
    OverrideKind,
    Snapshot,
    VehicleState,
)
from v2g_gateway.mqtt.discovery import Discovery
from v2g_gateway.mqtt.payloads import (
    Live,
    charger_body,
    departure_hhmm,
    last_command_body,
    minutes_to_target,
    next_action,
    vehicle_body,
)
from v2g_gateway.mqtt.topics import Topics
from v2g_gateway.prices.label import source_label
from v2g_gateway.store import Store

T0 = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)  # a Monday, 12:00 in Berlin
ENV = jinja2.Environment()
RAW = {
    "gateway": {"id": "home"},
    "chargers": [{"id": "garage", "password": "a-long-random-secret"}],
    "vehicles": [
        {"id": "car", "battery_kwh": 60, "min_soc_percent": 15, "max_soc_percent": 90},
    ],
    "preferences": {
        "departures": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "time": "07:30"},
            {"days": ["mon"], "time": "18:15", "target_soc_percent": 60},
        ]
    },
}


@pytest.fixture
def cfg() -> Config:
    return parse_config(RAW)


@pytest.fixture
def policy(cfg: Config, tmp_path: Path) -> Policy:
    return Policy(cfg, Store.open(tmp_path / "s.sqlite", cfg), ManualClock(T0))


def render(template: str, body: dict[str, Any]) -> str:
    return ENV.from_string(template).render(value_json=body).strip()


def bodies(cfg: Config, policy: Policy, snap: Snapshot) -> dict[str, dict[str, Any]]:
    """What each state topic carries in this snapshot (as the bridge renders it)."""
    t = Topics.from_config(cfg)
    v = snap.vehicles.get("car") or VehicleState("car")
    return {
        t.charger("garage"): charger_body(
            cfg, snap.chargers.get("garage") or ChargerState("garage"), False
        ),
        t.vehicle("car"): vehicle_body(cfg, policy, v, snap, None),
        t.vehicle_plan("car"): {"vehicle_id": "car", "revenue": None, "slots": []},
        t.gateway: {"grid_outage": False, "uptime_s": 5, "v2g_enabled": True},
        t.prices: {
            "status": {"state": "missing", "label": "ENTSO-E day-ahead, DE-LU"},
            "current": None,
        },
        t.last_command: last_command_body(
            {
                "command": "set/vehicle/car/reserve_soc_percent",
                "ok": False,
                "message": "set/vehicle/car/reserve_soc_percent: reserve must be between 15 and 90 %, got 5",
                "at": T0.isoformat(),
                "request_id": None,
            }
        ),
    }


def numeric(c: dict[str, Any]) -> bool:
    return any(k in c for k in ("unit_of_measurement", "device_class", "state_class"))


def snapshot(
    chargers: dict[str, ChargerState] | None = None, vehicles: dict[str, VehicleState] | None = None
) -> Snapshot:
    return Snapshot(taken_at=T0, chargers=chargers or {}, vehicles=vehicles or {})


SNAPSHOTS = {
    "never seen": snapshot(),
    "online, no status yet": snapshot({"garage": ChargerState("garage", online=True)}),
    "unplugged car, no SoC": snapshot(vehicles={"car": VehicleState("car")}),
}


@pytest.mark.parametrize("name", list(SNAPSHOTS))
def test_no_entity_reads_a_literal_none(cfg: Config, policy: Policy, name: str) -> None:
    snap = SNAPSHOTS[name]
    states = bodies(cfg, policy, snap)
    for topic, c in Discovery(cfg, Topics.from_config(cfg)).configs(snap).items():
        if "value_template" not in c:
            continue
        out = render(c["value_template"], states[c["state_topic"]])
        component = topic.split("/")[1]
        if component == "sensor" and not numeric(c):
            assert out not in ("None", ""), f"{topic}: {out!r}"
        elif component == "sensor":  # Home Assistant reads "None" as unknown
            assert out == "None" or float(out) == float(out), f"{topic}: {out!r}"
        elif component == "binary_sensor":
            assert out in ("True", "False", "None"), f"{topic}: {out!r}"
        elif component == "select":
            assert out in c["options"], f"{topic}: {out!r}"
        elif component == "text":
            assert out == "" or len(out) == 5, f"{topic}: {out!r}"
        if "json_attributes_template" in c:
            render(c["json_attributes_template"], states[c["json_attributes_topic"]])


def test_texts_read_well(cfg: Config, policy: Policy) -> None:
    d = Discovery(cfg, Topics.from_config(cfg)).configs(SNAPSHOTS["never seen"])
    states = bodies(cfg, policy, SNAPSHOTS["never seen"])

    def shown(uid: str, component: str = "sensor") -> str:
        c = d[f"homeassistant/{component}/{uid}/config"]
        return render(c["value_template"], states[c["state_topic"]])

    assert shown("v2g_home_charger_garage_status") == "Offline"
    assert shown("v2g_home_price_source") == "ENTSO-E day-ahead, DE-LU"
    assert shown("v2g_home_import_price") == "None"  # no current price: unknown, not stale
    assert shown("v2g_home_last_command") == (
        "refused: set/vehicle/car/reserve_soc_percent: reserve must be between 15 and 90 %, got 5"
    )
    assert shown("v2g_home_vehicle_car_next_action") == "unplugged"
    assert shown("v2g_home_vehicle_car_departure_time", "text") == "18:15"  # today's next one


def test_discharging_is_not_labelled_charging(cfg: Config) -> None:
    d = Discovery(cfg, Topics.from_config(cfg)).configs()
    for uid in ("v2g_home_charger_garage_discharging", "v2g_home_vehicle_car_discharging"):
        c = d[f"homeassistant/binary_sensor/{uid}/config"]
        assert "device_class" not in c  # battery_charging would say "Charging" when on
        assert c["icon"] == "mdi:transmission-tower-export"


def test_sliders_span_exactly_what_the_gateway_accepts(cfg: Config, policy: Policy) -> None:
    d = Discovery(cfg, Topics.from_config(cfg)).configs()
    reserve = d["homeassistant/number/v2g_home_vehicle_car_reserve_soc_percent/config"]
    assert (reserve["min"], reserve["max"]) == (15, 90)
    for ok in (reserve["min"], reserve["max"]):
        policy.set_preference("reserve_soc_percent", ok, "car")
    for bad in (reserve["min"] - 1, reserve["max"] + 1):
        with pytest.raises(PolicyError):
            policy.set_preference("reserve_soc_percent", bad, "car")
    target = d["homeassistant/number/v2g_home_vehicle_car_target_soc_percent/config"]
    for ok in (target["min"], target["max"]):
        policy.set_preference("target_soc_percent", ok, "car")
    for bad in (target["min"] - 1, target["max"] + 1):
        with pytest.raises(PolicyError):
            policy.set_preference("target_soc_percent", bad, "car")


def test_charger_device_carries_its_boot_notification(cfg: Config) -> None:
    snap = snapshot(
        {
            "garage": ChargerState(
                "garage", vendor="Acme", model="Bidi 11", serial="SN-7", firmware="1.2.3"
            )
        }
    )
    d = Discovery(cfg, Topics.from_config(cfg))
    dev = d.configs(snap)["homeassistant/sensor/v2g_home_charger_garage_power/config"]["device"]
    assert dev["manufacturer"] == "Acme" and dev["model"] == "Bidi 11"
    assert dev["serial_number"] == "SN-7" and dev["sw_version"] == "1.2.3"
    before = d.configs()["homeassistant/sensor/v2g_home_charger_garage_power/config"]["device"]
    assert before["manufacturer"] == "OCPP 2.0.1 charger" and "serial_number" not in before
    topics = d.charger_topics("garage")
    assert topics and all("v2g_home_charger_garage_" in t for t in topics)
    assert not [t for t in d.configs() if "charger_garage" in t and t not in topics]


def test_controls_use_the_safety_names(cfg: Config) -> None:
    d = Discovery(cfg, Topics.from_config(cfg)).configs()
    mode = d["homeassistant/select/v2g_home_vehicle_car_mode/config"]
    assert mode["options"] == ["auto", "charge_now", "discharge_now", "hold", "release"]
    hold = d["homeassistant/button/v2g_home_vehicle_car_hold/config"]
    release = d["homeassistant/button/v2g_home_vehicle_car_release/config"]
    assert (hold["name"], hold["payload_press"]) == ("Hold (pause)", "hold")
    assert (release["name"], release["payload_press"]) == ("Release to charger", "release")


def _plan(*slots: tuple[int, float, float, float, float]) -> dict[str, Any]:
    return {
        "slots": [
            {
                "start": (T0 + timedelta(hours=h)).isoformat(),
                "end": (T0 + timedelta(hours=h + 1)).isoformat(),
                "charge_kw": c,
                "discharge_kw": dis,
                "soc_start_kwh": s0,
                "soc_end_kwh": s1,
                "reason": f"r{h}",
            }
            for h, c, dis, s0, s1 in slots
        ]
    }


def test_next_action_follows_the_live_state() -> None:
    plan = _plan((0, 0, 5, 30, 25), (1, 7, 0, 25, 32))
    assert next_action(plan, T0, Live())["action"] == "discharge"
    assert next_action(plan, T0, Live(plugged=False))["action"] == "unplugged"
    outage = next_action(plan, T0, Live(power_w=-3000, grid_outage=True))
    assert outage == {
        "action": "backup",
        "at": T0.isoformat(),
        "power_w": -3000.0,
        "reason": "grid outage: powering the home",
    }
    hold = Override("o1", "car", OverrideKind.HOLD, T0, T0 + timedelta(hours=2))
    got = next_action(plan, T0, Live(power_w=0.0, override=hold))
    assert got["action"] == "hold" and got["power_w"] == 0.0 and "hold until" in got["reason"]
    release = Override("o2", "car", OverrideKind.RELEASE, T0, T0 + timedelta(hours=2))
    assert next_action(plan, T0, Live(power_w=11000, override=release))["action"] == "release"
    charge = Override("o3", "car", OverrideKind.CHARGE_NOW, T0, T0 + timedelta(hours=2))
    assert next_action(plan, T0, Live(override=charge))["action"] == "charge"
    expired = Override("o4", "car", OverrideKind.HOLD, T0 - timedelta(hours=3), T0)
    assert next_action(plan, T0, Live(override=expired))["action"] == "discharge"


def test_time_to_target_follows_the_car_not_only_the_plan() -> None:
    # The plan charges 30 -> 48 kWh (50 -> 80 %) in hour 1.
    plan = _plan((0, 0, 0, 30, 30), (1, 18, 0, 30, 48))
    assert minutes_to_target(plan, 50.0, 80.0, 60.0, T0, Live()) == 120.0
    # The car is 10 % further than the plan thought: it gets there 20 minutes earlier.
    assert minutes_to_target(plan, 60.0, 80.0, 60.0, T0, Live()) == pytest.approx(100.0)
    assert minutes_to_target(plan, 50.0, 80.0, 60.0, T0, Live(plugged=False)) is None
    # No plan (or it never gets there): the power it charges at now.
    assert minutes_to_target(None, 50.0, 80.0, 60.0, T0, Live(power_w=11400)) == pytest.approx(
        18.0 / (11.4 * 0.95) * 60, abs=0.1
    )
    assert minutes_to_target(None, 50.0, 80.0, 60.0, T0, Live(power_w=0.0)) is None


def test_departure_shows_what_was_configured_or_set(cfg: Config, policy: Policy) -> None:
    assert departure_hhmm(cfg, policy, "car", T0) == "18:15"  # Monday noon: tonight's
    assert departure_hhmm(cfg, policy, "car", T0 + timedelta(hours=8)) == "07:30"
    policy.set_preference("departure_time", "06:45", "car")
    assert departure_hhmm(cfg, policy, "car", T0) == "06:45"


@pytest.mark.parametrize(
    ("prices", "label"),
    [
        (
            {
                "source": "tariff",
                "tariff": [{"start": "00:00", "end": "00:00", "import_per_kwh": 0.3}],
            },
            "Time-of-use tariff (1 period)",
        ),
        ({"source": "entsoe", "area": "DE-LU"}, "ENTSO-E day-ahead, DE-LU"),
        ({"source": "nordpool", "area": "SE3"}, "Nord Pool day-ahead, SE3"),
        ({"source": "octopus", "area": "C"}, "Octopus Agile, region C"),
        ({"source": "csv", "csv_file": "/x/prices.csv"}, "CSV file prices.csv"),
        ({"source": "mqtt", "mqtt_topic": "home/prices"}, "Prices from MQTT (home/prices)"),
        ({"source": "awattar"}, "aWATTar day-ahead"),
    ],
)
def test_price_source_labels_read_well(prices: dict[str, Any], label: str) -> None:
    assert source_label(parse_config({"prices": prices}).prices) == label
