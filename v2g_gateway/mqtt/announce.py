"""What the bridge says first on each connection: discovery configs, and deletions.

A charger or vehicle removed from the config leaves retained messages behind on the broker:
its Home Assistant configs and its own state topics. Both are remembered in the store when
announced, and what is no longer configured is replaced by an empty retained message, which
deletes it (and its entities in Home Assistant).
"""

from __future__ import annotations

import asyncio

import aiomqtt
import structlog

from v2g_gateway.config import Config
from v2g_gateway.errors import StoreError
from v2g_gateway.model import Snapshot
from v2g_gateway.mqtt.discovery import ANNOUNCED_KEY, Discovery
from v2g_gateway.mqtt.payloads import encode
from v2g_gateway.mqtt.topics import Topics
from v2g_gateway.store import Store

log = structlog.get_logger(__name__)

STATE_TOPICS_KEY = "mqtt.state_topics"


def state_topics(cfg: Config, topics: Topics) -> set[str]:
    """The retained state topics of the configured chargers and vehicles."""
    out = {topics.charger(c.id) for c in cfg.chargers}
    for v in cfg.vehicles:
        out |= {topics.vehicle(v.id), topics.vehicle_plan(v.id)}
    return out


def _remembered(store: Store, key: str) -> set[str]:
    old = store.kv_get(key)
    return {str(t) for t in old} if isinstance(old, list) else set()


async def announce(
    client: aiomqtt.Client,
    cfg: Config,
    store: Store,
    discovery: Discovery,
    topics: Topics,
    snapshot: Snapshot,
) -> None:
    """Publish discovery configs; delete (empty retained) what is no longer configured."""
    configs = discovery.configs(snapshot) if cfg.mqtt.homeassistant_discovery else {}
    gone = _remembered(store, ANNOUNCED_KEY) - set(configs)
    current = state_topics(cfg, topics)
    # Before the list was kept, the store's own chargers and vehicles say what was published.
    known = {topics.charger(c) for c in snapshot.chargers}
    for v in snapshot.vehicles:
        known |= {topics.vehicle(v), topics.vehicle_plan(v)}
    gone |= (_remembered(store, STATE_TOPICS_KEY) | known) - current
    for topic in sorted(gone):
        await client.publish(topic, b"", qos=1, retain=True)
    await asyncio.gather(
        *(client.publish(t, encode(c), qos=1, retain=True) for t, c in configs.items())
    )
    try:
        store.kv_set(ANNOUNCED_KEY, sorted(configs))
        store.kv_set(STATE_TOPICS_KEY, sorted(current))
    except StoreError as exc:
        log.error("mqtt.discovery_not_remembered", error=str(exc))
