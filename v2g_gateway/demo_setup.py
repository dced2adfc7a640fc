"""The demo's household and prices: what the simulated home tells the real gateway.

A Dutch-style household (net metering), the scenario's departures, its recorded prices as a CSV
the gateway reads like a user's file, no broker unless one is named, the web app on loopback.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

from simulators.scenario import Scenario
from v2g_gateway.config import WEEKDAYS, Config, parse_config
from v2g_gateway.demo_mqtt import Broker
from v2g_gateway.demo_pv import pv_home
from v2g_gateway.errors import ConfigError
from v2g_gateway.prices.load import load_price_file

DEFAULT_SCENARIO = "default"
CHARGER_ID = "demo-charger"
GATEWAY_ID = "demo"
RESERVE = 40.0
OUTAGE_FLOOR = 20.0
DEMO_WEB_PORT = 8080


def web_port(preferred: int = DEMO_WEB_PORT) -> int:
    """The demo's web app port: 8080 when free, else any free one (two demos can run)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return 0
    return preferred


def demo_config(
    scenario: Scenario,
    state_dir: Path,
    csv_file: Path,
    password: str,
    broker: Broker | None,
    web_port: int = 0,
) -> Config:
    """A Dutch-style household: dynamic contract with net metering (export = import price).

    Net metering (the Dutch salderingsregeling, until 2027) credits an exported kWh at the full
    import price; it is what makes arbitrage on day-ahead spreads pay for a household today.
    """
    departures = _departures(scenario)
    base = f"v2g/{GATEWAY_ID}"
    return parse_config(
        {
            "gateway": {
                "id": GATEWAY_ID,
                "state_dir": str(state_dir),
                "timezone": scenario.timezone,
                "tick_seconds": 60,
            },
            "ocpp": {"host": "127.0.0.1", "port": 0, "heartbeat_interval_s": 3600},
            "chargers": [
                {
                    "id": CHARGER_ID,
                    "password": password,
                    "max_charge_w": max(c.max_charge_w for c in scenario.cars),
                    "max_discharge_w": max(c.max_discharge_w for c in scenario.cars),
                }
            ],
            "vehicles": [
                {
                    "id": c.id,
                    "battery_kwh": c.capacity_kwh,
                    "reserve_soc_percent": RESERVE,
                    "min_soc_percent": c.min_soc_percent,
                    "id_tokens": [c.id_token],
                    "charge_efficiency": c.eta_charge,
                    "discharge_efficiency": c.eta_discharge,
                }
                for c in scenario.cars
            ],
            "prices": {
                "source": "csv",
                "csv_file": str(csv_file),
                "supplier_margin_per_kwh": 0.02,
                "vat_percent": 21,
                "energy_tax_per_kwh": 0.10,
                # Net metering: export credited at the import price, (spot + 0.02) * 1.21 + 0.10.
                "export_factor": 1.21,
                "export_fee_per_kwh": -0.1242,
            },
            "preferences": {
                "degradation_cost_per_kwh": 0.03,
                "departures": departures,
                "profile_validity_minutes": 15,
            },
            # Without a broker the outage is seen from the charger's voltage; with one, also
            # from the simulated grid meter, on a topic of the demo's own (never a real meter's).
            "outage": {
                "enabled": bool(scenario.outages),
                # At thousands of times real speed a meter value a few ms late is minutes of
                # simulated silence; the demo would report "grid state unknown" all week.
                "silence_timeout_s": 6 * 3600,
                "mqtt_topic": f"{base}/sim/grid" if broker else None,
                "floor_soc_percent": OUTAGE_FLOOR,
            },
            "mqtt": {
                "enabled": broker is not None,
                "host": broker.host if broker else "127.0.0.1",
                "port": broker.port if broker else 1883,
                "topic_prefix": "v2g",
            },
            # Loopback only, so no password: the page is for the person running the demo.
            "web": {"host": "127.0.0.1", "port": web_port},
        }
        | pv_home(scenario, csv_file.parent / "pv.csv", base if broker else None)
    )


def _departures(scenario: Scenario) -> list[dict[str, Any]]:
    """What the household told the gateway: each weekday's departure time and target SoC."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for a in scenario.arrivals:
        if a.departure is None:
            continue
        arrive = scenario.at(a.day, a.time)
        leave = scenario.at(a.day, a.departure)
        if leave <= arrive:
            leave += timedelta(days=1)
        day = WEEKDAYS[leave.weekday()]
        out[(day, a.departure)] = {
            "days": [day],
            "time": a.departure,
            "target_soc_percent": a.target_soc_percent or 80.0,
        }
    return list(out.values())


def price_csv(scenario: Scenario, path: Path) -> None:
    """The scenario's recorded prices as a simple CSV: the gateway reads it like a user's file."""
    file = scenario.prices_path()
    if file is None:
        raise ConfigError(str(scenario.source), "prices", "the demo needs a price file")
    slots = load_price_file(file, scenario.prices_format or "entsoe")
    covered = [x for x in slots if x.start < scenario.end_at and x.end > scenario.start_at]
    if not covered or covered[0].start > scenario.start_at or covered[-1].end < scenario.end_at:
        raise ConfigError(
            str(scenario.source),
            "prices",
            f"{file.name} does not cover {scenario.start_at:%Y-%m-%d %H:%M} to "
            f"{scenario.end_at:%Y-%m-%d %H:%M}",
        )
    rows = ["start,end,price_eur_per_kwh"]
    rows += [f"{x.start.isoformat()},{x.end.isoformat()},{x.price:.5f}" for x in slots]
    path.write_text("\n".join(rows) + "\n")
