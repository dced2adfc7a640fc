"""Which NotifyEvent entries the csms reads as news about the grid."""

from __future__ import annotations

from typing import Any

import pytest

from v2g_gateway.csms.session import grid_hint


def event(variable: str, value: str, cleared: bool | None = None) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "component": {"name": "ElectricalFeed"},
        "variable": {"name": variable},
        "actualValue": value,
        "trigger": "Alerting",
    }
    if cleared is not None:
        ev["cleared"] = cleared
    return ev


@pytest.mark.parametrize(
    ("ev", "hint"),
    [
        (event("PowerLoss", "true"), True),
        (event("GridLoss", "1"), True),
        (event("MainsLoss", "false"), False),
        (event("PowerLoss", "true", cleared=True), False),
        (event("Problem", "true"), None),  # not about the grid
        (event("Voltage", "0"), None),  # voltage comes from MeterValues instead
    ],
)
def test_grid_hint(ev: dict[str, Any], hint: bool | None) -> None:
    assert grid_hint(ev) is hint
