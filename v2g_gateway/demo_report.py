"""What the demo measured, and the summary it prints: energy, money, reserve, departures.

Money comes from the simulated charger's energy registers between samples times the price of
that interval, so it is what a meter would bill. The comparison is plain charging on arrival:
per visit, the same SoC gain bought at full power from the moment the car was plugged in.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from v2g_gateway.model import Notification

SLACK = 0.5  # percent: rounding of the SoC readings


@dataclass
class Sample:
    at: datetime
    import_price: float | None
    export_price: float | None
    soc: float | None
    power_kw: float
    plugged: bool
    import_wh: float = 0.0  # the charger's registers at this moment
    export_wh: float = 0.0


@dataclass
class Visit:
    """One plug-in: arrival, departure and what the car needed."""

    arrived_at: datetime
    arrival_soc: float
    target: float | None
    left_at: datetime | None = None
    departure_soc: float | None = None


@dataclass
class DemoRun:
    samples: list[Sample] = field(default_factory=list)
    events: list[Notification] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    last_soc: float | None = None

    def windows(
        self, start_kind: str, end_kind: str, until: datetime
    ) -> list[tuple[datetime, datetime]]:
        """Intervals the gateway announced (e.g. grid_outage .. grid_restored)."""
        out: list[tuple[datetime, datetime]] = []
        begun: datetime | None = None
        for e in self.events:
            if e.kind == start_kind and begun is None:
                begun = e.at
            elif e.kind == end_kind and begun is not None:
                out.append((begun, e.at))
                begun = None
        if begun is not None:
            out.append((begun, until))
        return out


@dataclass(frozen=True)
class Limits:
    reserve: float
    floor: float  # outage backup may go down to here
    capacity_kwh: float
    max_charge_kw: float
    eta_charge: float


def _delta(a: float, b: float) -> float:
    return b - a if b >= a else b  # a register that restarted counts from zero


def energy_and_money(samples: list[Sample]) -> dict[str, float]:
    imported = exported = cost = revenue = 0.0
    for a, b in itertools.pairwise(samples):
        kwh_in = _delta(a.import_wh, b.import_wh) / 1000.0
        kwh_out = _delta(a.export_wh, b.export_wh) / 1000.0
        imported += kwh_in
        exported += kwh_out
        cost += kwh_in * (a.import_price or 0.0)
        revenue += kwh_out * (a.export_price or 0.0)
    return {"charged": imported, "discharged": exported, "cost": cost, "revenue": revenue}


def plain_charging_cost(run: DemoRun, lim: Limits) -> float | None:
    """Each visit's SoC gain bought at full power from arrival, at the prices of those hours."""
    if not run.visits:
        return None
    total = 0.0
    for v in run.visits:
        end = v.left_at or run.samples[-1].at
        gain = max(0.0, (v.departure_soc or v.arrival_soc) - v.arrival_soc)
        left = gain / 100.0 * lim.capacity_kwh / lim.eta_charge
        inside = [s for s in run.samples if v.arrived_at <= s.at <= end]
        for a, b in itertools.pairwise(inside):
            if left <= 0:
                break
            kwh = min(left, lim.max_charge_kw * (b.at - a.at).total_seconds() / 3600.0)
            total += kwh * (a.import_price or 0.0)
            left -= kwh
    return total


def reserve_report(run: DemoRun, lim: Limits, end: datetime) -> dict[str, Any]:
    """Was the car ever discharged below its reserve (its outage floor during an outage)?

    Arriving below the reserve is not crossing it: the gateway then only charges.
    """
    outages = run.windows("grid_outage", "grid_restored", end)
    crossed: list[str] = []
    for a, b in itertools.pairwise(run.samples):
        if a.soc is None or b.soc is None or _delta(a.export_wh, b.export_wh) <= 1.0:
            continue
        in_outage = any(s <= b.at <= e for s, e in outages)
        floor = lim.floor if in_outage else lim.reserve
        if b.soc < floor - SLACK:
            crossed.append(f"{b.at.isoformat()} at {b.soc:.1f} % (floor {floor:g} %)")
    below = [v for v in run.visits if v.arrival_soc < lim.reserve - SLACK]
    return {
        "reserve_percent": lim.reserve,
        "outage_floor_percent": lim.floor,
        "reserve_respected": not crossed,
        "discharged_below_floor": crossed[:10],
        "arrived_below_reserve": [
            {"at": v.arrived_at.isoformat(), "soc_percent": round(v.arrival_soc, 1)} for v in below
        ],
    }


def summary(run: DemoRun, name: str, start: datetime, end: datetime, lim: Limits) -> dict[str, Any]:
    money = energy_and_money(run.samples)
    baseline = plain_charging_cost(run, lim)
    net_cost = money["cost"] - money["revenue"]
    socs = [s.soc for s in run.samples if s.soc is not None]
    departures = [v for v in run.visits if v.left_at is not None and v.departure_soc is not None]
    return {
        "scenario": name,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "charged_kwh": round(money["charged"], 2),
        "discharged_kwh": round(money["discharged"], 2),
        "soc_min_percent": round(min(socs), 1) if socs else None,
        "soc_max_percent": round(max(socs), 1) if socs else None,
        "departures": [
            {
                "at": v.left_at.isoformat() if v.left_at else None,
                "soc_percent": round(v.departure_soc or 0.0, 1),
                "target_percent": v.target,
            }
            for v in departures
        ],
        "cost": round(money["cost"], 2),
        "revenue": round(money["revenue"], 2),
        "net_cost": round(net_cost, 2),
        "plain_charging_cost": None if baseline is None else round(baseline, 2),
        "saving": None if baseline is None else round(baseline - net_cost, 2),
        **reserve_report(run, lim, end),
        "departure_target_met": all(
            (v.departure_soc or 0.0) >= (v.target or 0.0) - SLACK for v in departures
        ),
        "events": [
            {"at": e.at.isoformat(), "kind": e.kind, "message": e.message} for e in run.events
        ],
    }


def print_summary(s: dict[str, Any], currency: str, description: str, tz: Any) -> None:
    cur = currency
    reserve = s["reserve_percent"]
    below = s["arrived_below_reserve"]
    if not s["reserve_respected"]:
        guard = "DISCHARGED BELOW IT: " + "; ".join(s["discharged_below_floor"][:3])
    else:
        guard = "never discharged below it"
        if below:
            arrivals = ", ".join(
                f"{datetime.fromisoformat(b['at']).astimezone(tz):%a %H:%M} at {b['soc_percent']:g} %"
                for b in below
            )
            guard += f"; arrived below it {arrivals}: charged up first"
    rows = [
        ("scenario", f"{s['scenario']}: {description}"),
        ("charged", f"{s['charged_kwh']:.1f} kWh"),
        ("discharged", f"{s['discharged_kwh']:.1f} kWh"),
        ("SoC min / max", f"{s['soc_min_percent']} % / {s['soc_max_percent']} %"),
        ("reserve", f"{reserve:g} %: {guard}"),
    ]
    for d in s["departures"]:
        at = datetime.fromisoformat(d["at"]).astimezone(tz)
        ok = "" if d["soc_percent"] >= (d["target_percent"] or 0) - SLACK else "  MISSED"
        rows.append(
            (
                "SoC at departure",
                f"{d['soc_percent']} % on {at:%a %H:%M} (target {d['target_percent']:g} %){ok}",
            )
        )
    rows += [
        ("cost of charging", f"{s['cost']:.2f} {cur} for {s['charged_kwh']:.1f} kWh"),
        ("earned by discharging", f"{s['revenue']:.2f} {cur} for {s['discharged_kwh']:.1f} kWh"),
        ("net cost", f"{s['net_cost']:.2f} {cur}"),
    ]
    if s["plain_charging_cost"] is not None:
        rows.append(
            (
                "plain charging on arrival",
                f"{s['plain_charging_cost']:.2f} {cur} for the same SoC gain per visit",
            )
        )
        rows.append(("saved by the gateway", f"{s['saving']:+.2f} {cur}"))
    width = max(len(k) for k, _ in rows)
    print("v2g-gateway demo")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    kinds: dict[str, int] = {}
    for e in s["events"]:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    print("  events: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))


def write_samples(run: DemoRun, path: Path) -> None:
    """Every sample as CSV, so the summary's sums can be checked (and plotted elsewhere)."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "at",
                "import_price",
                "export_price",
                "soc_percent",
                "power_kw",
                "plugged",
                "import_wh",
                "export_wh",
            ]
        )
        for s in run.samples:
            w.writerow(
                [
                    s.at.isoformat(),
                    s.import_price,
                    s.export_price,
                    s.soc,
                    round(s.power_kw, 3),
                    int(s.plugged),
                    round(s.import_wh, 2),
                    round(s.export_wh, 2),
                ]
            )
