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
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import structlog

from v2g_gateway.app import Gateway
from v2g_gateway.clock import AcceleratedClock
from v2g_gateway.config import Config, parse_config
from v2g_gateway.log import setup_logging
from v2g_gateway.model import Notification, PriceSlot
from v2g_gateway.prices.load import load_price_file

log = structlog.get_logger(__name__)

TZ_NAME = "Europe/Amsterdam"
# The recorded day whose prices the demo replays (ENTSO-E A44, DE-LU, real response; see SOURCES.md).
PRICE_FILE = "DE_60M_15M_overlap.xml"
TEMPLATE_DAY = "2024-10-07"
BATTERY_KWH = 60.0
ARRIVE, ARRIVE_SOC, DEPART, TARGET_SOC, RESERVE = "17:30", 55.0, "07:30", 80.0, 40.0


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
    departure_soc: float | None = None


def _shifted_prices(day: datetime) -> list[PriceSlot]:
    """The recorded day's 15-minute prices laid onto `day` and the day after (local time)."""
    path = Path(str(files("v2g_gateway") / "data" / "prices" / PRICE_FILE))
    slots = load_price_file(path, "entsoe")
    tz = day.tzinfo
    assert tz is not None
    template = [s for s in slots if s.start.astimezone(tz).date().isoformat() == TEMPLATE_DAY]
    if not template:
        raise RuntimeError(f"demo prices: no slots for {TEMPLATE_DAY} in {PRICE_FILE}")
    t0 = datetime.fromisoformat(TEMPLATE_DAY).replace(tzinfo=tz)
    out: list[PriceSlot] = []
    for n in range(2):
        base = day + timedelta(days=n)
        for s in template:
            offset = s.start.astimezone(tz) - t0
            start = (base + offset).astimezone(tz)
            out.append(PriceSlot(start, start + (s.end - s.start), s.price, s.currency))
    return out


def demo_config(state_dir: Path, csv_file: Path, password: str) -> Config:
    """A Dutch-style household: dynamic contract with net metering (export = import price)."""
    return parse_config(
        {
            "gateway": {
                "id": "demo",
                "state_dir": str(state_dir),
                "timezone": TZ_NAME,
                "tick_seconds": 60,
            },
            "ocpp": {"host": "127.0.0.1", "port": 0, "heartbeat_interval_s": 3600},
            "chargers": [
                {
                    "id": "demo-charger",
                    "password": password,
                    "max_charge_w": 11000,
                    "max_discharge_w": 10000,
                }
            ],
            "vehicles": [
                {
                    "id": "car",
                    "battery_kwh": BATTERY_KWH,
                    "reserve_soc_percent": RESERVE,
                    "make": "Demo",
                    "model": "EV",
                }
            ],
            "prices": {
                "source": "csv",
                "csv_file": str(csv_file),
                "supplier_margin_per_kwh": 0.02,
                "vat_percent": 21,
                "energy_tax_per_kwh": 0.10,
                # Net metering: every kWh exported is credited at the import price.
                "export_factor": 1.21,
                "export_fee_per_kwh": -0.1242,
            },
            "preferences": {
                "degradation_cost_per_kwh": 0.03,
                "departures": [{"time": DEPART, "target_soc_percent": TARGET_SOC}],
                "profile_validity_minutes": 15,
            },
            "outage": {"enabled": False},
            "mqtt": {"host": "127.0.0.1", "port": 1883, "topic_prefix": "v2g"},
        }
    )


async def _demo(args: argparse.Namespace) -> int:
    from simulators.battery import EvBattery
    from simulators.charger import SimulatedCharger

    out_dir = Path(args.output)
    tz = parse_config({"gateway": {"timezone": TZ_NAME}}).gateway.tz
    today = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today.replace(hour=12)
    end = start + timedelta(hours=args.hours)
    clock = AcceleratedClock(start, args.speed)
    run = DemoRun()
    with tempfile.TemporaryDirectory(prefix="v2g-demo-") as tmp:
        csv_file = Path(tmp) / "prices.csv"
        rows = ["start,end,price_eur_per_kwh"] + [
            f"{s.start.isoformat()},{s.end.isoformat()},{s.price:.5f}"
            for s in _shifted_prices(today)
        ]
        csv_file.write_text("\n".join(rows) + "\n")
        password = secrets.token_urlsafe(18)
        cfg = demo_config(Path(tmp) / "state", csv_file, password)
        gw = Gateway(cfg, clock)
        events = gw.store.notifications.subscribe()
        gw_task = asyncio.create_task(gw.run(), name="gateway")
        await gw.ready.wait()
        sim = SimulatedCharger(
            f"ws://127.0.0.1:{gw.csms.port}",
            "demo-charger",
            password=password,
            clock=clock,
            meter_interval_s=60,
            step_s=30,
        )
        sim_task = asyncio.create_task(sim.run(), name="charger-sim")
        try:
            await asyncio.wait_for(sim.booted.wait(), 10)
            await _script(args, gw, sim, clock, start, end, run, events, EvBattery)
        finally:
            sim_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sim_task
            gw.stop.set()
            await gw_task
    if not args.quiet:
        sys.stdout.write("\n")
    summary = _summary(run)
    _print_summary(summary, cfg)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    picture = _picture(run, out_dir / "demo.png", tz)
    if picture:
        print(f"picture: {picture}")
    print(f"summary: {out_dir / 'summary.json'}")
    return 0 if summary["reserve_respected"] and summary["departure_target_met"] else 1


async def _script(
    args: argparse.Namespace,
    gw: Gateway,
    sim: Any,
    clock: AcceleratedClock,
    start: datetime,
    end: datetime,
    run: DemoRun,
    events: asyncio.Queue[Notification],
    battery_cls: Any,
) -> None:
    tz = start.tzinfo
    assert tz is not None
    arrive = start.replace(hour=17, minute=30)
    depart = (start + timedelta(days=1)).replace(hour=7, minute=30)
    plugged = False
    step = timedelta(minutes=5)
    at = start
    while at < end:
        await clock.sleep((at - clock.now()).total_seconds())
        now = clock.now()
        while not events.empty():
            run.events.append(events.get_nowait())
        if not plugged and arrive <= now < depart:
            ev = battery_cls(BATTERY_KWH, ARRIVE_SOC, max_charge_w=11000, max_discharge_w=10000)
            await sim.plug_in(ev)
            plugged = True
        elif plugged and now >= depart:
            run.departure_soc = sim.ev().soc_percent
            await sim.plug_out()
            plugged = False
        ev = sim.ev()
        price = _price_at(gw, now)
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
        at += step
    while not events.empty():
        run.events.append(events.get_nowait())


def _price_at(gw: Gateway, now: datetime) -> tuple[float, float] | None:
    try:
        slots = gw.prices.user_prices(now, now + timedelta(minutes=1))
    except Exception:
        return None
    s = next((x for x in slots if x.start <= now < x.end), None)
    return None if s is None else (s.import_per_kwh, s.export_per_kwh)


def _summary(run: DemoRun) -> dict[str, Any]:
    charged = discharged = cost = revenue = 0.0
    for a, b in zip(run.samples, run.samples[1:], strict=False):
        h = (b.at - a.at).total_seconds() / 3600.0
        if a.power_kw > 0:
            charged += a.power_kw * h
            cost += a.power_kw * h * (a.import_price or 0.0)
        elif a.power_kw < 0:
            discharged += -a.power_kw * h
            revenue += -a.power_kw * h * (a.export_price or 0.0)
    socs = [s.soc for s in run.samples if s.soc is not None]
    baseline = _plain_charging_cost(run)
    return {
        "charged_kwh": round(charged, 2),
        "discharged_kwh": round(discharged, 2),
        "soc_min_percent": round(min(socs), 1) if socs else None,
        "soc_max_percent": round(max(socs), 1) if socs else None,
        "soc_at_departure_percent": None
        if run.departure_soc is None
        else round(run.departure_soc, 1),
        "cost": round(cost, 2),
        "revenue": round(revenue, 2),
        "net": round(revenue - cost, 2),
        "plain_charging_cost": None if baseline is None else round(baseline, 2),
        "saving": None if baseline is None else round(baseline - (cost - revenue), 2),
        "reserve_percent": RESERVE,
        "reserve_respected": not socs or min(socs) >= RESERVE - 0.5,
        "departure_target_met": run.departure_soc is None or run.departure_soc >= TARGET_SOC - 0.5,
        "events": [
            {"at": e.at.isoformat(), "kind": e.kind, "message": e.message} for e in run.events
        ],
    }


def _plain_charging_cost(run: DemoRun) -> float | None:
    """What charging at full power on arrival to the same departure SoC would have cost."""
    plugged = [s for s in run.samples if s.soc is not None]
    if not plugged or run.departure_soc is None:
        return None
    need_kwh = (run.departure_soc - plugged[0].soc) / 100.0 * BATTERY_KWH  # type: ignore[operator]
    meter_kwh = max(0.0, need_kwh) / 0.95
    cost, left = 0.0, meter_kwh
    for a, b in itertools.pairwise(plugged):
        if left <= 0:
            break
        kwh = min(left, 11.0 * (b.at - a.at).total_seconds() / 3600.0)
        cost += kwh * (a.import_price or 0.0)
        left -= kwh
    return cost


def _print_summary(s: dict[str, Any], cfg: Config) -> None:
    cur = cfg.prices.currency
    rows = [
        ("charged", f"{s['charged_kwh']:.1f} kWh"),
        ("discharged", f"{s['discharged_kwh']:.1f} kWh"),
        ("SoC min / max", f"{s['soc_min_percent']} % / {s['soc_max_percent']} %"),
        ("SoC at departure", f"{s['soc_at_departure_percent']} % (target {TARGET_SOC:g} %)"),
        ("reserve", f"{RESERVE:g} % ({'never crossed' if s['reserve_respected'] else 'CROSSED'})"),
        ("cost of charging", f"{s['cost']:.2f} {cur}"),
        ("revenue from discharging", f"{s['revenue']:.2f} {cur}"),
        ("net", f"{s['net']:+.2f} {cur}"),
    ]
    if s["plain_charging_cost"] is not None:
        rows.append(
            (
                "plain charging on arrival",
                f"{s['plain_charging_cost']:.2f} {cur} for the same departure SoC",
            )
        )
        rows.append(("saved by the gateway", f"{s['saving']:+.2f} {cur}"))
    width = max(len(k) for k, _ in rows)
    print("v2g-gateway demo: one simulated day")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    kinds: dict[str, int] = {}
    for e in s["events"]:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    print("  events: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))


def _picture(run: DemoRun, path: Path, tz: Any) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        print("picture: skipped (install matplotlib: pip install 'v2g-gateway[plot]')")
        return None
    t = [s.at.astimezone(tz) for s in run.samples]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    ax1.step(t, [s.import_price for s in run.samples], where="post", label="import")
    ax1.step(t, [s.export_price for s in run.samples], where="post", label="export", linestyle="--")
    ax1.set_ylabel("price per kWh")
    ax1.legend(loc="upper left")
    ax1.set_title("v2g-gateway demo: real day-ahead prices, simulated bidirectional charger and EV")
    ax2.plot(t, [s.soc for s in run.samples], color="tab:green", label="SoC")
    ax2.axhline(RESERVE, color="tab:red", linestyle=":", label=f"reserve {RESERVE:g} %")
    ax2.axhline(
        TARGET_SOC, color="tab:gray", linestyle=":", label=f"departure target {TARGET_SOC:g} %"
    )
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
        print(
            f"v2g-gateway demo: {args.hours:g} simulated hours at {args.speed:g}x (log: {out / 'gateway.log'})"
        )
    try:
        return asyncio.run(_demo(args))
    finally:
        log_file.close()
