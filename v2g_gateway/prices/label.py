"""A price source as people say it: "ENTSO-E day-ahead, DE-LU", not the store key "entsoe:DE-LU"."""

from __future__ import annotations

from v2g_gateway.config import PricesSection

_NAMES = {
    "tariff": "Time-of-use tariff",
    "entsoe": "ENTSO-E day-ahead",
    "nordpool": "Nord Pool day-ahead",
    "energidataservice": "Energi Data Service day-ahead",
    "awattar": "aWATTar day-ahead",
    "octopus": "Octopus Agile",
    "csv": "CSV file",
    "mqtt": "Prices from MQTT",
}


def source_label(p: PricesSection) -> str:
    name = _NAMES.get(p.source, p.source)
    if p.source == "tariff":
        n = len(p.tariff)
        return f"{name} ({n} period{'s' if n != 1 else ''})"
    if p.source == "csv" and p.csv_file is not None:
        return f"{name} {p.csv_file.name}"
    if p.source == "mqtt" and p.mqtt_topic:
        return f"{name} ({p.mqtt_topic})"
    if p.source == "octopus" and p.area:
        return f"{name}, region {p.area}"
    return f"{name}, {p.area}" if p.area else name
