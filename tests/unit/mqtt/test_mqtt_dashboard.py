"""The example dashboard names only entities that discovery really creates."""

from __future__ import annotations

import re
from pathlib import Path

from v2g_gateway.config import parse_config
from v2g_gateway.mqtt.discovery import Discovery
from v2g_gateway.mqtt.topics import Topics

DASHBOARD = Path(__file__).resolve().parents[3] / "docs" / "homeassistant-dashboard.yaml"


def test_dashboard_entities_exist_in_discovery() -> None:
    cfg = parse_config(
        {"chargers": [{"id": "garage"}], "vehicles": [{"id": "car", "battery_kwh": 60}]}
    )
    made = {
        f"{topic.split('/')[1]}.{c['object_id']}"
        for topic, c in Discovery(cfg, Topics.from_config(cfg)).configs().items()
    }
    used = set(re.findall(r"entity: ([a-z_]+\.[a-z0-9_]+)", DASHBOARD.read_text()))
    assert len(used) > 20
    assert used - made == set()
