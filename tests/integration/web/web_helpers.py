"""A real gateway with its web app on a loopback port, and an HTTP client that logs in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from v2g_gateway.app import Gateway
from v2g_gateway.clock import ManualClock
from v2g_gateway.config import Config, parse_config

TZ = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 1, 15, 12, 0, tzinfo=TZ)
WEB_PASSWORD = "correct-horse-battery"
CHARGER_PASSWORD = "charger-secret-0123456789"


def web_config(state_dir: Path, **tables: Any) -> Config:
    web = {"host": "127.0.0.1", "port": 0, "password": WEB_PASSWORD, "live_interval_s": 0.0}
    data: dict[str, Any] = {
        "gateway": {"id": "webtest", "state_dir": str(state_dir), "timezone": "Europe/Berlin"},
        "ocpp": {"host": "127.0.0.1", "port": 0},
        "chargers": [
            {"id": "garage", "password": CHARGER_PASSWORD, "max_discharge_w": 10000},
        ],
        "vehicles": [
            {"id": "car", "battery_kwh": 60, "reserve_soc_percent": 40, "min_soc_percent": 10},
            {"id": "van", "battery_kwh": 75, "reserve_soc_percent": 30},
        ],
        "prices": {
            "tariff": [
                {"start": "17:00", "end": "21:00", "import_per_kwh": 0.45, "export_per_kwh": 0.35},
                {"start": "21:00", "end": "17:00", "import_per_kwh": 0.20, "export_per_kwh": 0.05},
            ]
        },
        "preferences": {
            "departures": [{"days": ["mon", "tue"], "time": "07:30", "target_soc_percent": 80}]
        },
        "outage": {"enabled": False},
        "mqtt": {"enabled": False},
        "web": web,
    }
    for k, v in tables.items():
        data[k] = {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
    return parse_config(data)


@contextlib.asynccontextmanager
async def running(cfg: Config, clock: ManualClock | None = None) -> AsyncIterator[Gateway]:
    gw = Gateway(cfg, clock or ManualClock(T0), mqtt=False)
    task = asyncio.create_task(gw.run())
    await asyncio.wait_for(gw.ready.wait(), 10)
    try:
        yield gw
    finally:
        gw.stop.set()
        await asyncio.wait_for(task, 10)


def base_url(gw: Gateway) -> str:
    assert gw.web is not None
    return gw.web.url


@contextlib.asynccontextmanager
async def client(gw: Gateway, *, login: bool = True, **kw: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url(gw), timeout=10, **kw) as c:
        if login:
            r = await c.post("/api/login", json={"password": WEB_PASSWORD})
            assert r.status_code == 200, r.text
            c.headers["X-CSRF-Token"] = r.json()["csrf"]
        yield c
