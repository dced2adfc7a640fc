"""The body of each retained topic, read from one store snapshot (the bridge decides when).

Kept apart from bridge.py, which holds the broker link; a view that fails here only loses its own
topic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from v2g_gateway import __version__
from v2g_gateway.config import Config
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.model import ChargerState, Snapshot, VehicleState
from v2g_gateway.mqtt.discovery import Discovery
from v2g_gateway.mqtt.payloads import charger_body, vehicle_body
from v2g_gateway.store import Store

View = Callable[[], dict[str, Any]]


class Bodies:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        policy: Policy,
        discovery: Discovery,
        *,
        prices_view: View | None,
        health_view: View | None,
        vehicle_extra: dict[str, dict[str, float]],
        last_command: Callable[[], dict[str, Any] | None],
        uptime_s: Callable[[], float],
    ) -> None:
        self._cfg = cfg
        self._store = store
        self._policy = policy
        self._discovery = discovery
        self._prices_view = prices_view
        self._health_view = health_view
        self._vehicle_extra = vehicle_extra  # the bridge's own dict: odometer, range
        self._last_command = last_command
        self._uptime_s = uptime_s

    def render(self, kind: str, key: str | None, snap: Snapshot) -> dict[str, Any] | None:
        """The JSON body of one retained topic."""
        if kind == "charger" and key is not None:
            ch = snap.chargers.get(key) or ChargerState(charger_id=key)
            return charger_body(self._cfg, ch, snap.grid_outage, snap)
        if kind == "vehicle" and key is not None:
            v = snap.vehicles.get(key) or VehicleState(vehicle_id=key)
            body = vehicle_body(self._cfg, self._policy, v, snap, self._store.load_plan(key))
            extra = self._vehicle_extra.get(key, {})
            body["odometer_km"] = extra.get("odometer_km")
            body["range_km"] = extra.get("range_km")
            return body
        if kind == "plan" and key is not None:
            return self._store.load_plan(key) or {
                "vehicle_id": key,
                "created_at": None,
                "cost": None,
                "revenue": None,
                "target_at_risk": None,
                "slots": [],
            }
        if kind == "plans":
            plans = {v.id: self._store.load_plan(v.id) for v in self._cfg.vehicles}
            return {"gateway_id": self._cfg.gateway.id, "vehicles": plans}
        if kind == "prices" and self._prices_view is not None:
            return {**self._prices_view(), "updated_at": snap.taken_at.isoformat()}
        if kind == "gateway":
            return self._gateway_body(snap)
        if kind == "discovery" and key is not None:
            return self._discovery.configs(snap).get(key)
        if kind == "last_command":
            return self._last_command()
        return None

    def _gateway_body(self, snap: Snapshot) -> dict[str, Any]:
        health = self._health_view() if self._health_view is not None else {}
        return {
            "gateway_id": self._cfg.gateway.id,
            "version": __version__,
            "uptime_s": health.get("uptime_s", self._uptime_s()),
            "grid_outage": snap.grid_outage,
            "v2g_enabled": bool(self._policy.preference("v2g_enabled")),
            "chargers": sorted(c.id for c in self._cfg.chargers),
            "vehicles": sorted(v.id for v in self._cfg.vehicles),
            "health": health,
            "updated_at": snap.taken_at.isoformat(),
        }
