"""OCPP load benchmark: the gateway's CSMS against a bare mobilityhouse/ocpp CSMS that does nothing.

    .venv/bin/python bench/bench_ocpp.py [--count 1000] [--duration 60] [--meter-interval 10]

Each central system runs in its own process on 127.0.0.1; the chargers run in another process
(`simulators/fleet.py`: each boots, plugs in an EV and sends TransactionEvents with meter values
every interval). Printed: messages/s, p50/p99 round trip as the chargers see it, CPU seconds and
RSS of the central-system process, idle RSS with one charger, and gateway/bare ratios. The
gateway's sink writes every event to a real SQLite store (v2g_gateway.store.Store). Bounded:
loopback only, every process stops on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Bench-Password-0123456789"
TICKS = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ the two central systems


async def serve_gateway(count: int, state_dir: Path) -> None:
    from v2g_gateway.clock import SystemClock
    from v2g_gateway.config import parse_config
    from v2g_gateway.csms.server import CsmsServer
    from v2g_gateway.log import setup_logging
    from v2g_gateway.store.db import Store

    cfg = parse_config(
        {
            "gateway": {"state_dir": str(state_dir)},
            # The flat-out phase sends far faster than any real charger; lift the rate limit.
            "ocpp": {"host": "127.0.0.1", "port": 0, "max_messages_per_minute": 1_000_000},
            "chargers": [{"id": f"sim-{i:04d}", "password": PASSWORD} for i in range(1, count + 1)],
        }
    )
    setup_logging("json", "warning")
    store = Store.open(state_dir / "state.sqlite", cfg)
    server = CsmsServer(cfg, store.apply, SystemClock())
    await server.start()
    print(f"PORT {server.port}", flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await server.close()
        store.close()


async def serve_bare() -> None:
    """What mobilityhouse/ocpp's README server does: answer, keep nothing, check no one."""
    from ocpp.routing import on
    from ocpp.v201 import ChargePoint, call_result
    from websockets.asyncio.server import ServerConnection, serve

    now = "2025-01-01T00:00:00Z"

    class Bare(ChargePoint):  # type: ignore[misc]
        @on("BootNotification")
        def boot(self, **_: Any) -> Any:
            return call_result.BootNotification(current_time=now, interval=300, status="Accepted")

        @on("Heartbeat")
        def heartbeat(self, **_: Any) -> Any:
            return call_result.Heartbeat(current_time=now)

        @on("StatusNotification")
        def status(self, **_: Any) -> Any:
            return call_result.StatusNotification()

        @on("TransactionEvent")
        def tx(self, **_: Any) -> Any:
            return call_result.TransactionEvent()

        @on("MeterValues")
        def meter(self, **_: Any) -> Any:
            return call_result.MeterValues()

        @on("NotifyEVChargingNeeds")
        def needs(self, **_: Any) -> Any:
            return call_result.NotifyEVChargingNeeds(status="Accepted")

        @on("Authorize")
        def authorize(self, **_: Any) -> Any:
            return call_result.Authorize(id_token_info={"status": "Accepted"})

        @on("NotifyReport")
        def report(self, **_: Any) -> Any:
            return call_result.NotifyReport()

        @on("NotifyEvent")
        def event(self, **_: Any) -> Any:
            return call_result.NotifyEvent()

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else "/x"
        with contextlib.suppress(Exception):
            await Bare(path.rstrip("/").rsplit("/", 1)[-1], ws).start()

    import logging

    logging.getLogger("ocpp").setLevel(logging.WARNING)
    server = await serve(handler, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"])  # type: ignore[list-item]
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        server.close()
        await server.wait_closed()


# ------------------------------------------------------------------ a light charger fleet


_ANSWERS: dict[str, Any] = {
    "SetVariables": {"setVariableResult": []},
    "GetBaseReport": {"status": "Accepted"},
}


def _meter(ts: str, soc: float) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": ts,
            "sampledValue": [
                {"value": soc, "measurand": "SoC"},
                {"value": 7400, "measurand": "Power.Active.Import"},
                {"value": 0, "measurand": "Power.Active.Export"},
                {"value": 123456, "measurand": "Energy.Active.Import.Register"},
                {"value": 2345, "measurand": "Energy.Active.Export.Register"},
                {"value": 230.2, "measurand": "Voltage", "phase": "L1-N"},
            ],
        }
    ]


class _Link:
    """One raw OCPP-J connection: CALLs with measured round trips, CSMS calls answered."""

    def __init__(self, ws: Any, latencies: list[float]) -> None:
        self.ws = ws
        self.latencies = latencies
        self.waiting: dict[str, asyncio.Future[Any]] = {}
        self.n = 0
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                msg = json.loads(raw)
                if msg[0] == 2:
                    await self.ws.send(json.dumps([3, msg[1], _ANSWERS.get(msg[2], {})]))
                elif (fut := self.waiting.pop(msg[1], None)) is not None:
                    fut.set_result(msg)

    async def call(self, action: str, payload: dict[str, Any]) -> Any:
        self.n += 1
        uid = str(self.n)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[uid] = fut
        started = time.perf_counter()
        await self.ws.send(json.dumps([2, uid, action, payload]))
        answer = await fut
        self.latencies.append(time.perf_counter() - started)
        return answer


async def run_load(port: int, count: int, duration: float, interval: float, burst: bool) -> None:
    """Chargers that boot, start a transaction and meter every `interval` s (or flat out)."""
    import random
    import statistics
    from datetime import UTC, datetime

    from websockets.asyncio.client import connect

    boot_latencies: list[float] = []
    latencies: list[float] = []
    booted = 0
    all_booted = asyncio.Event()
    steady_from = 0.0

    failed = 0

    def arrived() -> None:
        nonlocal steady_from
        if booted + failed == count and not all_booted.is_set():
            steady_from = time.perf_counter()
            all_booted.set()

    async def charger(i: int) -> None:
        nonlocal failed
        try:
            await one_charger(i)
        except Exception:
            failed += 1
            arrived()
            raise

    async def one_charger(i: int) -> None:
        nonlocal booted
        ident = f"sim-{i:04d}"
        token = base64.b64encode(f"{ident}:{PASSWORD}".encode()).decode()
        async with connect(
            f"ws://127.0.0.1:{port}/ocpp/{ident}",
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {token}"},
            open_timeout=120,
        ) as ws:
            link = _Link(ws, boot_latencies)
            now = datetime.now(UTC).isoformat()
            station = {"vendorName": "Bench", "model": "Raw"}
            await link.call("BootNotification", {"reason": "PowerUp", "chargingStation": station})
            status = {
                "timestamp": now,
                "connectorStatus": "Occupied",
                "evseId": 1,
                "connectorId": 1,
            }
            await link.call("StatusNotification", status)
            tx = {"transactionId": f"tx-{i}", "chargingState": "Charging"}
            seq = 0
            await link.call(
                "TransactionEvent",
                {"eventType": "Started", "timestamp": now, "triggerReason": "CablePluggedIn",
                 "seqNo": seq, "transactionInfo": tx, "evse": {"id": 1, "connectorId": 1}},
            )  # fmt: skip
            booted += 1
            arrived()
            # Steady state: every charger connected and booted, then metering (the target).
            await all_booted.wait()
            link.latencies = latencies
            if not burst:
                await asyncio.sleep(random.uniform(0, interval))
            soc = 50.0
            while time.perf_counter() < steady_from + duration:
                now = datetime.now(UTC).isoformat()
                seq += 1
                soc = min(100.0, soc + 0.01)
                await link.call(
                    "TransactionEvent",
                    {"eventType": "Updated", "timestamp": now, "seqNo": seq,
                     "triggerReason": "MeterValuePeriodic", "transactionInfo": tx,
                     "meterValue": _meter(now, soc)},
                )  # fmt: skip
                await link.call("MeterValues", {"evseId": 1, "meterValue": _meter(now, soc)})
                if not burst:
                    await asyncio.sleep(interval)
            link.reader.cancel()

    async def start_clock() -> None:
        nonlocal steady_from
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_booted.wait(), 180)
        all_booted.set()
        steady_from = time.perf_counter()

    started = time.perf_counter()
    clock_task = asyncio.create_task(start_clock())
    results = await asyncio.gather(
        *(charger(i) for i in range(1, count + 1)), return_exceptions=True
    )
    await clock_task
    elapsed = time.perf_counter() - steady_from
    ms = sorted(x * 1000 for x in latencies)
    boot_ms = sorted(x * 1000 for x in boot_latencies)
    print(
        json.dumps(
            {
                "chargers": count,
                "booted": booted,
                "errors": sum(1 for r in results if isinstance(r, BaseException)),
                "first_error": next(
                    (repr(r) for r in results if isinstance(r, BaseException)), None
                ),
                "boot_s": steady_from - started,
                "boot_p99_ms": boot_ms[int(len(boot_ms) * 0.99)] if boot_ms else float("nan"),
                "duration_s": elapsed,
                "messages": len(ms),
                "messages_per_s": len(ms) / elapsed,
                "latency_p50_ms": statistics.median(ms) if ms else float("nan"),
                "latency_p99_ms": ms[int(len(ms) * 0.99)] if ms else float("nan"),
            }
        )
    )


# ------------------------------------------------------------------ measuring


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fleet(
    client: str, port: int, count: int, duration: float, interval: int, pwfile: Path
) -> dict[str, Any]:
    if client == "fleet":
        cmd = [
            sys.executable, "-m", "simulators.fleet", "--url", f"ws://127.0.0.1:{port}/ocpp",
            "--count", str(count), "--password-file", str(pwfile), "--meter-interval",
            str(interval), "--duration", str(duration), "--json",
        ]  # fmt: skip
    else:
        cmd = [
            sys.executable, __file__, "load", "--port", str(port), "--count", str(count),
            "--duration", str(duration), "--meter-interval", str(interval),
        ]  # fmt: skip
        if client == "burst":
            cmd.append("--burst")
    out = subprocess.run(
        cmd,
        cwd=ROOT, capture_output=True, text=True, timeout=duration + 300, check=False,
    )  # fmt: skip
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"fleet failed (exit {out.returncode}): {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@dataclass
class Figures:
    name: str
    idle_rss_mb: float
    rss_mb: float
    peak_rss_mb: float
    cpu_s: float
    report: dict[str, Any]
    burst: dict[str, Any]

    @property
    def cpu_percent(self) -> float:
        return 100 * self.cpu_s / self.report["duration_s"]


def measure(name: str, args: argparse.Namespace, work: Path) -> Figures:
    mode = ["serve-gateway", "--count", str(args.count)] if name == "gateway" else ["serve-bare"]
    proc = subprocess.Popen(
        [sys.executable, __file__, *mode, "--state-dir", str(work / name)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    try:
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise SystemExit(f"{name} server did not start: {line!r}")
        port = int(line.split()[1])
        pwfile = work / "password"
        fleet(args.client, port, 1, args.idle_seconds, args.meter_interval, pwfile)
        idle = rss_mb(proc.pid)
        cpu0 = cpu_s(proc.pid)
        report = fleet(args.client, port, args.count, args.duration, args.meter_interval, pwfile)
        cpu = cpu_s(proc.pid) - cpu0
        rss, peak = rss_mb(proc.pid), rss_mb(proc.pid, "VmHWM")
        burst = fleet("burst", port, args.burst_chargers, args.burst_seconds, 1, pwfile)
        return Figures(name, idle, rss, peak, cpu, report, burst)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "mode", nargs="?", default="bench", choices=["bench", "serve-gateway", "serve-bare", "load"]
    )
    p.add_argument("--count", type=int, default=1000, help="chargers (1..1000)")
    p.add_argument("--duration", type=float, default=60.0, help="wall seconds of load per system")
    p.add_argument("--meter-interval", type=int, default=10, help="seconds between meter values")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="one charger, before the load")
    p.add_argument("--state-dir", type=Path, default=None)
    p.add_argument(
        "--client",
        choices=["raw", "fleet"],
        default="raw",
        help="raw: a light OCPP-J client process (default); fleet: simulators/fleet.py",
    )
    p.add_argument("--burst-chargers", type=int, default=50, help="chargers sending flat out")
    p.add_argument("--burst-seconds", type=float, default=10.0, help="length of the flat-out run")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--burst", action="store_true")
    args = p.parse_args()
    if args.mode == "load":
        asyncio.run(run_load(args.port, args.count, args.duration, args.meter_interval, args.burst))
        return 0
    if args.mode == "serve-gateway":
        args.state_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(serve_gateway(args.count, args.state_dir))
        return 0
    if args.mode == "serve-bare":
        asyncio.run(serve_bare())
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-ocpp-") as tmp:
        work = Path(tmp)
        (work / "password").write_text(PASSWORD)
        started = time.perf_counter()
        gw = measure("gateway", args, work)
        bare = measure("bare", args, work)
    rows = [
        ("chargers booted", lambda f: f"{f.report['booted']}/{f.report['chargers']}"),
        ("messages/s", lambda f: f"{f.report['messages_per_s']:.1f}"),
        ("latency p50 ms", lambda f: f"{f.report['latency_p50_ms']:.2f}"),
        ("latency p99 ms", lambda f: f"{f.report['latency_p99_ms']:.2f}"),
        (
            "boot storm s / p99 ms",
            lambda f: (
                f"{f.report.get('boot_s', float('nan')):.1f} / "
                f"{f.report.get('boot_p99_ms', float('nan')):.0f}"
            ),
        ),
        ("CPU s (CPU %)", lambda f: f"{f.cpu_s:.1f} ({f.cpu_percent:.0f} %)"),
        ("RSS MB end / peak", lambda f: f"{f.rss_mb:.0f} / {f.peak_rss_mb:.0f}"),
        ("idle RSS MB, 1 charger", lambda f: f"{f.idle_rss_mb:.1f}"),
    ]
    print(
        f"OCPP load: {args.count} chargers, meter interval {args.meter_interval} s, "
        f"{args.duration:.0f} s each, client {args.client} (gateway sink: SQLite store)"
    )
    print(f"{'':24}{'gateway':>16}{'bare ocpp':>16}")
    for label, fmt in rows:
        print(f"{label:24}{fmt(gw):>16}{fmt(bare):>16}")
    for label, key in (
        ("flat-out messages/s", "messages_per_s"),
        ("flat-out p99 ms", "latency_p99_ms"),
    ):
        print(f"{label:24}{gw.burst[key]:>16.1f}{bare.burst[key]:>16.1f}")
    ratio = gw.burst["messages_per_s"] / max(bare.burst["messages_per_s"], 1e-9)
    print(f"throughput ratio gateway/bare (flat out, {args.burst_chargers} chargers)  {ratio:.2f}")
    print(
        f"p99 ratio gateway/bare         {gw.report['latency_p99_ms'] / bare.report['latency_p99_ms']:.2f}"
    )
    print(f"CPU ratio gateway/bare         {gw.cpu_s / max(bare.cpu_s, 1e-9):.2f}")
    print(f"(bench took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
