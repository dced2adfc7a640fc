"""Handshake flood benchmark: a real charger's time to boot while 1,100 half-open connections
(TCP connects that never finish the websocket handshake, half of them stopping mid-request) sit
on the gateway's OCPP port, against the same charger without the flood.

    .venv/bin/python bench/bench_handshakes.py [--flood 1100] [--trials 10] [--files 1024]

The gateway is the real daemon (`v2g-gateway run`, MQTT off) in its own process with a file
limit of `--files` (1,024: a unit without LimitNOFILE). The charger is the project's simulator
(simulators/charger.py) from 127.0.0.1; the flood comes from 127.0.0.2 ("one device") or spread
over 110 addresses 127.0.1.x ("many devices"). Each trial opens a fresh flood, then times the
charger from its TCP connect to the accepted BootNotification. The last scenario turns the caps
off (max_pending_* = 65536) to show what an unprotected server does. Goal: boot under 500 ms
during the flood. Loopback only; the daemon is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulators.charger import SimulatedCharger  # noqa: E402
from simulators.handshake_flood import half_open  # noqa: E402
from v2g_gateway.clock import SystemClock  # noqa: E402

PASSWORD = "Bench-Password-0123456789"
ONE = ("127.0.0.2",)
MANY = tuple(f"127.0.1.{i}" for i in range(1, 111))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(directory: Path, port: int, caps: bool) -> Path:
    limits = "" if caps else "max_pending_handshakes = 65536\nmax_pending_per_address = 65536\n"
    path = directory / "gateway.toml"
    path.write_text(
        f"""
[gateway]
id = "bench"
state_dir = "state"
timezone = "Europe/Berlin"
log_format = "json"
log_level = "warning"
[ocpp]
host = "0.0.0.0"
port = {port}
{limits}
[[chargers]]
id = "garage"
password = "{PASSWORD}"
[[vehicles]]
id = "car"
battery_kwh = 60
[prices]
source = "tariff"
[[prices.tariff]]
start = "00:00"
end = "00:00"
import_per_kwh = 0.30
export_per_kwh = 0.05
[mqtt]
enabled = false
"""
    )
    return path


class Daemon:
    def __init__(self, directory: Path, files: int, caps: bool) -> None:
        self.port = free_port()
        self.log = directory / f"daemon-{'caps' if caps else 'nocaps'}.log"
        config = write_config(directory, self.port, caps)

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "v2g_gateway.cli", "run", "--config", str(config)],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
            preexec_fn=limit,
        )

    async def wait_listening(self) -> None:
        for _ in range(300):
            if self.proc.poll() is not None:
                raise SystemExit(f"the daemon exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                _, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                return
            await asyncio.sleep(0.1)
        raise SystemExit("the daemon never listened")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def lines(self, word: str) -> int:
        return sum(word in line for line in self.log.read_text().splitlines())


async def start_daemon(directory: Path, files: int, caps: bool) -> Daemon:
    """A listening daemon; a port taken meanwhile by another program is retried elsewhere."""
    for _ in range(5):
        d = Daemon(directory, files, caps)
        try:
            await d.wait_listening()
            return d
        except SystemExit as exc:
            d.stop()
            if "already in use" not in str(exc):
                raise
    raise SystemExit("no free port for the daemon")


async def boot_once(port: int, timeout_s: float = 30.0) -> float:
    """Seconds from the charger's start to its accepted BootNotification."""
    sim = SimulatedCharger(
        f"ws://127.0.0.1:{port}",
        "garage",
        password=PASSWORD,
        clock=SystemClock(),
        reconnect_min_s=0.2,
        reconnect_max_s=1.0,
    )
    started = time.perf_counter()
    task = asyncio.create_task(sim.run())
    try:
        await asyncio.wait_for(sim.booted.wait(), timeout_s)
        return time.perf_counter() - started
    except TimeoutError:
        return float("inf")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def scenario(port: int, trials: int, flood: int, sources: tuple[str, ...]) -> list[float]:
    times = []
    for _ in range(trials):
        f = await half_open("127.0.0.1", port, flood, sources=sources) if flood else None
        try:
            times.append(await boot_once(port))
        finally:
            if f is not None:
                f.close()
        await asyncio.sleep(0.2)  # the daemon sees the flood's resets before the next trial
    return times


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


async def run(flood: int, trials: int, files: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the flood needs its own files
    if hard < flood + 100:
        raise SystemExit(f"this process may open only {hard} files; the flood needs {flood}")
    rows: list[tuple[str, list[float], int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for caps in (True, False):
            d = await start_daemon(Path(tmp), files, caps)
            try:
                plans: list[tuple[str, int, tuple[str, ...]]] = (
                    [
                        ("no flood (baseline)", 0, ONE),
                        (f"{flood:,} half-open, one address", flood, ONE),
                        (f"{flood:,} half-open, 110 addresses", flood, MANY),
                    ]
                    if caps
                    else [(f"{flood:,} half-open, one address, caps off", flood, ONE)]
                )
                for name, n, sources in plans:
                    times = await scenario(d.port, trials, n, sources)
                    rows.append((name, times, 0))
                out_of_files = d.lines("out of file descriptors")
                tracebacks = d.lines("Traceback")
                rows[-1] = (rows[-1][0], rows[-1][1], out_of_files)
                print(
                    f"daemon {'with' if caps else 'without'} caps: {out_of_files} "
                    f"'out of file descriptors' line(s), {tracebacks} traceback(s)",
                    flush=True,
                )
            finally:
                d.stop()
    base, _ = summary(rows[0][1])
    print(f"\nfile limit {files}, {trials} trials each; time to boot (connect -> Accepted):")
    print(f"{'scenario':42} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'x baseline':>10}")
    for name, times, _ in rows:
        p50, p95 = summary(times)
        print(
            f"{name:42} {p50 * 1e3:8.1f} {p95 * 1e3:8.1f} {max(times) * 1e3:8.1f} "
            f"{p50 / base:10.2f}"
        )
    flooded = [t for name, times, _ in rows[1:3] for t in times]
    verdict = "met" if max(flooded) < 0.5 else "MISSED"
    print(f"\ngoal (boot under 500 ms during the flood, caps on): {verdict}")


def main(argv: Any = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--flood", type=int, default=1100, help="half-open connections per trial")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--files", type=int, default=1024, help="the daemon's file limit")
    args = ap.parse_args(argv)
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    asyncio.run(run(args.flood, args.trials, args.files))


if __name__ == "__main__":
    main()
