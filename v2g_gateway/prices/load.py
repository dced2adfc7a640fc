"""Read a recorded response or a CSV file into normalised slots (CLI `prices load`, backtest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from v2g_gateway.errors import PriceParseError
from v2g_gateway.model import PriceSlot
from v2g_gateway.prices.awattar import parse_awattar
from v2g_gateway.prices.common import normalise
from v2g_gateway.prices.csvfile import parse_csv
from v2g_gateway.prices.energidataservice import parse_energidataservice
from v2g_gateway.prices.entsoe import parse_entsoe
from v2g_gateway.prices.nordpool import parse_nordpool
from v2g_gateway.prices.octopus import parse_octopus

FORMATS = ("entsoe", "nordpool", "energidataservice", "awattar", "octopus", "csv")


def _parser(
    fmt: str, area: str | None, csv_format: str = "auto"
) -> Callable[[bytes], list[PriceSlot]]:
    parsers: dict[str, Callable[[bytes], list[PriceSlot]]] = {
        "entsoe": parse_entsoe,
        "nordpool": lambda raw: parse_nordpool(raw, area),
        "energidataservice": lambda raw: parse_energidataservice(raw, area),
        "awattar": parse_awattar,
        "octopus": parse_octopus,
        # The same call, with the same default, as the daemon's [prices] csv_format.
        "csv": lambda raw: parse_csv(raw, csv_format),
    }
    if fmt not in parsers:
        raise PriceParseError(f"unknown price format {fmt!r} (choose from {', '.join(FORMATS)})")
    return parsers[fmt]


def load_price_file(
    path: Path, fmt: str, area: str | None = None, csv_format: str = "auto"
) -> list[PriceSlot]:
    """Slots sorted by start, de-duplicated, blank hours skipped; errors name the file."""
    parse = _parser(fmt, area, csv_format)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise PriceParseError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return normalise(parse(raw))
    except PriceParseError as exc:
        raise PriceParseError(f"{path}: {exc}") from exc
