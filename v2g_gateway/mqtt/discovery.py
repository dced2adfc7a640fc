"""Home Assistant MQTT discovery: one device per charger, per vehicle and for the gateway.

Every entity reads the retained JSON state topics and shares the gateway's availability topic
(the last will), so Home Assistant greys everything out when the gateway dies. What was announced
is remembered so entities of a charger or vehicle removed from the config can be deleted.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from v2g_gateway import __version__
from v2g_gateway.config import Config
from v2g_gateway.mqtt.topics import Topics

ANNOUNCED_KEY = "mqtt.discovery_topics"
MODE_OPTIONS = ["auto", "charge_now", "discharge_now", "hold", "release"]
HHMM_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9])?$"


def _value(field: str) -> str:
    return "{{ value_json." + field + " }}"


class Discovery:
    def __init__(self, cfg: Config, topics: Topics) -> None:
        self._cfg = cfg
        self._t = topics
        self._gw = cfg.gateway.id

    def _uid(self, *parts: str) -> str:
        return "_".join(["v2g", self._gw, *parts]).replace(".", "_").replace(":", "_")

    def _topic(self, component: str, uid: str) -> str:
        return f"{self._t.discovery_prefix}/{component}/{uid}/config"

    def _common(self, uid: str, name: str, device: dict[str, Any]) -> dict[str, Any]:
        return {
            "unique_id": uid,
            "object_id": uid,
            "name": name,
            "device": device,
            "availability": [
                {
                    "topic": self._t.availability,
                    "payload_available": "online",
                    "payload_not_available": "offline",
                }
            ],
            "origin": {"name": "v2g-gateway", "sw_version": __version__},
        }

    def _gateway_device(self) -> dict[str, Any]:
        return {
            "identifiers": [self._uid("gateway")],
            "name": f"V2G gateway {self._gw}",
            "manufacturer": "v2g-gateway",
            "model": "V2G/V2H gateway",
            "sw_version": __version__,
        }

    def configs(self) -> dict[str, dict[str, Any]]:
        """Discovery topic -> config payload for everything the current config defines."""
        out: dict[str, dict[str, Any]] = {}
        self._gateway(out)
        for c in self._cfg.chargers:
            self._charger(out, c.id)
        for v in self._cfg.vehicles:
            self._vehicle(out, v.id, v.make, v.model)
            if v.soc_topic:
                self._vehicle_extras(out, v.id, v.make, v.model)
        return out

    def _add(
        self,
        out: dict[str, dict[str, Any]],
        component: str,
        uid: str,
        name: str,
        device: dict[str, Any],
        **fields: Any,
    ) -> None:
        out[self._topic(component, uid)] = {**self._common(uid, name, device), **fields}

    def _gateway(self, out: dict[str, dict[str, Any]]) -> None:
        dev = self._gateway_device()
        cur = self._cfg.prices.currency
        self._add(
            out,
            "binary_sensor",
            self._uid("grid_outage"),
            "Grid outage",
            dev,
            state_topic=self._t.gateway,
            value_template=_value("grid_outage"),
            payload_on=True,
            payload_off=False,
            device_class="problem",
        )
        for side in ("import", "export"):
            self._add(
                out,
                "sensor",
                self._uid(f"{side}_price"),
                f"{side.title()} price",
                dev,
                state_topic=self._t.prices,
                value_template="{{ (value_json.current or {})." + side + "_price_per_kwh }}",
                unit_of_measurement=f"{cur}/kWh",
                device_class="monetary",
            )
        self._add(
            out,
            "sensor",
            self._uid("uptime"),
            "Uptime",
            dev,
            state_topic=self._t.gateway,
            value_template=_value("uptime_s"),
            unit_of_measurement="s",
            device_class="duration",
            entity_category="diagnostic",
        )
        self._add(
            out,
            "switch",
            self._uid("v2g_enabled"),
            "V2G enabled",
            dev,
            state_topic=self._t.gateway,
            value_template=_value("v2g_enabled"),
            state_on=True,
            state_off=False,
            command_topic=self._t.set("preference/v2g_enabled"),
            payload_on="ON",
            payload_off="OFF",
        )

    def _charger(self, out: dict[str, dict[str, Any]], cid: str) -> None:
        dev = {
            "identifiers": [self._uid("charger", cid)],
            "name": f"Charger {cid}",
            "manufacturer": "OCPP 2.0.1 charger",
            "model": "bidirectional charger",
            "via_device": self._uid("gateway"),
        }
        st = self._t.charger(cid)
        u = partial(self._uid, "charger", cid)
        self._add(
            out,
            "sensor",
            u("power"),
            "Power",
            dev,
            state_topic=st,
            value_template=_value("power_w"),
            unit_of_measurement="W",
            device_class="power",
            state_class="measurement",
        )
        for side in ("import", "export"):
            self._add(
                out,
                "sensor",
                u(f"energy_{side}"),
                f"Energy {side}",
                dev,
                state_topic=st,
                value_template=_value(f"energy_{side}_wh"),
                unit_of_measurement="Wh",
                device_class="energy",
                state_class="total_increasing",
            )
        self._add(
            out,
            "sensor",
            u("status"),
            "Status",
            dev,
            state_topic=st,
            value_template=_value("status"),
        )
        self._add(
            out,
            "binary_sensor",
            u("online"),
            "Online",
            dev,
            state_topic=st,
            value_template=_value("online"),
            payload_on=True,
            payload_off=False,
            device_class="connectivity",
            entity_category="diagnostic",
        )
        self._add(
            out,
            "binary_sensor",
            u("plugged"),
            "Plugged in",
            dev,
            state_topic=st,
            value_template=_value("plugged"),
            payload_on=True,
            payload_off=False,
            device_class="plug",
        )
        self._add(
            out,
            "binary_sensor",
            u("discharging"),
            "Discharging",
            dev,
            state_topic=st,
            value_template=_value("discharging"),
            payload_on=True,
            payload_off=False,
            device_class="battery_charging",
            icon="mdi:transmission-tower-export",
        )
        for action in ("start", "stop"):
            self._add(
                out,
                "button",
                u(f"{action}_charging"),
                f"{action.title()} charging",
                dev,
                command_topic=self._t.set(f"charger/{cid}/charging"),
                payload_press=action,
            )

    def _vehicle_device(self, vid: str, make: str | None, model: str | None) -> dict[str, Any]:
        return {
            "identifiers": [self._uid("vehicle", vid)],
            "name": f"Vehicle {vid}",
            "manufacturer": make or "unknown",
            "model": model or "EV",
            "via_device": self._uid("gateway"),
        }

    def _vehicle(
        self, out: dict[str, dict[str, Any]], vid: str, make: str | None, model: str | None
    ) -> None:
        dev = self._vehicle_device(vid, make, model)
        st = self._t.vehicle(vid)
        cur = self._cfg.prices.currency
        u = partial(self._uid, "vehicle", vid)
        self._add(
            out,
            "sensor",
            u("soc"),
            "State of charge",
            dev,
            state_topic=st,
            value_template=_value("soc_percent"),
            unit_of_measurement="%",
            device_class="battery",
            state_class="measurement",
        )
        self._add(
            out,
            "sensor",
            u("power"),
            "Power",
            dev,
            state_topic=st,
            value_template=_value("power_w"),
            unit_of_measurement="W",
            device_class="power",
            state_class="measurement",
        )
        self._add(
            out,
            "sensor",
            u("next_action"),
            "Next action",
            dev,
            state_topic=st,
            value_template=_value("next_action.action"),
            json_attributes_topic=st,
            json_attributes_template="{{ value_json.next_action | tojson }}",
        )
        self._add(
            out,
            "sensor",
            u("minutes_to_target"),
            "Time to target",
            dev,
            state_topic=st,
            value_template=_value("minutes_to_target"),
            unit_of_measurement="min",
            device_class="duration",
        )
        self._add(
            out,
            "sensor",
            u("plan_revenue"),
            "Plan revenue",
            dev,
            state_topic=self._t.vehicle_plan(vid),
            value_template=_value("revenue"),
            unit_of_measurement=cur,
            device_class="monetary",
        )
        self._add(
            out,
            "binary_sensor",
            u("plugged"),
            "Plugged in",
            dev,
            state_topic=st,
            value_template=_value("plugged"),
            payload_on=True,
            payload_off=False,
            device_class="plug",
        )
        self._add(
            out,
            "binary_sensor",
            u("discharging"),
            "Discharging",
            dev,
            state_topic=st,
            value_template=_value("discharging"),
            payload_on=True,
            payload_off=False,
            icon="mdi:transmission-tower-export",
        )
        self._add(
            out,
            "select",
            u("mode"),
            "Mode",
            dev,
            state_topic=st,
            value_template=_value("mode"),
            command_topic=self._t.set(f"vehicle/{vid}/mode"),
            options=MODE_OPTIONS,
        )
        for key, name in (("reserve_soc_percent", "Reserve"), ("target_soc_percent", "Target")):
            self._add(
                out,
                "number",
                u(key),
                f"{name} SoC",
                dev,
                state_topic=st,
                value_template=_value(key),
                command_topic=self._t.set(f"vehicle/{vid}/{key}"),
                min=0,
                max=100,
                step=1,
                unit_of_measurement="%",
                mode="slider",
            )
        for press, name in (
            ("charge_now", "Charge now"),
            ("discharge_now", "Discharge now"),
            ("hold", "Hold (pause)"),
            ("release", "Release to charger"),
            ("resume", "Resume"),
        ):
            self._add(
                out,
                "button",
                u(press),
                name,
                dev,
                command_topic=self._t.set(f"vehicle/{vid}/mode"),
                payload_press=press,
            )
        self._add(
            out,
            "text",
            u("departure_time"),
            "Departure time",
            dev,
            state_topic=st,
            value_template="{{ value_json.departure_time or '' }}",
            command_topic=self._t.set(f"vehicle/{vid}/departure_time"),
            pattern=HHMM_PATTERN,
            min=0,
            max=5,
            mode="text",
        )

    def _vehicle_extras(
        self, out: dict[str, dict[str, Any]], vid: str, make: str | None, model: str | None
    ) -> None:
        """Odometer and range exist only where the car's own topic may report them."""
        dev = self._vehicle_device(vid, make, model)
        st = self._t.vehicle(vid)
        for key, name, icon in (
            ("odometer_km", "Odometer", "mdi:counter"),
            ("range_km", "Range", "mdi:map-marker-distance"),
        ):
            self._add(
                out,
                "sensor",
                self._uid("vehicle", vid, key),
                name,
                dev,
                state_topic=st,
                value_template=_value(key),
                unit_of_measurement="km",
                device_class="distance",
                icon=icon,
            )
