"""PV forecast providers against a local HTTP server replaying the recorded (or documented)
responses in tests/fixtures/home (see SOURCES.md there)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from v2g_gateway.config import parse_config
from v2g_gateway.errors import HomeError
from v2g_gateway.home.forecast_solar import ForecastSolar, their_azimuth
from v2g_gateway.home.openmeteo import OpenMeteo

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "home"


class Replay:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.status = 200
        self.body: bytes = b""

    def serve(self) -> Iterator[str]:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                replay.requests.append(self.path)
                self.send_response(replay.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(replay.body)))
                self.end_headers()
                self.wfile.write(replay.body)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        t = threading.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()
            httpd.server_close()


@pytest.fixture
def replay() -> Iterator[tuple[Replay, str]]:
    r = Replay()
    gen = r.serve()
    url = next(gen)
    yield r, url
    next(gen, None)


def home(url: str, source: str, **extra: Any) -> Any:
    return parse_config(
        {
            "home": {
                "latitude": 52.38,
                "longitude": 13.07,
                "pv_forecast": source,
                "forecast_base_url": url,
                "pv": [{"kwp": 8, "tilt": 35, "azimuth": 180}],
                **extra,
            }
        }
    ).home


async def test_open_meteo_irradiance_becomes_pv_power(replay: tuple[Replay, str]) -> None:
    r, url = replay
    r.body = (FIXTURES / "open_meteo" / "forecast_potsdam.json").read_bytes()
    async with httpx.AsyncClient() as http:
        slots = await OpenMeteo(home(url, "open-meteo")).fetch(http, datetime.now(UTC))
    assert r.requests[0].startswith("/v1/forecast?latitude=52.3800&longitude=13.0700&hourly=")
    assert "direct_normal_irradiance" in r.requests[0] and "timezone=GMT" in r.requests[0]
    assert len(slots) == 48
    # each value is the hour before its stamp: the first slot starts an hour before 00:00
    assert slots[0].start == datetime(2026, 6, 20, 23, 0, tzinfo=UTC)
    by_hour = {s.start.hour: s.kw for s in slots[:24]}
    assert by_hour[0] == 0.0 and by_hour[22] == 0.0  # night
    assert 3.0 < max(by_hour.values()) < 8.0  # an 8 kWp roof at midsummer, AC after losses
    day_kwh = sum(s.kw for s in slots[:24])
    assert 20.0 < day_kwh < 60.0


async def test_open_meteo_bad_answers_are_named(replay: tuple[Replay, str]) -> None:
    r, url = replay
    async with httpx.AsyncClient() as http:
        om = OpenMeteo(home(url, "open-meteo"))
        r.body = b'{"hourly": {"time": ["2026-06-21T00:00"], "shortwave_radiation": []}}'
        with pytest.raises(HomeError, match="'shortwave_radiation' missing or not as long"):
            await om.fetch(http, datetime.now(UTC))
        r.status, r.body = 400, b'{"error": true, "reason": "Latitude must be in range"}'
        with pytest.raises(HomeError, match="HTTP 400"):
            await om.fetch(http, datetime.now(UTC))


async def test_forecast_solar_recorded_estimate(replay: tuple[Replay, str]) -> None:
    r, url = replay
    raw = (FIXTURES / "forecast_solar" / "forecast.json").read_bytes()
    r.body = raw
    cfg = home(url, "forecast.solar", pv=[{"kwp": 2.16, "tilt": 20, "azimuth": 190}])
    async with httpx.AsyncClient() as http:
        slots = await ForecastSolar(cfg).fetch(http, datetime.now(UTC))
    assert r.requests == ["/estimate/52.3800/13.0700/20/10/2.16"]  # their azimuth: 0 = south
    day = json.loads(raw)["result"]["watt_hours_day"]["2024-04-26"]
    first_day = [s for s in slots if s.start.date().isoformat() == "2024-04-26"]
    kwh = sum(s.kw * (s.end - s.start).total_seconds() / 3600 for s in first_day)
    assert kwh == pytest.approx(day / 1000.0, rel=0.05)  # the trapezoid of result.watts
    assert not any(s.start.hour == 23 for s in slots)  # nothing across the night


async def test_forecast_solar_rate_limit_is_told(replay: tuple[Replay, str]) -> None:
    r, url = replay
    r.status, r.body = 429, b'{"result": null, "message": {"code": 429, "type": "error"}}'
    async with httpx.AsyncClient() as http:
        with pytest.raises(HomeError, match="rate limit"):
            await ForecastSolar(home(url, "forecast.solar")).fetch(http, datetime.now(UTC))


def test_azimuth_conventions() -> None:
    assert their_azimuth(180) == 0 and their_azimuth(90) == -90 and their_azimuth(270) == 90
    assert their_azimuth(0) == -180
