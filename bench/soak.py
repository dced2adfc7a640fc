"""Soak: N simulated chargers against one gateway process for M minutes over accelerated days.

    python bench/soak.py --chargers 100 --minutes 30 [--speed 96] [--sample-s 10] [--json F]

The gateway runs in its own process (this file with --serve) on an AcceleratedClock, so the
prices, plans and departures of whole days pass during the run; the fleet (simulators.fleet)
runs here on a clock with the same origin. Every sample reads the gateway's /proc entry (RSS,
open files, threads) and the asyncio task count the gateway prints. The figure that matters is
RSS growth after warm-up: a leak shows as a steady slope, a healthy gateway as a flat line.
Loopback only; at most 1000 chargers and 120 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tomli_w

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIM_START = datetime(2025, 1, 15, 6, tzinfo=UTC)
MAX_CHARGERS, MAX_MINUTES = 1000, 120


@dataclass
class Sample:
    wall_s: float
    sim_time: str
    rss_mb: float
    open_files: int
    threads: int
    tasks: int | None
    cpu_percent: float  # of one core, since the previous sample


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(state_dir: Path, port: int, chargers: int, password: str) -> dict[str, Any]:
    ids = [f"sim-{i:04d}" for i in range(1, chargers + 1)]
    return {
        "gateway": {
            "id": "soak",
            "state_dir": str(state_dir),
            "timezone": "Europe/Berlin",
            "tick_seconds": 60,
            "log_level": "warning",
            "log_format": "json",
        },
        "ocpp": {
            "host": "127.0.0.1",
            "port": port,
            "heartbeat_interval_s": 300,
            "max_messages_per_minute": 100000,
        },
        "chargers": [{"id": c, "password": password} for c in ids],
        "vehicles": [
            {"id": f"car-{c}", "battery_kwh": 60, "charger": c, "id_tokens": [f"{c}-car"]}
            for c in ids
        ],
        "prices": {
            "source": "tariff",
            "tariff": [
                {"start": "17:00", "end": "21:00", "import_per_kwh": 0.45, "export_per_kwh": 0.4},
                {"start": "21:00", "end": "17:00", "import_per_kwh": 0.2, "export_per_kwh": 0.05},
            ],
        },
        "preferences": {
            "discharge_above_per_kwh": 0.35,
            "departures": [{"time": "07:30", "target_soc_percent": 80}],
        },
        "outage": {"enabled": False},
        "mqtt": {"enabled": False},
    }


def clock_at(epoch_wall: float, speed: float) -> Any:
    """An AcceleratedClock whose origin is SIM_START at wall time `epoch_wall` (shared by both sides)."""
    from v2g_gateway.clock import AcceleratedClock

    now = SIM_START + timedelta(seconds=(time.time() - epoch_wall) * speed)
    return AcceleratedClock(now, speed)


# ---------------------------------------------------------------------------- gateway side


def object_counts() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def trace_diff(
    before: Any, after: Any, counts: tuple[Counter[str], Counter[str]], out: Path, top: int = 15
) -> None:
    """Where the gateway's heap grew between two tracemalloc snapshots, biggest first, and
    which kinds of objects (tracked by the garbage collector) there are more of."""
    grown = sorted(((n - counts[0][k], k) for k, n in counts[1].items()), reverse=True)
    lines = ["objects by type, end minus warm-up:"]
    lines += [f"{d:+10d} {k}" for d, k in grown[:top] if d > 0]
    lines.append("allocations by traceback, end minus warm-up:")
    for stat in after.compare_to(before, "traceback")[:top]:
        lines.append(f"{stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks")
        lines += [f"    {frame}" for frame in stat.traceback.format(most_recent_first=True)]
    out.write_text("\n".join(lines) + "\n")


async def serve(
    config_path: Path, epoch_wall: float, speed: float, report_s: float, trace: Path | None
) -> None:
    from v2g_gateway.app import Gateway
    from v2g_gateway.config import load_config
    from v2g_gateway.log import setup_logging

    cfg = load_config(config_path)
    setup_logging(cfg.gateway.log_format, cfg.gateway.log_level)
    gw = Gateway(cfg, clock_at(epoch_wall, speed))
    runner = asyncio.create_task(gw.run(), name="gateway")
    await gw.ready.wait()
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent closes stdin to stop us
    baseline: Any = None
    counts: Counter[str] = Counter()
    if trace is not None:
        import tracemalloc

        tracemalloc.start(8)
    started = time.monotonic()
    while not stop.is_set():
        if trace is not None and baseline is None and time.monotonic() - started > 120:
            baseline = tracemalloc.take_snapshot()  # after warm-up: caches and pools are full
            counts = object_counts()
        print(f"TASKS {len(asyncio.all_tasks())}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), report_s)
    if trace is not None:
        after = tracemalloc.take_snapshot()
        trace_diff(baseline or after, after, (counts, object_counts()), trace)
    gw.stop.set()
    await runner


# ---------------------------------------------------------------------------- fleet side


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_sample(pid: int) -> tuple[float, int, int]:
    rss_kb, threads = 0, 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss_kb / 1024.0, len(os.listdir(f"/proc/{pid}/fd")), threads


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    from simulators.fleet import run_fleet

    with tempfile.TemporaryDirectory(prefix="v2g-soak-") as tmp:
        port, password = free_port(), secrets.token_urlsafe(18)
        cfg_path = Path(tmp) / "gateway.toml"
        cfg_path.write_text(
            tomli_w.dumps(config(Path(tmp) / "state", port, args.chargers, password))
        )
        epoch = time.time()
        log_file = (Path(tmp) / "gateway.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            str(cfg_path),
            "--epoch",
            repr(epoch),
            "--speed",
            str(args.speed),
            "--sample-s",
            str(min(args.sample_s, 5.0)),
            *(["--trace", str(args.tracemalloc.resolve())] if args.tracemalloc else []),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
        )
        assert proc.stdout is not None and proc.stdin is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if line.strip() != b"READY":
            raise SystemExit(f"gateway did not start: {line!r}")
        tasks: list[int | None] = [None]

        async def read_tasks() -> None:
            assert proc.stdout is not None
            async for raw in proc.stdout:
                if raw.startswith(b"TASKS "):
                    tasks[0] = int(raw.split()[1])

        reader = asyncio.create_task(read_tasks())
        clock = clock_at(epoch, args.speed)
        samples: list[Sample] = []
        t0 = time.monotonic()

        async def sample_loop() -> None:
            last_cpu, last_t = cpu_seconds(proc.pid), time.monotonic()
            while True:
                rss, fds, threads = proc_sample(proc.pid)
                cpu, t = cpu_seconds(proc.pid), time.monotonic()
                busy = 100.0 * (cpu - last_cpu) / max(t - last_t, 1e-9)
                last_cpu, last_t = cpu, t
                samples.append(
                    Sample(
                        round(time.monotonic() - t0, 1),
                        clock.now().isoformat(timespec="minutes"),
                        round(rss, 1),
                        fds,
                        threads,
                        tasks[0],
                        round(busy, 1),
                    )
                )
                if not args.quiet:
                    s = samples[-1]
                    print(
                        f"{s.wall_s:7.0f}s sim {s.sim_time}  rss {s.rss_mb:7.1f} MB  "
                        f"fds {s.open_files:4d}  threads {s.threads:3d}  tasks {s.tasks}  "
                        f"cpu {s.cpu_percent:5.1f} %",
                        flush=True,
                    )
                await asyncio.sleep(args.sample_s)

        sampler = asyncio.create_task(sample_loop())
        report = await run_fleet(
            f"ws://127.0.0.1:{port}",
            args.chargers,
            password=password,
            meter_interval_s=60,
            duration_s=args.minutes * 60.0,
            clock=clock,
            # The gateway checks every frame against the schemas itself; the ocpp library's check
            # on the fleet side would make the fleet process, not the gateway, the bottleneck.
            validate_frames=False,
        )
        sampler.cancel()
        proc.stdin.close()
        code = await asyncio.wait_for(proc.wait(), 30)
        reader.cancel()
        log_file.close()
        errors = sum(
            1
            for x in (Path(tmp) / "gateway.log").read_text(errors="replace").splitlines()
            if '"level": "error"' in x or "Traceback" in x
        )
    return summarise(args, samples, asdict(report), code, errors)


def summarise(
    args: argparse.Namespace,
    samples: list[Sample],
    fleet: dict[str, Any],
    code: int | None,
    errors: int,
) -> dict[str, Any]:
    warm = [s for s in samples if s.wall_s >= min(120.0, args.minutes * 60 * 0.2)] or samples
    k = max(1, len(warm) // 5)
    first, last = warm[:k], warm[-k:]
    hours = max((last[-1].wall_s - first[0].wall_s) / 3600.0, 1e-9)
    growth = statistics.median(s.rss_mb for s in last) - statistics.median(s.rss_mb for s in first)
    tasks = [s.tasks for s in warm if s.tasks is not None]
    return {
        "chargers": args.chargers,
        "minutes": args.minutes,
        "speed": args.speed,
        "simulated_hours": round(args.minutes * args.speed / 60.0, 1),
        "rss_start_mb": first[0].rss_mb,
        "rss_end_mb": last[-1].rss_mb,
        "rss_peak_mb": max(s.rss_mb for s in samples),
        "rss_growth_after_warmup_mb": round(growth, 1),
        "rss_slope_mb_per_hour": round(growth / hours, 1),
        "open_files_min_max": [min(s.open_files for s in warm), max(s.open_files for s in warm)],
        "threads_max": max(s.threads for s in warm),
        "gateway_cpu_percent_median": statistics.median(s.cpu_percent for s in warm),
        "tasks_min_max": [min(tasks), max(tasks)] if tasks else None,
        "gateway_exit_code": code,
        "gateway_error_lines": errors,
        "fleet": fleet,
        "samples": [asdict(s) for s in samples],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--chargers", type=int, default=100)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument(
        "--speed", type=float, default=96.0, help="clock speed-up (96: 2 days in 30 min)"
    )
    p.add_argument("--sample-s", type=float, default=10.0, help="wall seconds between samples")
    p.add_argument("--json", type=Path, default=None, help="write the summary here")
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--tracemalloc",
        type=Path,
        default=None,
        help="trace the gateway's allocations (slow) and write where its heap grew after warm-up",
    )
    p.add_argument("--trace", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--epoch", type=float, default=0.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.epoch, args.speed, args.sample_s, args.trace))
        return 0
    if not 1 <= args.chargers <= MAX_CHARGERS or not 0 < args.minutes <= MAX_MINUTES:
        p.error(f"--chargers within 1..{MAX_CHARGERS}, --minutes within (0, {MAX_MINUTES}]")
    if args.speed <= 0 or args.sample_s <= 0:
        p.error("--speed and --sample-s must be positive")
    import logging

    import structlog

    # The simulated chargers log every profile; the soak's own lines are what matter here.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = asyncio.run(soak(args))
    shown = {k: v for k, v in result.items() if k not in ("samples", "fleet")}
    for k, v in shown.items():
        print(f"{k:28s} {v}")
    for line in result["fleet"].items():
        print(f"fleet.{line[0]:22s} {line[1]}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["gateway_exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
