"""Broker connection settings from [mqtt]: protocol, TLS, credentials, last will."""

from __future__ import annotations

import random
import ssl
from dataclasses import dataclass
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from v2g_gateway.config import Config, read_secret
from v2g_gateway.mqtt.topics import Topics

# With MQTT 5 the broker is told the largest packet the gateway takes; bigger ones it drops
# before they cost the gateway memory. Between max_payload_bytes and this, a command still
# arrives and gets its "too large" answer.
PACKET_SIZE_FACTOR = 16
MQTT_MAX_PACKET = 268_435_455  # the protocol's own limit


def connect_properties(cfg: Config) -> Properties | None:
    if cfg.mqtt.protocol != "5":
        return None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.MaximumPacketSize = min(MQTT_MAX_PACKET, cfg.mqtt.max_payload_bytes * PACKET_SIZE_FACTOR)
    return props


@dataclass(frozen=True, slots=True)
class Backoff:
    """Jittered exponential reconnect delays; reset after a successful connection."""

    first_s: float = 1.0
    max_s: float = 60.0

    def delay(self, failures: int) -> float:
        base = min(self.max_s, self.first_s * 2 ** max(0, failures - 1))
        return float(base * random.uniform(0.5, 1.0))


def client_options(cfg: Config, topics: Topics) -> dict[str, Any]:
    """Keyword arguments for aiomqtt.Client; reads the password once (ConfigError if unreadable)."""
    m = cfg.mqtt
    password = read_secret("[mqtt]", "password", m.password, m.password_file, m.credential)
    tls: aiomqtt.TLSParameters | None = None
    if m.tls or m.ca_file is not None:
        tls = aiomqtt.TLSParameters(
            ca_certs=None if m.ca_file is None else str(m.ca_file),
            certfile=None if m.cert_file is None else str(m.cert_file),
            keyfile=None if m.key_file is None else str(m.key_file),
            cert_reqs=ssl.CERT_REQUIRED,
        )
    return {
        "hostname": m.host,
        "port": m.port,
        "username": m.username,
        "password": password,
        "identifier": f"v2g-gateway-{cfg.gateway.id}",
        "protocol": aiomqtt.ProtocolVersion.V5
        if m.protocol == "5"
        else aiomqtt.ProtocolVersion.V311,
        "will": aiomqtt.Will(topics.availability, b"offline", qos=1, retain=True),
        "tls_params": tls,
        "keepalive": 30,
        "timeout": 10.0,
        "clean_session": True if m.protocol != "5" else None,
        "properties": connect_properties(cfg),
    }


__all__ = ["Backoff", "client_options"]
