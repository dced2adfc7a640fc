"""Topic names in one place, so docs, discovery and the bridge cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from v2g_gateway.config import Config


@dataclass(frozen=True, slots=True)
class Topics:
    """`{prefix}/{gateway}/...`: the prefix and gateway id keep many gateways apart on one broker."""

    base: str
    discovery_prefix: str

    @classmethod
    def from_config(cls, cfg: Config) -> Topics:
        prefix = cfg.mqtt.topic_prefix.strip("/")
        return cls(f"{prefix}/{cfg.gateway.id}", cfg.mqtt.discovery_prefix.strip("/"))

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def gateway(self) -> str:
        return f"{self.base}/gateway"

    @property
    def prices(self) -> str:
        return f"{self.base}/prices"

    @property
    def plan(self) -> str:
        return f"{self.base}/plan"

    @property
    def last_command(self) -> str:
        """The latest command's result, retained (Home Assistant's "Last command" sensor)."""
        return f"{self.base}/last_command"

    @property
    def set_prefix(self) -> str:
        return f"{self.base}/set/"

    @property
    def set_filter(self) -> str:
        return f"{self.base}/set/#"

    @property
    def reply_prefix(self) -> str:
        """The only place an MQTT 5 Response Topic may point (not state, not `set/`)."""
        return f"{self.base}/reply/"

    def charger(self, charger_id: str) -> str:
        return f"{self.base}/charger/{charger_id}"

    def vehicle(self, vehicle_id: str) -> str:
        return f"{self.base}/vehicle/{vehicle_id}"

    def vehicle_plan(self, vehicle_id: str) -> str:
        return f"{self.base}/plan/{vehicle_id}"

    def set(self, command: str) -> str:
        return f"{self.base}/set/{command}"
