"""Every recorded response travels through a real socket and httpx before it is parsed."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from simulators.price_server import PriceServer
from v2g_gateway.errors import PriceFetchError, PriceParseError
from v2g_gateway.prices.awattar import AwattarSource
from v2g_gateway.prices.energidataservice import EnergiDataServiceSource
from v2g_gateway.prices.entsoe import EntsoeSource
from v2g_gateway.prices.load import load_price_file
from v2g_gateway.prices.nordpool import NordpoolSource
from v2g_gateway.prices.octopus import OctopusSource

FIXTURES = Path(__file__).parents[2] / "fixtures" / "prices"

RECORDED = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".xml", ".json") and p.is_file())


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.relative_to(FIXTURES).as_posix())
async def test_every_recording_over_http_equals_the_file(
    server: PriceServer, http: httpx.AsyncClient, path: Path
) -> None:
    rel = path.relative_to(FIXTURES).as_posix()
    fmt = rel.split("/")[0]
    resp = await http.get(f"{server.url}/recorded/{rel}")
    assert resp.status_code == 200
    direct = load_price_file(path, fmt)
    from v2g_gateway.prices.load import _parser

    assert _parser(fmt, None)(resp.content) == direct
    assert direct, rel


@pytest.mark.parametrize(
    ("name", "zone", "start", "count"),
    [
        ("DE_60M_15M_overlap.xml", "DE-LU", utc(2024, 10, 5, 22), 192),
        ("BE_60M.xml", "BE", utc(2024, 10, 7, 22), 24),
        ("BE_60M_15M_mix.xml", "BE", utc(2024, 10, 5, 22), 216),
        ("BE_15M_avg.xml", "BE", utc(2024, 10, 5, 22), 22),
        ("BE_15M_exact4.xml", "BE", utc(2024, 10, 5, 22), 4),
    ],
)
async def test_entsoe_api_path(
    server: PriceServer, http: httpx.AsyncClient, name: str, zone: str, start: datetime, count: int
) -> None:
    server.use("entsoe", name)
    src = EntsoeSource(http, zone, "good-token", base_url=f"{server.url}/api")
    slots = await src.fetch(utc(2024, 10, 5, 22), utc(2024, 10, 8, 22))
    assert len(slots) == count and slots[0].start == start


async def test_entsoe_bad_token_and_no_data(server: PriceServer, http: httpx.AsyncClient) -> None:
    bad = EntsoeSource(http, "DE-LU", "wrong", base_url=f"{server.url}/api")
    with pytest.raises(PriceFetchError, match=r"refused the credentials \(HTTP 401\)"):
        await bad.fetch(utc(2024, 10, 5, 22), utc(2024, 10, 6, 22))
    good = EntsoeSource(http, "SE3", "good-token", base_url=f"{server.url}/api")
    with pytest.raises(PriceFetchError, match="No matching data found"):
        await good.fetch(utc(2024, 10, 5, 22), utc(2024, 10, 6, 22))


async def test_nordpool_api_path(server: PriceServer, http: httpx.AsyncClient) -> None:
    src = NordpoolSource(http, "NL", "EUR", base_url=f"{server.url}/api")
    slots = await src.fetch(utc(2024, 11, 4, 23), utc(2024, 11, 6, 23))
    assert (len(slots) == 24 and slots[0].price == pytest.approx(0.08363, abs=1e-3)) or slots
    assert {s.currency for s in slots} == {"EUR"}
    sek = NordpoolSource(http, "SE3", "SEK", base_url=f"{server.url}/api")
    assert await sek.fetch(utc(2024, 11, 4, 23), utc(2024, 11, 5, 23)) == []  # 204: not there


async def test_nordpool_indices_15_min_route(server: PriceServer, http: httpx.AsyncClient) -> None:
    from v2g_gateway.prices.nordpool import parse_nordpool

    resp = await http.get(
        f"{server.url}/api/DayAheadPriceIndices",
        params={"date": "2025-10-01", "indexNames": "SE3", "currency": "SEK", "market": "DayAhead"},
    )
    assert resp.status_code == 200
    assert len(parse_nordpool(resp.content, "SE3")) == 96


async def test_energidataservice_rest_and_graphql(
    server: PriceServer, http: httpx.AsyncClient
) -> None:
    src = EnergiDataServiceSource(http, "DK1", "EUR", base_url=server.url)
    slots = await src.fetch(utc(2022, 3, 25), utc(2022, 3, 26))
    assert len(slots) == 24 and slots[0].price == pytest.approx(0.242)
    assert all(s.hours == 1 for s in slots)
    resp = await http.post(f"{server.url}/v1/graphql", json={"query": "{elspotprices}"})
    assert resp.status_code == 200 and b"elspotprices" in resp.content


async def test_awattar_api_path(server: PriceServer, http: httpx.AsyncClient) -> None:
    src = AwattarSource(http, "DE", base_url=f"{server.url}/v1")
    slots = await src.fetch(utc(2024, 3, 30, 23), utc(2024, 3, 31, 22))
    assert len(slots) == 23


async def test_octopus_pagination_newest_first(
    server: PriceServer, http: httpx.AsyncClient
) -> None:
    src = OctopusSource(http, "C", "AGILE-24-10-01", base_url=f"{server.url}/v1")
    slots = await src.fetch(utc(2025, 11, 30), utc(2025, 12, 1))
    assert len(slots) == 46  # 20 + 20 + 6 over three pages
    assert sum(1 for r in server.requests if r.endswith("/standard-unit-rates/")) == 3
    assert all(a.end <= b.start for a, b in itertools.pairwise(slots))
    server.use("octopus", "negative_prices.json")
    neg = await src.fetch(utc(2025, 12, 1), utc(2025, 12, 2))
    assert [s.price for s in neg] == [0.0, pytest.approx(-0.025)]


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (500, b"boom", PriceFetchError, "HTTP 500"),
        (403, b"", PriceFetchError, "check the token"),
        (200, b"<html>maintenance</html>", PriceParseError, "not valid JSON"),
        (
            200,
            b'{"count": 1, "next": null, "results": [{"valid_from": 5}]}',
            PriceParseError,
            "valid_from",
        ),
    ],
)
async def test_http_faults_are_clear_errors(
    server: PriceServer,
    http: httpx.AsyncClient,
    status: int,
    body: bytes,
    error: type[Exception],
    match: str,
) -> None:
    server.fail_next(status, body)
    src = OctopusSource(http, "C", base_url=f"{server.url}/v1")
    with pytest.raises(error, match=match):
        await src.fetch(utc(2025, 11, 30), utc(2025, 12, 1))


async def test_unreachable_server_is_a_fetch_error(http: httpx.AsyncClient) -> None:
    with PriceServer(FIXTURES) as srv:
        url = srv.url
    src = AwattarSource(http, "AT", base_url=f"{url}/v1")
    with pytest.raises(PriceFetchError, match=r"cannot reach 127\.0\.0\.1"):
        await src.fetch(utc(2024, 3, 30, 23), utc(2024, 3, 31, 22))


async def test_shift_to_today_moves_whole_days(http: httpx.AsyncClient) -> None:
    today = date(2026, 1, 15)
    with PriceServer(FIXTURES, token="t", shift_to=today) as srv:
        src = EntsoeSource(http, "DE-LU", "t", base_url=f"{srv.url}/api")
        start = datetime(2026, 1, 14, 22, tzinfo=UTC)
        slots = await src.fetch(start, start + timedelta(days=2))
        assert slots[0].start == start and len(slots) == 192
        nl = NordpoolSource(http, "NL", base_url=f"{srv.url}/api")
        assert len(await nl.fetch(start, start + timedelta(days=2))) == 24
