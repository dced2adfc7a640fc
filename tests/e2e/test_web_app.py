"""The web app in a real browser against the real daemon and a simulated charger: log in, see SoC
and plan, press "Charge now" and see the charger receive the profile, a refused input shows its
reason, a live update arrives without reload; phone width, dark mode, no JavaScript, first load."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from e2e_helpers import TZ, charger, running, simulating, skeleton_config
from playwright.async_api import Page, expect
from web_browser import chromium

from simulators.battery import EvBattery
from v2g_gateway.app import Gateway
from v2g_gateway.clock import AcceleratedClock

PASSWORD = "browser-test-password"
START = datetime(2026, 1, 15, 16, 0, tzinfo=TZ)
MAX_FIRST_LOAD = 300 * 1024


def web_cfg(tmp_path: Path) -> Any:
    return skeleton_config(
        tmp_path / "state",
        1,
        mqtt={"enabled": False},
        web={"host": "127.0.0.1", "port": 0, "password": PASSWORD, "live_interval_s": 0.2},
    )


def car() -> EvBattery:
    return EvBattery(10, 60.0, max_charge_w=11000, max_discharge_w=10000, min_soc_percent=5)


def limits(sim: Any) -> list[float]:
    return [
        per["limit"]
        for p in sim.profiles
        for sched in p["chargingProfile"]["chargingSchedule"]
        for per in sched["chargingSchedulePeriod"]
    ]


async def log_in(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button:has-text('Log in')")
    await expect(page.locator("#live")).to_contain_text("Gateway")


async def test_log_in_see_the_plan_charge_now_refusal_and_live_updates(tmp_path: Path) -> None:
    clock = AcceleratedClock(START, speed=60)
    async with (
        running(Gateway(web_cfg(tmp_path), clock)) as gw,
        simulating(charger(gw, clock)) as sim,
        chromium() as browser,
    ):
        assert gw.web is not None
        await sim.plug_in(car())
        page = await browser.new_page(viewport={"width": 360, "height": 780})
        sizes: dict[str, int] = {}

        async def record(response: Any) -> None:
            kind = response.headers.get("content-type") or ""
            if response.status < 300 and "text/event-stream" not in kind:
                sizes[response.url] = len(await response.body())

        page.on("response", record)
        await log_in(page, gw.web.url)
        await page.evaluate("window.__noReload = true")

        card = page.locator("#v-car")
        soc = card.locator("[data-b='vehicles.car.soc.percent_text']")
        await expect(soc).to_have_text(re.compile(r"^\d+ %$"))
        # The plan: the chart has bars, the table has a row per slot with its reason in words.
        await expect(card.locator("figure[data-chart=car] svg rect.charge").first).to_be_attached()
        await expect(card.locator("details.plan tbody tr").first).to_contain_text("EUR/kWh")
        first_load = sum(sizes.values())  # page, stylesheet, script, icon and the plan
        assert 0 < first_load < MAX_FIRST_LOAD, sizes
        await card.locator("figure[data-chart=car] svg").click(position={"x": 60, "y": 90})
        await expect(card.locator("figcaption")).to_contain_text(":")

        # Phone width: nothing sticks out sideways.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360

        # Charge now to 90 %: the charger receives a full-power profile.
        before = len(sim.profiles)
        await card.locator("input[name=charge_soc]").fill("90")
        await card.locator("button[value=charge_now]").click()
        await expect(card.locator("form.action .result")).to_contain_text("Charge now to 90 %")
        await expect(card.locator("[data-b='vehicles.car.mode_text']")).to_contain_text(
            "Charge now to 90 % until"
        )
        deadline = clock.now().timestamp() + 600
        while not any(x == 11000 for x in limits(sim)[before:]):
            assert clock.now().timestamp() < deadline, "the charger never got the profile"
            await sim.settled(clock.now())
        rows = [r for r in gw.store.dispatch_log(20) if r["reason"].startswith("charge now (user)")]
        assert rows and rows[0]["result"] == "Accepted"

        # A refused input shows its reason next to the control, and changes nothing.
        await card.locator("input[name=discharge_soc]").fill("20")
        await card.locator("button[value=discharge_now]").click()
        result = card.locator("form.action .result")
        await expect(result).to_contain_text("cannot discharge below the reserve of 40 %")
        await expect(result).to_have_class(re.compile("refused"))
        assert [o.kind.value for o in gw.store.active_overrides(clock.now())] == ["charge_now"]

        # The weekly departure plan: typed as "days time target", refused with the reason.
        await card.locator("details.settings summary").click()
        weekly = card.locator("form.pref[data-key=departures]")
        await weekly.locator("input[name=value]").fill("mon-fri 06:15 90; sat 10:00 60")
        await weekly.locator("button").click()
        await expect(weekly.locator(".result")).not_to_be_empty()
        assert gw.policy.preference("departures", "car") == [
            {
                "days": ["mon", "tue", "wed", "thu", "fri"],
                "time": "06:15",
                "target_soc_percent": 90.0,
            },
            {"days": ["sat"], "time": "10:00", "target_soc_percent": 60.0},
        ]
        await weekly.locator("input[name=value]").fill("someday 06:15 90")
        await weekly.locator("button").click()
        await expect(weekly.locator(".result")).to_contain_text("days must be")
        await expect(weekly.locator(".result")).to_have_class(re.compile("refused"))

        # Live: the SoC shown moves as the car charges, and a change made elsewhere (the
        # policy, as MQTT would) appears, both without a reload.
        first = await soc.text_content()
        await expect(soc).not_to_have_text(first or "")
        gw.policy.cancel("car")
        await expect(card.locator("[data-b='vehicles.car.mode_text']")).to_have_text(
            "Automatic: following the plan"
        )
        await expect(page.locator("#feed li").first).to_contain_text("automation resumed")
        assert await page.evaluate("window.__noReload") is True


async def test_readable_without_javascript_and_dark_mode(tmp_path: Path) -> None:
    clock = AcceleratedClock(START, speed=60)
    async with (
        running(Gateway(web_cfg(tmp_path), clock)) as gw,
        simulating(charger(gw, clock)) as sim,
        chromium() as browser,
    ):
        assert gw.web is not None
        await sim.plug_in(car())
        plain = await browser.new_context(java_script_enabled=False)
        page = await plain.new_page()
        await log_in(page, gw.web.url)  # the login form works without JavaScript too
        await expect(page.locator("#v-car .facts")).to_contain_text("Now")
        await expect(page.locator("#v-car details.plan tbody tr").first).to_be_attached()
        assert await page.locator("#v-car form.action").is_hidden()
        await page.goto(gw.web.url + "setup")
        await expect(page.locator("body")).to_contain_text("/ocpp/garage")
        await expect(page.locator("body")).to_contain_text("SimuCharge")
        await plain.close()

        for scheme, dark in (("dark", True), ("light", False)):
            ctx = await browser.new_context(
                color_scheme=scheme, viewport={"width": 1280, "height": 900}
            )
            page = await ctx.new_page()
            await log_in(page, gw.web.url)
            bg = await page.evaluate("getComputedStyle(document.body).backgroundColor")
            r, g, b = (int(x) for x in re.findall(r"\d+", bg)[:3])
            assert ((r + g + b) / 3 < 60) is dark, bg
            await ctx.close()


async def test_test_discharge_from_the_setup_page(tmp_path: Path) -> None:
    clock = AcceleratedClock(datetime(2026, 1, 15, 12, 0, tzinfo=TZ), speed=60)
    async with (
        running(Gateway(web_cfg(tmp_path), clock)) as gw,
        simulating(charger(gw, clock)) as sim,
        chromium() as browser,
    ):
        assert gw.web is not None
        await sim.plug_in(car())
        page = await browser.new_page()
        await log_in(page, gw.web.url)
        await expect(page.locator("[data-b='vehicles.car.soc.percent_text']")).to_have_text(
            re.compile(r"^\d+ %$")
        )
        await page.goto(gw.web.url + "setup")
        form = page.locator("#c-garage form.test")
        await form.locator("button").click()
        await expect(form.locator(".result")).to_contain_text(
            "passed: the car discharged", timeout=20000
        )
        # Back to automatic at once, and the test went through dispatch like any discharge.
        assert gw.store.active_overrides(clock.now()) == ()
        rows = [r for r in gw.store.dispatch_log(50) if r["reason"] == "discharge now (user)"]
        assert rows and rows[0]["limit_w"] == -1000
        assert "test_discharge" in [n["kind"] for n in gw.store.recent_notifications(50)]
