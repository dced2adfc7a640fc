"""`v2g-gateway demo`: the real gateway against a simulated bidirectional charger and EV.

Everything runs in one process on an accelerated clock: the real OCPP server on a loopback port,
the real store (in a temporary folder), the real price service reading recorded day-ahead prices
shipped in the package, the real planner and controller. The charger, car and grid are the
simulators. Nothing outside the machine is used: no MQTT broker unless `--mqtt HOST[:PORT]`
names one, and then the demo removes what it retained there when it ends (demo_mqtt.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import structlog

from simulators.scenario import Scenario, ScenarioEvent, window_span
from v2g_gateway.app import Gateway
from v2g_gateway.clock import AcceleratedClock
from v2g_gateway.config import Config
from v2g_gateway.demo_mqtt import (
    Broker,
    InProcessAnnouncer,
    MqttAnnouncer,
    clear_retained,
    parse_broker,
)
from v2g_gateway.demo_picture import draw
from v2g_gateway.demo_report import (
    DemoRun,
    Limits,
    Sample,
    Visit,
    print_summary,
    summary,
    write_samples,
)
from v2g_gateway.demo_setup import (
    CHARGER_ID,
    DEFAULT_SCENARIO,
    OUTAGE_FLOOR,
    RESERVE,
    demo_config,
    price_csv,
    web_port,
)
from v2g_gateway.log import setup_logging
from v2g_gateway.model import Notification
from v2g_gateway.mqtt.topics import Topics

log = structlog.get_logger(__name__)

SAMPLE_EVERY = timedelta(minutes=5)


async def _demo(args: argparse.Namespace) -> int:
    from simulators.charger import SimulatedCharger
    from simulators.grid import GridSimulator
    from simulators.scenario import load_scenario, run_scenario

    scenario = load_scenario(args.scenario or DEFAULT_SCENARIO)
    broker = parse_broker(args.mqtt) if args.mqtt else None
    speed = args.speed or scenario.speed
    out_dir = Path(args.output)
    clock = AcceleratedClock(scenario.start_at, speed)
    run = DemoRun()
    cleared: list[str] | None = None
    with tempfile.TemporaryDirectory(prefix="v2g-demo-") as tmp:
        csv_file = Path(tmp) / "prices.csv"
        price_csv(scenario, csv_file)
        password = secrets.token_urlsafe(18)
        cfg = demo_config(scenario, Path(tmp) / "state", csv_file, password, broker, web_port())
        topics = Topics.from_config(cfg)
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
            ocpp_version=getattr(args, "ocpp", "2.0.1"),
        )
        grid = GridSimulator(
            clock,
            timezone=scenario.tz,
            mqtt_host=cfg.mqtt.host,
            mqtt_port=cfg.mqtt.port,
            grid_topic=f"{topics.base}/sim/grid",
            home_power_topic=f"{topics.base}/sim/home_power",
            chargers=[sim],
            seed=scenario.seed,
            mqtt_enabled=broker is not None and bool(scenario.outages),
        )
        announce = (
            MqttAnnouncer(broker, topics)
            if broker is not None
            else InProcessAnnouncer(cfg, gw.store, gw.policy, clock)
        )
        tasks = [
            asyncio.create_task(sim.run(), name="charger-sim"),
            asyncio.create_task(grid.run(), name="grid-sim"),
        ]
        if scenario.pv_kwp > 0 and broker is not None:  # the PV home's meter (docs/home.md)
            from simulators.home import HomeSimulator

            home = HomeSimulator(
                clock,
                mqtt_host=cfg.mqtt.host,
                mqtt_port=cfg.mqtt.port,
                chargers=[sim],
                timezone=scenario.timezone,
                pv_kwp=scenario.pv_kwp,
                grid_topic=f"{topics.base}/sim/meter",
                pv_topic=f"{topics.base}/sim/pv",
                publish_interval_s=60.0,
                seed=scenario.seed,
            )
            tasks.append(asyncio.create_task(home.run(), name="home-sim"))
        try:
            await asyncio.wait_for(sim.booted.wait(), 10)
            await _say_mqtt(args, gw, broker)
            if gw.web is not None:
                print(f"web app: {gw.web.url} (open it while the demo runs)", flush=True)

            batteries: list[Any] = []  # each visit's simulated battery: its SoC at plug-out

            def on_event(e: ScenarioEvent) -> None:
                if e.kind == "arrive" and e.arrival is not None:
                    run.visits.append(
                        Visit(e.at, e.arrival.soc_percent, e.arrival.target_soc_percent)
                    )
                    batteries.append(sim.ev())
                elif e.kind == "depart" and run.visits and run.visits[-1].left_at is None:
                    run.visits[-1].left_at = e.at
                    ev = batteries[-1] if batteries else None
                    run.visits[-1].departure_soc = run.last_soc if ev is None else ev.soc_percent

            script = asyncio.create_task(
                run_scenario(scenario, [sim], grid, clock, on_event, announce), name="scenario"
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
            if broker is not None:
                cleared = await _clear(broker, cfg)
    if not args.quiet:
        sys.stdout.write("\n")
    return _report(args, run, scenario, cfg, out_dir, broker, cleared)


async def _clear(broker: Broker, cfg: Config) -> list[str] | None:
    try:
        return await clear_retained(broker, cfg)
    except (OSError, aiomqtt.MqttError, TimeoutError) as exc:
        print(f"MQTT: could not remove the demo's retained topics from {broker}: {exc}")
        return None


def _report(
    args: argparse.Namespace,
    run: DemoRun,
    scenario: Scenario,
    cfg: Config,
    out_dir: Path,
    broker: Broker | None,
    cleared: list[str] | None,
) -> int:
    car = scenario.cars[0]
    limits = Limits(
        reserve=RESERVE,
        floor=OUTAGE_FLOOR,
        capacity_kwh=car.capacity_kwh,
        max_charge_kw=min(car.max_charge_w, cfg.chargers[0].max_charge_w) / 1000.0,
        eta_charge=car.eta_charge,
    )
    result = summary(run, scenario.name, scenario.start_at, scenario.end_at, limits)
    result["mqtt"] = None if broker is None else {"broker": str(broker), "cleared": cleared}
    result["ocpp"] = getattr(args, "ocpp", "2.0.1")
    print_summary(result, cfg.prices.currency, scenario.description, scenario.tz)
    print(f"charger: simulated, OCPP {result['ocpp']}")
    if broker is not None and cleared is not None:
        print(f"MQTT: removed the demo's {len(cleared)} retained topics from {broker}")
    (out_dir / "summary.json").write_text(json.dumps(result, indent=2))
    write_samples(run, out_dir / "samples.csv")
    picture = draw(
        run,
        out_dir / "demo.png",
        title=f"v2g-gateway demo ({scenario.name}): recorded day-ahead prices, "
        "simulated bidirectional charger and EV",
        tz=scenario.tz,
        reserve=RESERVE,
        outages=[window_span(scenario, w) for w in scenario.outages],
        demand_response=[window_span(scenario, w) for w in scenario.demand_response],
    )
    if picture:
        print(f"picture: {picture}")
    print(f"summary: {out_dir / 'summary.json'} (every sample: {out_dir / 'samples.csv'})")
    return 0 if result["reserve_respected"] and result["departure_target_met"] else 1


async def _say_mqtt(args: argparse.Namespace, gw: Gateway, broker: Broker | None) -> None:
    """Tell the user once whether, and where, the demo's state is visible on a broker."""
    if args.quiet:
        return
    if broker is None or gw.mqtt is None:
        print("MQTT: off (--mqtt HOST[:PORT] publishes the demo there, for Home Assistant)")
        return
    try:
        await asyncio.wait_for(gw.mqtt.connected.wait(), 2.0)
    except TimeoutError:
        print(f"MQTT: no broker at {broker}; the demo goes on and publishes when it appears")
        return
    base = Topics.from_config(gw.cfg).base
    print(f"MQTT: publishing on {broker} under {base}/# (removed again when the demo ends)")


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
    """Every 5 simulated minutes: record prices, SoC, power and meters, and show progress."""
    start, end, tz = scenario.start_at, scenario.end_at, scenario.tz
    at = start
    while at <= end and not (script.done() and script.exception() is not None):
        await clock.sleep((at - clock.now()).total_seconds())
        now = clock.now()
        while not events.empty():
            run.events.append(events.get_nowait())
        ev = sim.ev()
        price = _price_at(gw, now)
        if ev is not None:  # kept through the plug-out, for the departure row
            run.last_soc = ev.soc_percent
        imported, exported = sim.meter_wh()
        run.samples.append(
            Sample(
                at=now,
                import_price=None if price is None else price[0],
                export_price=None if price is None else price[1],
                soc=None if ev is None else ev.soc_percent,
                power_kw=sim.power_w() / 1000.0,
                plugged=ev is not None,
                import_wh=imported,
                export_wh=exported,
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
                f"  import {p}/kWh  [{bar:<30}] {min(done, 1.0):4.0%}{tail}"
            )
            sys.stdout.flush()
        at += SAMPLE_EVERY
    # Every event of the scenario is performed, however late a busy machine makes it.
    await asyncio.wait_for(script, 30)
    while not events.empty():
        run.events.append(events.get_nowait())


def _price_at(gw: Gateway, now: Any) -> tuple[float, float] | None:
    try:
        slots = gw.prices.user_prices(now, now + timedelta(minutes=1))
    except Exception:
        return None
    s = next((x for x in slots if x.start <= now < x.end), None)
    return None if s is None else (s.import_per_kwh, s.export_per_kwh)


def run_demo(args: argparse.Namespace) -> int:
    if args.mqtt:
        parse_broker(args.mqtt)  # a bad --mqtt is one line before anything starts
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
