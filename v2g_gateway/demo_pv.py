"""The demo's PV household (`--scenario pv`): the home's meter and PV on MQTT, a PV forecast
file of the simulated clear day, and a German-style fixed feed-in instead of net metering."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from simulators.scenario import Scenario


def pv_home(scenario: Scenario, pv_csv: Path, topics: str | None) -> dict[str, Any]:
    """With PV: a PV forecast file, fixed feed-in and, with a broker (`topics` is the demo's
    topic base), the home's meter and PV on MQTT."""
    if scenario.pv_kwp <= 0:
        return {}
    from simulators.home import clear_day_pv_w

    rows, t = ["start,pv_w"], scenario.start_at
    while t < scenario.end_at + timedelta(days=1):
        rows.append(f"{t.isoformat()},{clear_day_pv_w(t.astimezone(scenario.tz), scenario.pv_kwp)}")
        t += timedelta(minutes=15)
    pv_csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    export = scenario.export_fixed_per_kwh
    prices = {
        "source": "csv",
        "csv_file": str(pv_csv.parent / "prices.csv"),
        "supplier_margin_per_kwh": 0.02,
        "vat_percent": 19,
        "grid_fee_per_kwh": 0.12,
        "energy_tax_per_kwh": 0.02,
        "export_fixed_per_kwh": 0.08 if export is None else export,
    }
    home: dict[str, Any] = {
        "main_fuse_a": 25,
        "pv_forecast": "csv",
        "pv_forecast_csv": str(pv_csv),
        "pv": [{"kwp": scenario.pv_kwp}],
    }
    if topics is not None:
        home |= {"grid_power_topic": f"{topics}/sim/meter", "pv_power_topic": f"{topics}/sim/pv"}
    return {"prices": prices, "home": home}
