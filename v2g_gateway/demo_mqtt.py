"""The demo and MQTT: nothing on a broker unless asked, and nothing left behind when asked.

Without `--mqtt` the demo's gateway has no broker: the outage is seen from the charger's voltage
and the demand-response event goes to the gateway's command handler with the payload a user
publishes on `set/demand_response`. With `--mqtt HOST[:PORT]` both go over that broker like in a
real home, Home Assistant sees the demo, and at exit every retained topic the demo made there
(its state topics, its discovery configs, the simulated grid meter) is deleted.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import aiomqtt

from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.errors import ConfigError
from v2g_gateway.mqtt.commands import Commands
from v2g_gateway.mqtt.topics import Topics
from v2g_gateway.store import Store

CLEANUP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int

    def __str__(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{shown}:{self.port}"


def parse_broker(text: str) -> Broker:
    """`HOST`, `HOST:PORT` or `[IPv6]:PORT`; port 1883 when not given."""
    host, port = text.strip(), "1883"
    if host.startswith("["):
        inside, _, rest = host[1:].partition("]")
        host = inside
        if rest:
            if not rest.startswith(":"):
                raise ConfigError("--mqtt", None, f"expected [ADDRESS]:PORT, got {text!r}")
            port = rest[1:]
    elif host.count(":") == 1:
        host, port = host.split(":")
    if not host:
        raise ConfigError("--mqtt", None, f"no host in {text!r} (HOST or HOST:PORT)")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError("--mqtt", None, f"port must be 1-65535, got {port!r}")
    return Broker(host, int(port))


def dr_payload(event_id: str, start: datetime, end: datetime, power_w: float) -> bytes:
    """The documented `set/demand_response` command (docs/mqtt.md)."""
    body = {
        "event_id": event_id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "power_w": power_w,
        "request_id": event_id,
    }
    return json.dumps(body).encode()


class InProcessAnnouncer:
    """No broker: the same payload into the same command handler the bridge would call."""

    def __init__(self, cfg: Config, store: Store, policy: Policy, clock: Clock) -> None:
        self._commands = Commands(cfg, store, policy, clock)

    async def __call__(self, event_id: str, start: datetime, end: datetime, power_w: float) -> None:
        await self._commands.handle("demand_response", dr_payload(event_id, start, end, power_w))


class MqttAnnouncer:
    """A broker: published on the gateway's set topic, as an aggregator or a user's system does."""

    def __init__(self, broker: Broker, topics: Topics) -> None:
        self._broker = broker
        self._topic = topics.set("demand_response")

    async def __call__(self, event_id: str, start: datetime, end: datetime, power_w: float) -> None:
        async with aiomqtt.Client(
            self._broker.host, self._broker.port, identifier=f"v2g-demo-dr-{uuid.uuid4().hex[:8]}"
        ) as client:
            await client.publish(self._topic, dr_payload(event_id, start, end, power_w), qos=1)


def _ours(topic: str, topics: Topics, gateway_id: str) -> bool:
    if topic.startswith(topics.base + "/"):
        return True
    parts = topic.split("/")
    prefix = topics.discovery_prefix.split("/")
    if parts[: len(prefix)] != prefix or len(parts) != len(prefix) + 3 or parts[-1] != "config":
        return False
    return parts[-2].startswith(f"v2g_{gateway_id}_")


async def clear_retained(broker: Broker, cfg: Config) -> list[str]:
    """Delete every retained message the demo left: its gateway's topics and discovery configs.

    Retained messages are delivered on subscribe; a marker message published after subscribing
    comes back after them, so its arrival means the list is complete.
    """
    topics = Topics.from_config(cfg)
    marker = f"{topics.base}/demo-cleanup/{uuid.uuid4().hex}"
    found: set[str] = set()
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=f"v2g-demo-cleanup-{uuid.uuid4().hex[:8]}"
    ) as client:
        await client.subscribe(f"{topics.base}/#", qos=1)
        await client.subscribe(f"{topics.discovery_prefix}/+/+/config", qos=1)
        await client.publish(marker, b"x", qos=1)
        async with asyncio.timeout(CLEANUP_TIMEOUT_S):
            async for msg in client.messages:
                topic = msg.topic.value
                if topic == marker:
                    break
                if msg.retain and msg.payload and _ours(topic, topics, cfg.gateway.id):
                    found.add(topic)
        for topic in sorted(found):
            await client.publish(topic, b"", qos=1, retain=True)
    return sorted(found)
