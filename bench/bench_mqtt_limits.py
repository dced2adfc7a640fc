"""What a huge or deeply nested MQTT command costs the real daemon (issue 19, input limits).

    .venv/bin/python bench/bench_mqtt_limits.py [--mb 64]

Starts `v2g-gateway run` (its own process) against a real mosquitto with no packet limit of its
own (tests/mosquitto.py), then publishes, under `set/override`: a command of `--mb` MB, one nested
100,000 deep (200 KB), one nested 20,000 deep (40 KB) and a good command. Prints for MQTT 5 and 3.1.1 the daemon's resident memory before
and its peak (VmHWM) after, and the answer each command got (or none).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import aiomqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from mosquitto import start_broker  # noqa: E402

CONFIG = """
[gateway]
id = "bench"
state_dir = "{state}"
[ocpp]
host = "127.0.0.1"
port = 0
[[chargers]]
id = "garage"
password = "bench-password-123456"
[[vehicles]]
id = "car"
battery_kwh = 60
[mqtt]
host = "127.0.0.1"
port = {port}
protocol = "{protocol}"
homeassistant_discovery = false
"""


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


async def run(protocol: str, mb: int, tmp: Path) -> None:
    broker = start_broker(tmp / f"broker-{protocol}")
    cfg = tmp / f"gw-{protocol}.toml"
    cfg.write_text(
        CONFIG.format(state=tmp / f"state-{protocol}", port=broker.port, protocol=protocol)
    )
    proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before anything is timed)
        [sys.executable, "-m", "v2g_gateway.cli", "run", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = "v2g/bench"
    try:
        async with aiomqtt.Client(broker.host, broker.port) as c:
            await c.subscribe(f"{base}/#", qos=1)
            async with asyncio.timeout(30):
                async for m in c.messages:
                    if m.topic.value == f"{base}/availability" and m.payload == b"online":
                        break
            before = memory_kb(proc.pid, "VmRSS")
            sends = {
                "huge": json.dumps({"action": "pause", "pad": "x" * (mb << 20), "request_id": "h"}),
                "deep": "[" * 100_000 + "]" * 100_000,  # 200 KB: over the size cap
                "deep 40 KB": "[" * 20_000 + "]" * 20_000,  # under it: the depth check
                "good": json.dumps({"action": "pause", "vehicle": "car", "request_id": "g"}),
            }
            answers: dict[str, str] = {}
            for payload in sends.values():
                await c.publish(f"{base}/set/override", payload, qos=1)
            async with asyncio.timeout(30):
                async for m in c.messages:
                    if m.topic.value != f"{base}/events":
                        continue
                    ev = json.loads(m.payload)  # type: ignore[arg-type]
                    if ev.get("command") == "set/override":
                        msg = ev["message"]
                        key = next(
                            (n for n, p in sends.items() if f"({len(p)} bytes" in msg),
                            "good" if ev.get("request_id") == "g" else "deep 40 KB",
                        )
                        answers[key] = msg[:90]
                        if "good" in answers:
                            break
            peak = memory_kb(proc.pid, "VmHWM")
        print(
            f"MQTT {protocol}: RSS before {before / 1024:.0f} MB, peak after {peak / 1024:.0f} MB"
        )
        for name in sends:
            print(f"  {name:>10}: {answers.get(name, '(no answer: the broker dropped it)')}")
    finally:
        proc.terminate()
        proc.wait(10)
        broker.stop()


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=64)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for protocol in ("5", "3.1.1"):
            await run(protocol, args.mb, Path(d))


if __name__ == "__main__":
    asyncio.run(main())
