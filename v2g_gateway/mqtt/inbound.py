"""What an incoming command must pass before it runs, and where its answer may go.

Anyone the broker lets publish under `set/` reaches these checks, so they are cheap and come
before any parsing: the size first (a 64 MB payload is never decoded), then the optional
allow-list of clients. The answer goes to the events topic, and to an MQTT 5 Response Topic only
under `{prefix}/{gateway}/reply/`: otherwise a requester could make the gateway publish on any
topic, its own availability and `set/` included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from v2g_gateway import json_limits
from v2g_gateway.config import Config
from v2g_gateway.model import Notification
from v2g_gateway.mqtt.payloads import event_body
from v2g_gateway.mqtt.topics import Topics

# User properties that may name the sender (set by the client, or by a broker plugin that
# stamps them); compared with [mqtt] command_clients.
CLIENT_PROPERTIES = ("client_id", "username")
MAX_REQUEST_ID = 200
MAX_TOPIC = 256


def request_id_of(payload: bytes, max_bytes: int) -> Any:
    """A JSON command's `request_id` (a short string or a safe integer), to echo; else None."""
    if len(payload) > max_bytes:
        return None
    try:
        body = json_limits.loads(payload)
    except ValueError:
        return None
    rid = body.get("request_id") if isinstance(body, dict) else None
    if isinstance(rid, str) and len(rid) <= MAX_REQUEST_ID:
        return rid
    if isinstance(rid, int) and not isinstance(rid, bool) and abs(rid) < 2**53:
        return rid
    return None


def user_properties(props: Properties | None) -> list[tuple[str, str]]:
    raw = getattr(props, "UserProperty", None) if props is not None else None
    if not isinstance(raw, list):
        return []
    return [(str(k), str(v)) for k, v in raw if isinstance(k, str)]


def refusal(cfg: Config, payload: bytes, props: Properties | None) -> str | None:
    """Why a command is refused before it is read, or None."""
    limit = cfg.mqtt.max_payload_bytes
    if len(payload) > limit:
        return (
            f"payload too large ({len(payload)} bytes, at most {limit}: [mqtt] max_payload_bytes)"
        )
    allowed = cfg.mqtt.command_clients
    if not allowed:
        return None
    named = [v for k, v in user_properties(props) if k in CLIENT_PROPERTIES]
    if not named:
        return (
            "commands are restricted to [mqtt] command_clients and this one carries no "
            "client_id or username user property"
        )
    if not any(n in allowed for n in named):
        return f"client {named[0][:60]!r} is not in [mqtt] command_clients"
    return None


def response_topic(topics: Topics, props: Properties | None) -> tuple[str | None, str | None]:
    """(topic to answer on as well, or None; why a Response Topic was not used, or None)."""
    raw = getattr(props, "ResponseTopic", None) if props is not None else None
    if not raw:
        return None, None
    topic = str(raw)
    prefix = topics.reply_prefix
    if (
        topic.startswith(prefix)
        and len(topic) > len(prefix)
        and len(topic) <= MAX_TOPIC
        and not any(c in topic for c in "+#\0")
    ):
        return topic, None
    return None, f"response topic {topic[:80]!r} not used: answers go only under {prefix}"


def result_event(
    command: str,
    kind: str,
    level: str,
    message: str,
    data: dict[str, Any],
    request_id: Any,
    now: datetime,
) -> dict[str, Any]:
    """The answer to one command, as sent on `events` (and the Response Topic)."""
    vehicle = data.get("vehicle") if isinstance(data.get("vehicle"), str) else None
    charger = data.get("charger") if isinstance(data.get("charger"), str) else None
    note = Notification(
        kind=kind,
        message=message,
        at=now,
        level=level,
        charger_id=charger,
        vehicle_id=vehicle,
        data=data,
    )
    ok = kind == "command_accepted"
    return event_body(note, ok=ok, command=command, request_id=request_id)


def reply_properties(props: Properties | None) -> Properties | None:
    """The request's Correlation Data on the answer (MQTT 5), so a client can match it."""
    correlation = getattr(props, "CorrelationData", None) if props is not None else None
    if correlation is None:
        return None
    reply = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    reply.CorrelationData = correlation
    return reply


__all__ = [
    "refusal",
    "reply_properties",
    "request_id_of",
    "response_topic",
    "result_event",
    "user_properties",
]
