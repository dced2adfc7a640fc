"""`v2g-gateway demo`: the real gateway against a simulated bidirectional charger and EV.

Everything runs in one process on an accelerated clock: the real OCPP server on a loopback port,
the real store (in a temporary folder), the real price service reading a CSV made from a recorded
ENTSO-E day shipped in the package, the real planner and controller. The charger and car are the
simulators. Nothing outside the machine is needed; an MQTT broker on localhost is used if present.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import secrets
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from simulators.scenario import Scenario
from v2g_gateway.app import Gateway
from v2g_gateway.clock import AcceleratedClock
from v2g_gateway.config import Config, parse_config
from v2g_gateway.demo_pv import pv_home
from v2g_gateway.errors import ConfigError
from v2g_gateway.log import setup_logging
from v2g_gateway.model import Notification
from v2g_gateway.prices.load import load_price_file

log = structlog.get_logger(__name__)

DEFAULT_SCENARIO = "default"
CHARGER_ID = "demo-charger"
RESERVE = 40.0
SAMPLE_EVERY = timedelta(minutes=5)
DEMO_WEB_PORT = 8080


@dataclass
class Sample:
    at: datetime
    import_price: float | None
    export_price: float | None
    soc: float | None
    power_kw: float
    plugged: bool


@dataclass
class DemoRun:
    samples: list[Sample] = field(default_factory=list)
    events: list[Notification] = field(default_factory=list)
    departures: list[tuple[datetime, float, float]] = field(default_factory=list)  # at, SoC, target
    last_soc: float | None = None


def web_port(preferred: int = DEMO_WEB_PORT) -> int:
    """The demo's web app port: 8080 when free, else any free one (two demos can run)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            return 0
    return preferred


def demo_config(
    scenario: Scenario, state_dir: Path, csv_file: Path, password: str, web_port: int = 0
) -> Config:
    """A Dutch-style household: dynamic contract with net metering (export = import price).

    Net metering (the Dutch salderingsregeling, until 2027) credits an exported kWh at the full
    import price; it is what makes arbitrage on day-ahead spreads pay for a household today.
    """
    first = scenario.arrivals[0] if scenario.arrivals else None
    departures = []
    if first is not None and first.departure is not None:
        departures.append(
            {"time": first.departure, "target_soc_percent": first.target_soc_percent or 80.0}
        )
    return parse_config(
        {
            "gateway": {
                "id": "demo",
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
            "outage": {"enabled": bool(scenario.outages), "mqtt_topic": "home/grid"},
            "mqtt": {"host": "127.0.0.1", "port": 1883, "topic_prefix": "v2g"},
            # Loopback only, so no password: the page is for the person running the demo.
            "web": {"host": "127.0.0.1", "port": web_port},
        }
        | pv_home(scenario, csv_file.parent / "pv.csv")
    )


def _price_csv(scenario: Scenario, path: Path) -> None:
    """The scenario's recorded prices as a simple CSV: the gateway reads it like a user's file."""
    file = scenario.prices_path()
    if file is None:
        raise ConfigError(str(scenario.source), "prices", "the demo needs a price file")
    slots = load_price_file(file, scenario.prices_format or "entsoe")
    covered = [x for x in slots if x.start < scenario.end_at and x.end > scenario.start_at]
    if not covered or covered[0].start > scenario.start_at:
        raise ConfigError(
            str(scenario.source),
            "prices",
            f"{file.name} does not cover {scenario.start_at:%Y-%m-%d %H:%M}",
        )
    rows = ["start,end,price_eur_per_kwh"]
    rows += [f"{x.start.isoformat()},{x.end.isoformat()},{x.price:.5f}" for x in slots]
    path.write_text("\n".join(rows) + "\n")


async def _demo(args: argparse.Namespace) -> int:
    from simulators.charger import SimulatedCharger
    from simulators.grid import GridSimulator
    from simulators.scenario import load_scenario, run_scenario

    scenario = load_scenario(args.scenario or DEFAULT_SCENARIO)
    speed = args.speed or scenario.speed
    out_dir = Path(args.output)
    clock = AcceleratedClock(scenario.start_at, speed)
    run = DemoRun()
    with tempfile.TemporaryDirectory(prefix="v2g-demo-") as tmp:
        csv_file = Path(tmp) / "prices.csv"
        _price_csv(scenario, csv_file)
        password = secrets.token_urlsafe(18)
        cfg = demo_config(scenario, Path(tmp) / "state", csv_file, password, web_port())
        gw = Gateway(cfg, clock)
        events = gw.store.notifications.subscribe()
        gw_task = asyncio.create_task(gw.run(), name="gateway")
        await gw.ready.wait()
        sim = SimulatedCharger(
            f"ws://127.0.0.1:{gw.csms.port}",
            CHARGER_ID,
            password=password,
            clock=clock,
            meter_interval_s=60,
            step_s=30,
        )
        grid = GridSimulator(
            clock,
            timezone=scenario.tz,
            mqtt_host=cfg.mqtt.host,
            mqtt_port=cfg.mqtt.port,
            chargers=[sim],
            seed=scenario.seed,
            mqtt_enabled=bool(scenario.outages or scenario.demand_response),
        )
        tasks = [
            asyncio.create_task(sim.run(), name="charger-sim"),
            asyncio.create_task(grid.run(), name="grid-sim"),
        ]
        if scenario.pv_kwp > 0:
            from simulators.home import HomeSimulator

            home = HomeSimulator(
                clock,
                mqtt_host=cfg.mqtt.host,
                mqtt_port=cfg.mqtt.port,
                chargers=[sim],
                timezone=scenario.timezone,
                pv_kwp=scenario.pv_kwp,
                publish_interval_s=60.0,
                seed=scenario.seed,
            )
            tasks.append(asyncio.create_task(home.run(), name="home-sim"))
        try:
            await asyncio.wait_for(sim.booted.wait(), 10)
            await _say_mqtt(args, gw)
            if gw.web is not None:
                print(f"web app: {gw.web.url} (open it while the demo runs)", flush=True)

            def on_event(e: Any) -> None:
                if e.kind == "depart" and run.last_soc is not None:
                    target = e.arrival.target_soc_percent or 0.0
                    run.departures.append((e.at, run.last_soc, target))

            script = asyncio.create_task(
                run_scenario(scenario, [sim], grid, clock, on_event), name="scenario"
            )
            await _sample(args, gw, sim, clock, scenario, run, events, script)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            gw.stop.set()
            await gw_task
    if not args.quiet:
        sys.stdout.write("\n")
    summary = _summary(run, scenario)
    _print_summary(summary, cfg, scenario)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    picture = _picture(run, out_dir / "demo.png", scenario)
    if picture:
        print(f"picture: {picture}")
    print(f"summary: {out_dir / 'summary.json'}")
    return 0 if summary["reserve_respected"] and summary["departure_target_met"] else 1


async def _say_mqtt(args: argparse.Namespace, gw: Gateway) -> None:
    """Tell the user once whether the demo's state is visible on a local broker."""
    if args.quiet or gw.mqtt is None:
        return
    where = f"{gw.cfg.mqtt.host}:{gw.cfg.mqtt.port}"
    try:
        await asyncio.wait_for(gw.mqtt.connected.wait(), 1.0)
    except TimeoutError:
        print(f"MQTT: no broker at {where}; the demo goes on without publishing")
        return
    print(f"MQTT: publishing on {where} under {gw.cfg.mqtt.topic_prefix}/{gw.cfg.gateway.id}/#")


async def _sample(
    args: argparse.Namespace,
    gw: Gateway,
    sim: Any,
    clock: AcceleratedClock,
    scenario: Scenario,
    run: DemoRun,
    events: asyncio.Queue[Notification],
    script: asyncio.Task[Any],
) -> None:
    """Every 5 simulated minutes: record prices, SoC and power, and show progress."""
    start, end, tz = scenario.start_at, scenario.end_at, scenario.tz
    at = start
    while at < end and not (script.done() and script.exception() is not None):
        await clock.sleep((at - clock.now()).total_seconds())
        now = clock.now()
        while not events.empty():
            run.events.append(events.get_nowait())
        ev = sim.ev()
        price = _price_at(gw, now)
        if ev is not None:  # kept through the plug-out, for the departure row
            run.last_soc = ev.soc_percent
        run.samples.append(
            Sample(
                at=now,
                import_price=None if price is None else price[0],
                export_price=None if price is None else price[1],
                soc=None if ev is None else ev.soc_percent,
                power_kw=sim.power_w() / 1000.0,
                plugged=ev is not None,
            )
        )
        if not args.quiet and (sys.stdout.isatty() or now.minute < 5):
            done = (now - start) / (end - start)
            bar = "#" * int(done * 30)
            soc = "  -  " if ev is None else f"{ev.soc_percent:5.1f}"
            p = "  -  " if price is None else f"{price[0]:.3f}"
            lead, tail = ("\r", "") if sys.stdout.isatty() else ("", "\n")
            sys.stdout.write(
                f"{lead}{now.astimezone(tz):%a %H:%M}  SoC {soc} %  power {sim.power_w() / 1000:+6.1f} kW"
                f"  import {p}/kWh  [{bar:<30}] {done:4.0%}{tail}"
            )
            sys.stdout.flush()
        at += SAMPLE_EVERY
    if script.done() and script.exception() is not None:
        raise script.exception()  # type: ignore[misc]
    script.cancel()
    while not events.empty():
        run.events.append(events.get_nowait())


def _price_at(gw: Gateway, now: datetime) -> tuple[float, float] | None:
    try:
        slots = gw.prices.user_prices(now, now + timedelta(minutes=1))
    except Exception:
        return None
    s = next((x for x in slots if x.start <= now < x.end), None)
    return None if s is None else (s.import_per_kwh, s.export_per_kwh)


def _summary(run: DemoRun, scenario: Scenario) -> dict[str, Any]:
    charged = discharged = cost = revenue = 0.0
    for a, b in itertools.pairwise(run.samples):
        h = (b.at - a.at).total_seconds() / 3600.0
        if a.power_kw > 0:
            charged += a.power_kw * h
            cost += a.power_kw * h * (a.import_price or 0.0)
        elif a.power_kw < 0:
            discharged += -a.power_kw * h
            revenue += -a.power_kw * h * (a.export_price or 0.0)
    socs = [s.soc for s in run.samples if s.soc is not None]
    baseline = _plain_charging_cost(run, scenario.cars[0].capacity_kwh)
    return {
        "scenario": scenario.name,
        "start": scenario.start_at.isoformat(),
        "end": scenario.end_at.isoformat(),
        "charged_kwh": round(charged, 2),
        "discharged_kwh": round(discharged, 2),
        "soc_min_percent": round(min(socs), 1) if socs else None,
        "soc_max_percent": round(max(socs), 1) if socs else None,
        "departures": [
            {"at": at.isoformat(), "soc_percent": round(soc, 1), "target_percent": target}
            for at, soc, target in run.departures
        ],
        "cost": round(cost, 2),
        "revenue": round(revenue, 2),
        "net": round(revenue - cost, 2),
        "plain_charging_cost": None if baseline is None else round(baseline, 2),
        "saving": None if baseline is None else round(baseline - (cost - revenue), 2),
        "reserve_percent": RESERVE,
        "reserve_respected": not socs or min(socs) >= RESERVE - 0.5,
        "departure_target_met": all(soc >= target - 0.5 for _, soc, target in run.departures),
        "events": [
            {"at": e.at.isoformat(), "kind": e.kind, "message": e.message} for e in run.events
        ],
    }


def _plain_charging_cost(run: DemoRun, capacity_kwh: float) -> float | None:
    """What charging at full power on arrival would have cost for the same SoC gain overall."""
    plugged = [s for s in run.samples if s.soc is not None]
    if not plugged:
        return None
    first, last = plugged[0].soc, plugged[-1].soc
    assert first is not None and last is not None
    meter_kwh = max(0.0, (last - first) / 100.0 * capacity_kwh) / 0.95
    cost, left = 0.0, meter_kwh
    for a, b in itertools.pairwise(plugged):
        if left <= 0:
            break
        kwh = min(left, 11.0 * (b.at - a.at).total_seconds() / 3600.0)
        cost += kwh * (a.import_price or 0.0)
        left -= kwh
    return cost


def _print_summary(s: dict[str, Any], cfg: Config, scenario: Scenario) -> None:
    cur = cfg.prices.currency
    rows = [
        ("scenario", f"{scenario.name}: {scenario.description}"),
        ("charged", f"{s['charged_kwh']:.1f} kWh"),
        ("discharged", f"{s['discharged_kwh']:.1f} kWh"),
        ("SoC min / max", f"{s['soc_min_percent']} % / {s['soc_max_percent']} %"),
        ("reserve", f"{RESERVE:g} % ({'never crossed' if s['reserve_respected'] else 'CROSSED'})"),
    ]
    for d in s["departures"]:
        rows.append(
            (
                "SoC at departure",
                f"{d['soc_percent']} % at {d['at'][11:16]} (target {d['target_percent']:g} %)",
            )
        )
    rows += [
        ("cost of charging", f"{s['cost']:.2f} {cur}"),
        ("revenue from discharging", f"{s['revenue']:.2f} {cur}"),
        ("net", f"{s['net']:+.2f} {cur}"),
    ]
    if s["plain_charging_cost"] is not None:
        rows.append(
            (
                "plain charging on arrival",
                f"{s['plain_charging_cost']:.2f} {cur} for the same SoC gain",
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


def _picture(run: DemoRun, path: Path, scenario: Scenario) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        print("picture: skipped (install matplotlib: pip install 'v2g-gateway[plot]')")
        return None
    tz = scenario.tz
    target = max((a.target_soc_percent or 0.0 for a in scenario.arrivals), default=0.0)
    t = [s.at.astimezone(tz) for s in run.samples]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    ax1.step(t, [s.import_price for s in run.samples], where="post", label="import")
    ax1.step(t, [s.export_price for s in run.samples], where="post", label="export", linestyle="--")
    ax1.set_ylabel("price per kWh")
    ax1.legend(loc="upper left")
    ax1.set_title(
        f"v2g-gateway demo ({scenario.name}): recorded day-ahead prices, "
        "simulated bidirectional charger and EV"
    )
    ax2.plot(t, [s.soc for s in run.samples], color="tab:green", label="SoC")
    ax2.axhline(RESERVE, color="tab:red", linestyle=":", label=f"reserve {RESERVE:g} %")
    ax2.axhline(target, color="tab:gray", linestyle=":", label=f"departure target {target:g} %")
    ax2.set_ylabel("SoC %")
    ax2.set_ylim(0, 100)
    ax2.legend(loc="upper left")
    power = [s.power_kw for s in run.samples]
    ax3.fill_between(
        t, power, 0, where=[p > 0 for p in power], color="tab:blue", step="post", label="charging"
    )
    ax3.fill_between(
        t,
        power,
        0,
        where=[p < 0 for p in power],
        color="tab:orange",
        step="post",
        label="discharging",
    )
    ax3.set_ylabel("charger power kW")
    ax3.legend(loc="upper left")
    for e in run.events:
        if e.kind in ("dispatch_started", "dispatch_stopped"):
            ax3.axvline(e.at.astimezone(tz), color="gray", alpha=0.3, linewidth=0.8)
    ax3.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=tz))  # type: ignore[no-untyped-call]
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "gateway.log").open("w")
    setup_logging("json", "info", stream=log_file)
    if not args.quiet:
        print(f"v2g-gateway demo (gateway log: {out / 'gateway.log'})")
    try:
        return asyncio.run(_demo(args))
    finally:
        log_file.close()
