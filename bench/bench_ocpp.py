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
            "ocpp": {"host": "127.0.0.1", "port": 0, "max_messages_per_minute": 600},
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


# ------------------------------------------------------------------ measuring


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fleet(port: int, count: int, duration: float, interval: int, pwfile: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable, "-m", "simulators.fleet", "--url", f"ws://127.0.0.1:{port}/ocpp",
            "--count", str(count), "--password-file", str(pwfile), "--meter-interval",
            str(interval), "--duration", str(duration), "--json",
        ],
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
        fleet(port, 1, args.idle_seconds, args.meter_interval, pwfile)
        idle = rss_mb(proc.pid)
        cpu0 = cpu_s(proc.pid)
        report = fleet(port, args.count, args.duration, args.meter_interval, pwfile)
        cpu = cpu_s(proc.pid) - cpu0
        return Figures(name, idle, rss_mb(proc.pid), rss_mb(proc.pid, "VmHWM"), cpu, report)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "mode", nargs="?", default="bench", choices=["bench", "serve-gateway", "serve-bare"]
    )
    p.add_argument("--count", type=int, default=1000, help="chargers (1..1000)")
    p.add_argument("--duration", type=float, default=60.0, help="wall seconds of load per system")
    p.add_argument("--meter-interval", type=int, default=10, help="seconds between meter values")
    p.add_argument("--idle-seconds", type=float, default=5.0, help="one charger, before the load")
    p.add_argument("--state-dir", type=Path, default=None)
    args = p.parse_args()
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
        ("CPU s (CPU %)", lambda f: f"{f.cpu_s:.1f} ({f.cpu_percent:.0f} %)"),
        ("RSS MB end / peak", lambda f: f"{f.rss_mb:.0f} / {f.peak_rss_mb:.0f}"),
        ("idle RSS MB, 1 charger", lambda f: f"{f.idle_rss_mb:.1f}"),
    ]
    print(
        f"OCPP load: {args.count} chargers, meter interval {args.meter_interval} s, "
        f"{args.duration:.0f} s each (gateway sink: SQLite store)"
    )
    print(f"{'':24}{'gateway':>16}{'bare ocpp':>16}")
    for label, fmt in rows:
        print(f"{label:24}{fmt(gw):>16}{fmt(bare):>16}")
    ratio = gw.report["messages_per_s"] / max(bare.report["messages_per_s"], 1e-9)
    print(f"throughput ratio gateway/bare  {ratio:.2f}")
    print(
        f"p99 ratio gateway/bare         {gw.report['latency_p99_ms'] / bare.report['latency_p99_ms']:.2f}"
    )
    print(f"CPU ratio gateway/bare         {gw.cpu_s / max(bare.cpu_s, 1e-9):.2f}")
    print(f"(bench took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
