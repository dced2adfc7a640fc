"""Shared constants and helpers of the csms integration tests (conftest.py holds the fixtures)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from v2g_gateway.config import Config, parse_config
from v2g_gateway.model import ChargerEvent

PASSWORD = "Correct-Horse-Battery-9"
T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def make_config(*, charger: dict[str, Any] | None = None, **ocpp: Any) -> Config:
    """Two chargers and a car; `charger` adds keys to garage's [[chargers]] entry."""
    return parse_config(
        {
            "ocpp": {"host": "127.0.0.1", "port": 0, **ocpp},
            "chargers": [
                {"id": "garage", "password": PASSWORD, **(charger or {})},
                {"id": "carport:2", "password": PASSWORD + "x"},
            ],
            "vehicles": [{"id": "car", "battery_kwh": 60, "id_tokens": ["TAG1"]}],
        }
    )


class Events(list[ChargerEvent]):
    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self if isinstance(e, kind)]


BOOT = {
    "reason": "PowerUp",
    "chargingStation": {
        "vendorName": "Acme",
        "model": "Bidi-11",
        "serialNumber": "SN1",
        "firmwareVersion": "1.2.3",
    },
}
