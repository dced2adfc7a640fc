"""Random and truncated payloads: parsers answer with PriceError subclasses and nothing else."""

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v2g_gateway.errors import PriceError
from v2g_gateway.model import PriceSlot
from v2g_gateway.prices.awattar import parse_awattar
from v2g_gateway.prices.csvfile import parse_csv
from v2g_gateway.prices.energidataservice import parse_energidataservice
from v2g_gateway.prices.entsoe import parse_entsoe
from v2g_gateway.prices.nordpool import parse_nordpool
from v2g_gateway.prices.octopus import parse_octopus
from v2g_gateway.prices.pushed import parse_pushed_series

FIX = Path(__file__).parents[2] / "fixtures" / "prices"
Parser = Callable[[bytes], list[PriceSlot]]
CASES: list[tuple[str, Parser, bytes]] = [
    ("entsoe", parse_entsoe, (FIX / "entsoe/hass-entso-e/BE_60M_15M_mix.xml").read_bytes()),
    (
        "nordpool",
        lambda b: parse_nordpool(b),
        (FIX / "nordpool/ha-core/indices_15.json").read_bytes(),
    ),
    (
        "eds",
        lambda b: parse_energidataservice(b),
        (FIX / "energidataservice/MTrab-energidataservice/20220325.json").read_bytes(),
    ),
    ("awattar", parse_awattar, (FIX / "awattar/synthetic/de_2024-03-31.json").read_bytes()),
    (
        "octopus",
        lambda b: parse_octopus(b),
        (FIX / "octopus/bluca-nest-octopus/large_response_46_results.json").read_bytes(),
    ),
    (
        "csv",
        lambda b: parse_csv(b),
        (
            FIX
            / "csv/AntoineAckermann-Arbitrage-Batterie/FR_Day-ahead_Prices_202301010000-202401010000.csv"
        ).read_bytes()[:4000],
    ),
    (
        "pushed",
        lambda b: parse_pushed_series(b),
        b'[{"start":"2025-01-01T00:00:00Z","end":"2025-01-01T01:00:00Z","price":0.2}]',
    ),
]
IDS = [c[0] for c in CASES]


def only_price_errors(parse: Parser, raw: bytes) -> None:
    try:
        slots = parse(raw)
    except PriceError:
        return
    assert all(s.end > s.start for s in slots)
    assert all(a.end <= b.start for a, b in itertools.pairwise(slots))


@pytest.mark.parametrize(("name", "parse", "good"), CASES, ids=IDS)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.floats(0, 1))
def test_truncated(name: str, parse: Parser, good: bytes, cut: float) -> None:
    only_price_errors(parse, good[: int(len(good) * cut)])


@pytest.mark.parametrize(("name", "parse", "good"), CASES, ids=IDS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated(name: str, parse: Parser, good: bytes, data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(good) - 1))
    junk = data.draw(st.binary(min_size=0, max_size=8))
    only_price_errors(parse, good[:pos] + junk + good[pos + len(junk) :])


@pytest.mark.parametrize(("name", "parse", "good"), CASES, ids=IDS)
@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random(name: str, parse: Parser, good: bytes, raw: bytes) -> None:
    only_price_errors(parse, raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize(
    ("name", "parse", "good"),
    [c for c in CASES if c[0] not in ("entsoe", "csv")],
    ids=[i for i in IDS if i not in ("entsoe", "csv")],
)
@settings(max_examples=150, deadline=None)
@given(
    doc=st.fixed_dictionaries(
        {},
        optional={
            "data": json_values,
            "results": json_values,
            "records": json_values,
            "currency": json_values,
            "multiAreaEntries": json_values,
            "multiIndexEntries": json_values,
            "deliveryAreas": json_values,
            "next": json_values,
        },
    )
    | st.lists(
        st.fixed_dictionaries(
            {}, optional={"start": json_values, "end": json_values, "price": json_values}
        ),
        max_size=3,
    )
)
def test_structured_json(name: str, parse: Parser, good: bytes, doc: object) -> None:
    import json

    only_price_errors(parse, json.dumps(doc).encode())
