"""Every JSON command example in docs/mqtt.md is accepted by the real validator."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from v2g_gateway.clock import ManualClock
from v2g_gateway.config import parse_config
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.model import CommandResult, CommandStatus
from v2g_gateway.mqtt.commands import Commands
from v2g_gateway.store import Store

DOC = Path(__file__).resolve().parents[3] / "docs" / "mqtt.md"
SECTION = re.compile(r"^### `set/([a-z_]+)`.*?\n(.*?)(?=^### |^## )", re.M | re.S)
FENCE = re.compile(r"```json\n(.*?)```", re.S)


def examples() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    dec = json.JSONDecoder()
    for command, body in SECTION.findall(DOC.read_text()):
        for block in FENCE.findall(body):
            text = block.strip()
            while text:
                obj, end = dec.raw_decode(text)
                out.append((command, obj))
                text = text[end:].strip()
    return out


async def test_every_documented_command_is_accepted(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "chargers": [{"id": "garage"}],
            "vehicles": [
                {"id": "car", "battery_kwh": 60, "charger": "garage"},
                {"id": "van", "battery_kwh": 75},
            ],
        }
    )
    store = Store.open(tmp_path / "s.sqlite", cfg)
    clock = ManualClock(datetime(2025, 6, 2, 8, 0, tzinfo=UTC))

    async def control(charger_id: str, start: bool) -> CommandResult:
        return CommandResult(CommandStatus.ACCEPTED)

    commands = Commands(cfg, store, Policy(cfg, store, clock), clock, control)
    found = examples()
    assert {c for c, _ in found} == {"override", "preference", "charging", "demand_response"}
    assert len(found) >= 15
    for command, body in found:
        await commands.handle(command, json.dumps(body).encode())  # raises if refused
    store.close()
