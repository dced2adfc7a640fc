"""What the pages and answers hold: a card per car (one line each for a fleet), the plan's data
with its reasons, the money, the live stream; and a web app that cannot listen stops nothing."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from web_helpers import client, running, web_config

from v2g_gateway.model import Notification


async def test_status_page_and_plan_answer(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw) as c:
        page = (await c.get("/")).text
        assert 'id="v-car"' in page and 'id="v-van"' in page
        assert "Charge now" in page and "The plan, slot by slot" in page
        assert "mon/tue 07:30 (80 %)" in page  # the weekly plan from the config
        plan = (await c.get("/api/vehicles/car/plan")).json()
        assert plan["reserve_soc_percent"] == 40.0
        assert plan["pv_kw"] is None and plan["house_load_kw"] is None
        # The tariff's prices cover the chart even with no car plugged in (no plan yet).
        assert plan["prices"][0]["import_per_kwh"] == 0.2
        assert any(p["export_per_kwh"] == 0.35 for p in plan["prices"])
        money = (await c.get("/api/money")).json()
        assert money["today"]["text"] == "nothing charged or discharged yet"


async def test_a_fleet_gets_one_line_per_car_and_each_card_on_its_own(tmp_path: Path) -> None:
    vehicles = [{"id": f"car{i}", "battery_kwh": 50} for i in range(6)]
    async with running(web_config(tmp_path, vehicles=vehicles)) as gw, client(gw) as c:
        page = (await c.get("/")).text
        assert page.count('class="card compact"') == 6 and "Charge now" not in page
        one = (await c.get("/?vehicle=car3")).text
        assert 'id="v-car3"' in one and "Charge now" in one and 'id="v-car2"' not in one


async def test_live_stream_sends_status_then_notifications(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw) as c:
        async with c.stream("GET", "/api/events") as s:
            assert s.headers["content-type"] == "text/event-stream"
            lines = s.aiter_lines()
            events: list[tuple[str, dict[str, object]]] = []
            name = ""
            async for line in lines:
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    events.append((name, json.loads(line[6:])))
                    if len(events) == 1:
                        gw.store.notify(
                            Notification(kind="marker", message="hello web", at=gw.clock.now())
                        )
                    if any(e[0] == "notification" for e in events):
                        break
        assert events[0][0] == "status" and events[0][1]["gateway_id"] == "webtest"
        note = next(e[1] for e in events if e[0] == "notification")
        assert note["message"] == "hello web" and note["kind"] == "marker"


async def test_a_web_port_in_use_is_told_and_the_gateway_goes_on(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with running(web_config(tmp_path, web={"port": port})) as gw:
            assert gw.web is None
            notes = gw.store.recent_notifications(10)
            assert any(n["kind"] == "web_unavailable" for n in notes)
            assert gw.csms.port > 0


async def test_no_web_table_means_no_web_app(tmp_path: Path) -> None:
    async with running(web_config(tmp_path, web=None)) as gw:
        assert gw.web is None
