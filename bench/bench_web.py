"""Web app: page load and API latency on the daemon, idle and under the 100-charger soak load.

    python bench/bench_web.py [--chargers 100] [--minutes 3] [--requests 200] [--browser-loads 8]

The gateway runs in its own process (bench/soak.py --serve, with a [web] table added); the fleet
of simulated chargers (simulators.fleet, as in the soak) and the HTTP client run here. Each figure
is measured twice in the same run, first on the idle gateway (the baseline), then while the fleet
sends its meter values, and printed with the ratio. "Page load" is the first load of the status
page in Debian's chromium (navigation start to the load event, and until the plan chart is drawn)
and, without a browser, the HTML, stylesheet, script and plan fetched over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import tomli_w

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "bench", ROOT / "tests" / "e2e"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import soak  # noqa: E402

WEB_PASSWORD = "bench-web-password"


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


async def latencies(c: httpx.AsyncClient, method: str, path: str, n: int, **kw: Any) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = await c.request(method, path, **kw)
        out.append((time.perf_counter() - t) * 1000.0)
        if r.status_code >= 400:
            raise SystemExit(f"{method} {path}: {r.status_code} {r.text[:200]}")
    return out


async def http_page(c: httpx.AsyncClient, vehicle: str, n: int) -> tuple[list[float], int]:
    """The first load of one car's page without a browser: page, stylesheet, script, icon and
    the plan."""
    out, size = [], 0
    for _ in range(n):
        t = time.perf_counter()
        parts = [await c.get(f"/?vehicle={vehicle}")]
        parts += await asyncio.gather(
            c.get("/static/app.css"),
            c.get("/static/app.js"),
            c.get("/static/icon.svg"),
            c.get(f"/api/vehicles/{vehicle}/plan"),
        )
        out.append((time.perf_counter() - t) * 1000.0)
        size = sum(len(r.content) for r in parts)
    return out, size


async def browser_loads(url: str, n: int) -> tuple[list[float], list[float]]:
    """Navigation start to the load event, and to the chart drawn (one car's page)."""
    from web_browser import chromium

    load, chart = [], []
    async with chromium() as browser:
        ctx = await browser.new_context()
        page = await ctx.new_page()
        await page.goto(url.split("?")[0] + "login")
        await page.fill("input[name=password]", WEB_PASSWORD)
        await page.click("button")
        await page.wait_for_selector("#live")
        for _ in range(n):
            t = time.perf_counter()
            await page.goto(url, wait_until="load")
            load.append(
                await page.evaluate(
                    "(() => { const e = performance.getEntriesByType('navigation')[0];"
                    " return e.loadEventEnd - e.startTime; })()"
                )
            )
            await page.wait_for_selector(
                "figure[data-chart] svg, figure[data-chart] .svg:not(:empty)"
            )
            chart.append((time.perf_counter() - t) * 1000.0)
        await ctx.close()
    return load, chart


async def measure(url: str, vehicle: str, args: argparse.Namespace) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        r = await c.post("/api/login", json={"password": WEB_PASSWORD})
        c.headers["X-CSRF-Token"] = r.json()["csrf"]
        status = await latencies(c, "GET", "/api/status", args.requests)
        plan = await latencies(c, "GET", f"/api/vehicles/{vehicle}/plan", args.requests)
        change = await latencies(
            c,
            "POST",
            "/api/preference",
            max(10, args.requests // 10),
            json={"key": "target_soc_percent", "value": 80, "vehicle": vehicle},
        )
        page, size = await http_page(c, vehicle, max(10, args.requests // 10))
        overview = len((await c.get("/")).content)
    load, chart = await browser_loads(f"{url}?vehicle={vehicle}", args.browser_loads)
    return {
        "api_status_ms": status,
        "api_plan_ms": plan,
        "api_change_ms": change,
        "http_first_load_ms": page,
        "first_load_bytes": size,
        "overview_page_bytes": overview,
        "browser_load_ms": load,
        "browser_chart_ms": chart,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from simulators.fleet import run_fleet

    with tempfile.TemporaryDirectory(prefix="v2g-bench-web-") as tmp:
        port, web_port = soak.free_port(), soak.free_port()
        password = secrets.token_urlsafe(18)
        cfg = soak.config(Path(tmp) / "state", port, args.chargers, password)
        cfg["web"] = {
            "host": "127.0.0.1",
            "port": web_port,
            "password": WEB_PASSWORD,
        }
        cfg_path = Path(tmp) / "gateway.toml"
        cfg_path.write_text(tomli_w.dumps(cfg))
        epoch = time.time()
        log = (Path(tmp) / "gateway.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--serve",
            str(cfg_path),
            "--epoch",
            repr(epoch),
            "--speed",
            str(args.speed),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        assert proc.stdout is not None and proc.stdin is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if line.strip() != b"READY":
            raise SystemExit(f"gateway did not start: {line!r}")
        drain = asyncio.create_task(proc.stdout.read())
        url = f"http://127.0.0.1:{web_port}/"
        vehicle = "car-sim-0001"
        print("idle gateway ...", flush=True)
        idle = await measure(url, vehicle, args)
        fleet = asyncio.create_task(
            run_fleet(
                f"ws://127.0.0.1:{port}",
                args.chargers,
                password=password,
                meter_interval_s=60,
                duration_s=args.minutes * 60.0,
                clock=soak.clock_at(epoch, args.speed),
                validate_frames=False,
            )
        )
        await asyncio.sleep(args.warmup_s)  # every charger booted, plugged and planned
        print(f"under load ({args.chargers} chargers) ...", flush=True)
        t0 = time.monotonic()
        cpu0 = soak.cpu_seconds(proc.pid)
        loaded = await measure(url, vehicle, args)
        cpu = 100.0 * (soak.cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
        report = await fleet
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 30)
        drain.cancel()
        log.close()
    return {"idle": idle, "loaded": loaded, "gateway_cpu_percent": cpu, "fleet": report}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--chargers", type=int, default=100)
    p.add_argument("--minutes", type=float, default=3.0, help="how long the fleet runs")
    p.add_argument("--speed", type=float, default=96.0)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--browser-loads", type=int, default=8)
    p.add_argument("--warmup-s", type=float, default=45.0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = asyncio.run(run(args))
    idle, loaded = result["idle"], result["loaded"]
    print(
        f"first load of one car's page: {loaded['first_load_bytes'] / 1024:.0f} KB (page, "
        f"stylesheet, script, icon, plan); the {args.chargers}-car overview page alone "
        f"{loaded['overview_page_bytes'] / 1024:.0f} KB"
    )
    for key, label in (
        ("browser_load_ms", "page load in chromium (load event)"),
        ("browser_chart_ms", "page load until the chart is drawn"),
        ("http_first_load_ms", "first load over HTTP, no browser"),
        ("api_status_ms", "GET /api/status"),
        ("api_plan_ms", "GET /api/vehicles/{id}/plan"),
        ("api_change_ms", "POST /api/preference"),
    ):
        a, b = idle[key], loaded[key]
        print(
            f"{label:40s} idle p50 {pct(a, 0.5):6.1f} ms p99 {pct(a, 0.99):6.1f} | "
            f"loaded p50 {pct(b, 0.5):6.1f} ms p99 {pct(b, 0.99):6.1f} "
            f"({statistics.median(b) / max(statistics.median(a), 1e-9):.2f}x)"
        )
    fleet = result["fleet"]
    print(
        f"gateway CPU while measured under load: {result['gateway_cpu_percent']:.0f} % of one "
        f"core; fleet: {fleet}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
