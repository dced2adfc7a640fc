"""The web app's changes: overrides and preferences, through the same command parser and Policy
as MQTT's `set/override` and `set/preference`, so the rules, the error sentences, the stored
result and the notifications are the same whichever face the user touched."""

from __future__ import annotations

from typing import Any

from v2g_gateway.dispatch.policy import PolicyError
from v2g_gateway.mqtt.commands import CommandError, Commands

# The web's words for the actions; "automatic" ends any override (Policy.cancel).
ACTIONS = ("charge_now", "discharge_now", "hold", "pause", "release", "automatic")


class ActionError(ValueError):
    """A refused change; the message is the sentence shown next to the control."""


def override(commands: Commands, vehicle_id: str, body: dict[str, Any]) -> dict[str, Any]:
    if "vehicle" in body and body["vehicle"] != vehicle_id:
        raise ActionError("'vehicle' in the body differs from the one in the address")
    action = body.get("action")
    if action not in ACTIONS:
        raise ActionError(f"unknown action {action!r} (known: {list(ACTIONS)})")
    fields = {k: v for k, v in body.items() if k != "vehicle"}
    if action == "automatic":
        extra = sorted(set(fields) - {"action"})
        if extra:
            raise ActionError(f"'automatic' takes no {extra[0]!r}")
        fields["action"] = "cancel"
    try:
        result = commands.override({**fields, "vehicle": vehicle_id})
    except (CommandError, PolicyError) as exc:
        raise ActionError(str(exc)) from None
    if action == "automatic":
        result = {"action": "automatic", "vehicle": vehicle_id, "cancelled": result["cancelled"]}
    return result


def preference(commands: Commands, body: dict[str, Any]) -> dict[str, Any]:
    try:
        return commands.preference(body)
    except (CommandError, PolicyError) as exc:
        raise ActionError(str(exc)) from None
