"""Run N simulated chargers against a gateway on this machine and report message rate and latency.

    python -m simulators.fleet --url ws://127.0.0.1:9000 --count 50 --password-file pw \
        --meter-interval 10 --duration 60

Chargers are named sim-0001, sim-0002, ...; each boots, plugs in an EV and meters until the
duration ends. Only loopback addresses are accepted: this is a load tool for one's own gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from simulators.battery import EvBattery
from simulators.charger import SimulatedCharger
from simulators.errors import SimulatorError
from v2g_gateway.clock import AcceleratedClock, Clock, SystemClock

MAX_COUNT = 1000
MAX_DURATION_S = 3600.0


class FleetError(SimulatorError):
    """A command-line mistake; printed as one line, exit status 2."""


@dataclass(frozen=True, slots=True)
class FleetReport:
    chargers: int
    booted: int
    duration_s: float
    messages: int
    messages_per_s: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    reconnects: int

    def lines(self) -> list[str]:
        def ms(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.2f} ms"

        return [
            f"chargers booted   {self.booted}/{self.chargers}",
            f"messages sent     {self.messages} in {self.duration_s:.1f} s",
            f"messages/s        {self.messages_per_s:.1f}",
            f"latency p50       {ms(self.latency_p50_ms)}",
            f"latency p99       {ms(self.latency_p99_ms)}",
            f"reconnects        {self.reconnects}",
        ]


def check_loopback(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise FleetError(f"--url must start with ws:// or wss://, got {url!r}")
    host = parts.hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise FleetError(f"--url must point at this machine (127.0.0.1, ::1, localhost), got {host!r}")


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def run_fleet(
    url: str,
    count: int,
    *,
    password: str | None,
    meter_interval_s: int = 10,
    duration_s: float = 60.0,
    clock: Clock | None = None,
    seed: int = 0,
    validate_frames: bool = True,
) -> FleetReport:
    """Run the fleet for `duration_s` wall seconds and measure what it sent."""
    check_loopback(url)
    if not 1 <= count <= MAX_COUNT:
        raise FleetError(f"--count must be within 1..{MAX_COUNT}, got {count}")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise FleetError(f"--duration must be within (0, {MAX_DURATION_S:.0f}] s, got {duration_s}")
    clock = clock or SystemClock()
    rng = random.Random(seed)
    chargers = [
        SimulatedCharger(
            url,
            f"sim-{i:04d}",
            password=password,
            clock=clock,
            meter_interval_s=meter_interval_s,
            step_s=min(10.0, float(meter_interval_s)),
            validate_frames=validate_frames,
        )
        for i in range(1, count + 1)
    ]

    async def one(charger: SimulatedCharger) -> None:
        await charger.booted.wait()
        ev = EvBattery(60, rng.uniform(30, 80), max_charge_w=11000, max_discharge_w=10000)
        await charger.plug_in(ev, id_token=f"{charger.charger_id}-car")

    started = time.perf_counter()
    runners = [asyncio.create_task(c.run(), name=f"fleet-{c.charger_id}") for c in chargers]
    pluggers = [asyncio.create_task(one(c)) for c in chargers]
    try:
        await asyncio.sleep(duration_s)
    finally:
        for task in (*pluggers, *runners):
            task.cancel()
        for task in (*pluggers, *runners):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    elapsed = time.perf_counter() - started
    latencies = [x * 1000 for c in chargers for x in c.latencies_s]
    sent = sum(c.sent_messages for c in chargers)
    return FleetReport(
        chargers=count,
        booted=sum(1 for c in chargers if c.connects > 0 and c.sent_messages > 0),
        duration_s=elapsed,
        messages=sent,
        messages_per_s=sent / elapsed if elapsed > 0 else 0.0,
        latency_p50_ms=_percentile(latencies, 50),
        latency_p99_ms=_percentile(latencies, 99),
        reconnects=sum(max(0, c.connects - 1) for c in chargers),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.fleet", description=__doc__)
    parser.add_argument(
        "--url", required=True, help="gateway OCPP address, e.g. ws://127.0.0.1:9000"
    )
    parser.add_argument("--count", type=int, default=10, help=f"chargers (1..{MAX_COUNT})")
    parser.add_argument("--password-file", type=Path, help="file holding every charger's password")
    parser.add_argument("--meter-interval", type=int, default=10, help="clock seconds")
    parser.add_argument("--duration", type=float, default=60.0, help="wall seconds to run")
    parser.add_argument("--speed", type=float, default=1.0, help="clock speed (1 = real time)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        password = None
        if args.password_file is not None:
            try:
                password = args.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise FleetError(f"--password-file {args.password_file}: {exc.strerror}") from None
        if args.meter_interval < 1:
            raise FleetError(f"--meter-interval must be >= 1, got {args.meter_interval}")
        if args.speed <= 0:
            raise FleetError(f"--speed must be positive, got {args.speed}")
        clock: Clock = SystemClock()
        if args.speed != 1.0:
            clock = AcceleratedClock(datetime.now(UTC), args.speed)
        report = asyncio.run(
            run_fleet(
                args.url,
                args.count,
                password=password,
                meter_interval_s=args.meter_interval,
                duration_s=args.duration,
                clock=clock,
            )
        )
    except FleetError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        print("\n".join(report.lines()))
    return 0 if report.booted == report.chargers else 1


if __name__ == "__main__":
    raise SystemExit(main())
