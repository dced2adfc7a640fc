"""Home Assistant entities as tables: one frozen description per entity, per device kind.

Each entity means what it says: a text sensor never shows a literal "None" (a number may: Home
Assistant reads "None" as unknown), the discharging sensor has no "battery_charging" class (that
would read "Charging"), sliders span what the gateway accepts, and every control uses the
override names of the safety rules (hold = 0 W, release = back to the charger).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from v2g_gateway.config import Config, VehicleSection

MODE_OPTIONS = ["auto", "charge_now", "discharge_now", "hold", "release"]
HHMM_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9])?$"
ON_OFF = {"payload_on": True, "payload_off": False}

# Which retained topic an entity reads: gateway, prices, last_command, charger, vehicle, plan.
Fields = Mapping[str, Any] | Callable[[Config, VehicleSection | None], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Entity:
    component: str  # sensor, binary_sensor, switch, button, select, number, text
    key: str  # the unique id's last part
    name: str
    state: str | None = None  # the topic it reads (None: a button)
    command: str | None = None  # below set/, with {id} for the charger or vehicle
    fields: Fields = field(default_factory=dict)
    attributes: bool = False  # the whole state body (or `attributes_template`) as attributes
    attributes_template: str | None = None


def value(path: str) -> str:
    return "{{ value_json." + path + " }}"


def text(path: str, missing: str) -> str:
    """A text state: the field, or a word when it is null."""
    return f"{{{{ value_json.{path} if value_json.{path} is not none else '{missing}' }}}}"


def _price(side: str) -> Fields:
    key = f"{side}_price_per_kwh"
    return lambda cfg, _v: {
        # No price now: None (unknown in Home Assistant), never the last price shown as current.
        "value_template": f"{{{{ value_json.current.{key} if value_json.current else None }}}}",
        "unit_of_measurement": f"{cfg.prices.currency}/kWh",
        "device_class": "monetary",
    }


GATEWAY: tuple[Entity, ...] = (
    Entity(
        "binary_sensor",
        "grid_outage",
        "Grid outage",
        "gateway",
        fields={"value_template": value("grid_outage"), **ON_OFF, "device_class": "problem"},
    ),
    Entity("sensor", "import_price", "Import price", "prices", fields=_price("import")),
    Entity("sensor", "export_price", "Export price", "prices", fields=_price("export")),
    Entity(
        "sensor",
        "price_source",
        "Price source",
        "prices",
        fields={
            "value_template": "{{ value_json.status.label if value_json.status is mapping "
            "and value_json.status.label else 'unknown' }}",
            "icon": "mdi:cash-clock",
            "entity_category": "diagnostic",
        },
        attributes=True,
        attributes_template="{{ value_json.status | tojson }}",
    ),
    Entity(
        "sensor",
        "last_command",
        "Last command",
        "last_command",
        fields={
            # "refused: <why>" or "accepted: ..."; the attributes hold the whole result.
            "value_template": "{{ (value_json.outcome ~ ': ' ~ value_json.message)[:255] }}",
            "icon": "mdi:console",
        },
        attributes=True,
    ),
    Entity(
        "sensor",
        "uptime",
        "Uptime",
        "gateway",
        fields={
            "value_template": value("uptime_s"),
            "unit_of_measurement": "s",
            "device_class": "duration",
            "entity_category": "diagnostic",
        },
    ),
    Entity(
        "switch",
        "v2g_enabled",
        "V2G enabled",
        "gateway",
        command="preference/v2g_enabled",
        fields={
            "value_template": value("v2g_enabled"),
            "state_on": True,
            "state_off": False,
            "payload_on": "ON",
            "payload_off": "OFF",
        },
    ),
)

CHARGER: tuple[Entity, ...] = (
    Entity(
        "sensor",
        "power",
        "Power",
        "charger",
        fields={
            "value_template": value("power_w"),
            "unit_of_measurement": "W",
            "device_class": "power",
            "state_class": "measurement",
        },
    ),
    *(
        Entity(
            "sensor",
            f"energy_{side}",
            f"Energy {side}",
            "charger",
            fields={
                "value_template": value(f"energy_{side}_wh"),
                "unit_of_measurement": "Wh",
                "device_class": "energy",
                "state_class": "total_increasing",
            },
        )
        for side in ("import", "export")
    ),
    Entity(
        "sensor",
        "status",
        "Status",
        "charger",
        fields={
            "value_template": "{{ value_json.status if value_json.status is not none else "
            "('Unknown' if value_json.online else 'Offline') }}"
        },
    ),
    Entity(
        "binary_sensor",
        "online",
        "Online",
        "charger",
        fields={
            "value_template": value("online"),
            **ON_OFF,
            "device_class": "connectivity",
            "entity_category": "diagnostic",
        },
    ),
    Entity(
        "binary_sensor",
        "plugged",
        "Plugged in",
        "charger",
        fields={"value_template": value("plugged"), **ON_OFF, "device_class": "plug"},
    ),
    Entity(
        "binary_sensor",
        "discharging",
        "Discharging",
        "charger",
        fields={
            "value_template": value("discharging"),
            **ON_OFF,
            "icon": "mdi:transmission-tower-export",
        },
    ),
    *(
        Entity(
            "button",
            f"{action}_charging",
            f"{action.title()} charging",
            command="charger/{id}/charging",
            fields={"payload_press": action},
        )
        for action in ("start", "stop")
    ),
)


def _slider(key: str) -> Fields:
    def fields(cfg: Config, v: VehicleSection | None) -> Mapping[str, Any]:
        assert v is not None
        lo, hi = (
            (v.min_soc_percent, v.max_soc_percent) if key == "reserve_soc_percent" else (0, 100)
        )
        return {
            "value_template": value(key),
            "min": lo,
            "max": hi,
            "step": 1,
            "unit_of_measurement": "%",
            "mode": "slider",
        }

    return fields


VEHICLE: tuple[Entity, ...] = (
    Entity(
        "sensor",
        "soc",
        "State of charge",
        "vehicle",
        fields={
            "value_template": value("soc_percent"),
            "unit_of_measurement": "%",
            "device_class": "battery",
            "state_class": "measurement",
        },
    ),
    Entity(
        "sensor",
        "power",
        "Power",
        "vehicle",
        fields={
            "value_template": value("power_w"),
            "unit_of_measurement": "W",
            "device_class": "power",
            "state_class": "measurement",
        },
    ),
    Entity(
        "sensor",
        "next_action",
        "Next action",
        "vehicle",
        fields={"value_template": text("next_action.action", "idle")},
        attributes=True,
        attributes_template="{{ value_json.next_action | tojson }}",
    ),
    Entity(
        "sensor",
        "minutes_to_target",
        "Time to target",
        "vehicle",
        fields={
            "value_template": value("minutes_to_target"),
            "unit_of_measurement": "min",
            "device_class": "duration",
        },
    ),
    Entity(
        "sensor",
        "plan_revenue",
        "Plan revenue",
        "plan",
        fields=lambda cfg, _v: {
            "value_template": value("revenue"),
            "unit_of_measurement": cfg.prices.currency,
            "device_class": "monetary",
        },
    ),
    Entity(
        "binary_sensor",
        "plugged",
        "Plugged in",
        "vehicle",
        fields={"value_template": value("plugged"), **ON_OFF, "device_class": "plug"},
    ),
    Entity(
        "binary_sensor",
        "discharging",
        "Discharging",
        "vehicle",
        fields={
            "value_template": value("discharging"),
            **ON_OFF,
            "icon": "mdi:transmission-tower-export",
        },
    ),
    Entity(
        "select",
        "mode",
        "Mode",
        "vehicle",
        command="vehicle/{id}/mode",
        fields={"value_template": value("mode"), "options": MODE_OPTIONS},
    ),
    Entity(
        "number",
        "reserve_soc_percent",
        "Reserve SoC",
        "vehicle",
        command="vehicle/{id}/reserve_soc_percent",
        fields=_slider("reserve_soc_percent"),
    ),
    Entity(
        "number",
        "target_soc_percent",
        "Target SoC",
        "vehicle",
        command="vehicle/{id}/target_soc_percent",
        fields=_slider("target_soc_percent"),
    ),
    *(
        Entity("button", press, name, command="vehicle/{id}/mode", fields={"payload_press": press})
        for press, name in (
            ("charge_now", "Charge now"),
            ("discharge_now", "Discharge now"),
            ("hold", "Hold (pause)"),
            ("release", "Release to charger"),
            ("resume", "Resume"),
        )
    ),
    Entity(
        "text",
        "departure_time",
        "Departure time",
        "vehicle",
        command="vehicle/{id}/departure_time",
        fields={
            "value_template": "{{ value_json.departure_time or '' }}",
            "pattern": HHMM_PATTERN,
            "min": 0,
            "max": 5,
            "mode": "text",
        },
    ),
)

# Only where the car's own topic may report them.
VEHICLE_EXTRAS: tuple[Entity, ...] = tuple(
    Entity(
        "sensor",
        key,
        name,
        "vehicle",
        fields={
            "value_template": value(key),
            "unit_of_measurement": "km",
            "device_class": "distance",
            "icon": icon,
        },
    )
    for key, name, icon in (
        ("odometer_km", "Odometer", "mdi:counter"),
        ("range_km", "Range", "mdi:map-marker-distance"),
    )
)
