"""Home Assistant MQTT discovery: one device per charger, per vehicle and for the gateway.

Every entity (the tables in entities.py) reads the retained JSON state topics and shares the
gateway's availability topic (the last will), so Home Assistant greys everything out when the
gateway dies. What was announced is remembered so entities of a charger or vehicle removed from
the config can be deleted. A charger's device carries the vendor, model, serial and firmware of
its BootNotification, so the configs are sent again after each boot.
"""

from __future__ import annotations

from typing import Any

from v2g_gateway import __version__
from v2g_gateway.config import Config, VehicleSection
from v2g_gateway.model import ChargerState, Snapshot
from v2g_gateway.mqtt.entities import (
    CHARGER,
    GATEWAY,
    HHMM_PATTERN,
    MODE_OPTIONS,
    VEHICLE,
    VEHICLE_EXTRAS,
    Entity,
)
from v2g_gateway.mqtt.topics import Topics

ANNOUNCED_KEY = "mqtt.discovery_topics"
__all__ = ["ANNOUNCED_KEY", "HHMM_PATTERN", "MODE_OPTIONS", "Discovery"]


class Discovery:
    def __init__(self, cfg: Config, topics: Topics) -> None:
        self._cfg = cfg
        self._t = topics
        self._gw = cfg.gateway.id

    def _uid(self, *parts: str) -> str:
        return "_".join(["v2g", self._gw, *parts]).replace(".", "_").replace(":", "_")

    def _topic(self, component: str, uid: str) -> str:
        return f"{self._t.discovery_prefix}/{component}/{uid}/config"

    def configs(self, snapshot: Snapshot | None = None) -> dict[str, dict[str, Any]]:
        """Discovery topic -> config payload for everything the current config defines; a
        snapshot adds what each charger said about itself in its BootNotification."""
        out: dict[str, dict[str, Any]] = {}
        gateway = self._gateway_device()
        for e in GATEWAY:
            self._add(out, e, (), gateway, None, None)
        for c in self._cfg.chargers:
            info = snapshot.chargers.get(c.id) if snapshot is not None else None
            dev = self._charger_device(c.id, info)
            for e in CHARGER:
                self._add(out, e, ("charger", c.id), dev, c.id, None)
        for v in self._cfg.vehicles:
            dev = self._vehicle_device(v)
            for e in VEHICLE + (VEHICLE_EXTRAS if v.soc_topic else ()):
                self._add(out, e, ("vehicle", v.id), dev, v.id, v)
        return out

    def charger_topics(self, charger_id: str) -> list[str]:
        """The discovery topics of one charger's entities (sent again after its boot)."""
        uid = self._uid("charger", charger_id)
        return [t for t in self.configs() if f"/{uid}_" in t]

    # ------------------------------------------------------------------ building

    def _state_topic(self, state: str, key: str | None) -> str:
        t = self._t
        if state == "gateway":
            return t.gateway
        if state == "prices":
            return t.prices
        if state == "last_command":
            return t.last_command
        assert key is not None
        if state == "charger":
            return t.charger(key)
        if state == "vehicle":
            return t.vehicle(key)
        if state == "plan":
            return t.vehicle_plan(key)
        raise ValueError(f"unknown state topic kind {state!r}")

    def _add(
        self,
        out: dict[str, dict[str, Any]],
        e: Entity,
        prefix: tuple[str, ...],
        device: dict[str, Any],
        key: str | None,
        vcfg: VehicleSection | None,
    ) -> None:
        uid = self._uid(*prefix, e.key)
        body: dict[str, Any] = {
            "unique_id": uid,
            "object_id": uid,
            "name": e.name,
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
        if e.state is not None:
            body["state_topic"] = self._state_topic(e.state, key)
            if e.attributes:
                body["json_attributes_topic"] = body["state_topic"]
                if e.attributes_template:
                    body["json_attributes_template"] = e.attributes_template
        if e.command is not None:
            body["command_topic"] = self._t.set(e.command.format(id=key))
        body.update(e.fields(self._cfg, vcfg) if callable(e.fields) else e.fields)
        out[self._topic(e.component, uid)] = body

    def _gateway_device(self) -> dict[str, Any]:
        return {
            "identifiers": [self._uid("gateway")],
            "name": f"V2G gateway {self._gw}",
            "manufacturer": "v2g-gateway",
            "model": "V2G/V2H gateway",
            "sw_version": __version__,
        }

    def _charger_device(self, cid: str, info: ChargerState | None) -> dict[str, Any]:
        dev: dict[str, Any] = {
            "identifiers": [self._uid("charger", cid)],
            "name": f"Charger {cid}",
            "manufacturer": (info.vendor if info else None) or "OCPP 2.0.1 charger",
            "model": (info.model if info else None) or "bidirectional charger",
            "via_device": self._uid("gateway"),
        }
        if info is not None and info.serial:
            dev["serial_number"] = info.serial
        if info is not None and info.firmware:
            dev["sw_version"] = info.firmware
        return dev

    def _vehicle_device(self, v: VehicleSection) -> dict[str, Any]:
        return {
            "identifiers": [self._uid("vehicle", v.id)],
            "name": f"Vehicle {v.id}",
            "manufacturer": v.make or "unknown",
            "model": v.model or "EV",
            "via_device": self._uid("gateway"),
        }
