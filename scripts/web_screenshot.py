"""Screenshots of the web app during the demo, for the README (docs/web.png, docs/web-desktop.png).

    .venv/bin/python scripts/web_screenshot.py [--out docs]

Runs `v2g-gateway demo` at a slower clock, waits until the car discharges into the evening peak,
then photographs the page at phone width (390 px) and on a desktop with Debian's chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from web_browser import chromium  # noqa: E402


def status(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url + "api/session", timeout=5) as r:
        csrf = json.load(r)["csrf"]
        cookie = r.headers["Set-Cookie"].split(";")[0]
    req = urllib.request.Request(
        url + "api/status", headers={"Cookie": cookie, "X-CSRF-Token": csrf}
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return dict(json.load(r))


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo = await asyncio.create_subprocess_exec(
            str(ROOT / ".venv" / "bin" / "v2g-gateway"),
            "demo",
            "--quiet",
            "--speed",
            "360",
            "--output",
            tmp,
            stdout=asyncio.subprocess.PIPE,
        )
        assert demo.stdout is not None
        url = ""
        while not url:
            line = (await asyncio.wait_for(demo.stdout.readline(), 60)).decode()
            if not line:
                raise SystemExit("the demo ended before serving the web app")
            if line.startswith("web app: "):
                url = line.split()[2]
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            st = status(url)
            vehicles = st["vehicles"]
            assert isinstance(vehicles, list)
            if vehicles and vehicles[0]["state"] == "discharging":
                break
            await asyncio.sleep(2)
        await asyncio.sleep(4)  # a few more slots of the peak on the chart
        async with chromium() as browser:
            for name, width, height, scale in (
                ("web.png", 390, 1400, 1),
                ("web-desktop.png", 1280, 1100, 1),
            ):
                ctx = await browser.new_context(
                    viewport={"width": width, "height": height}, device_scale_factor=scale
                )
                page = await ctx.new_page()
                await page.goto(url)
                await page.wait_for_selector("figure[data-chart] svg rect")
                await page.screenshot(path=str(args.out / name))
                await ctx.close()
                print(f"wrote {args.out / name}")
        demo.terminate()
        await demo.wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
