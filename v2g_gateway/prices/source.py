"""One interface for every fetched price source, and the factory that picks one from config."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

import httpx

from v2g_gateway.config import PricesSection, read_secret
from v2g_gateway.errors import ConfigError, PriceParseError
from v2g_gateway.model import PriceSlot
from v2g_gateway.prices.awattar import AwattarSource
from v2g_gateway.prices.common import check_currency
from v2g_gateway.prices.csvfile import parse_csv
from v2g_gateway.prices.energidataservice import EnergiDataServiceSource
from v2g_gateway.prices.entsoe import EntsoeSource
from v2g_gateway.prices.nordpool import NordpoolSource
from v2g_gateway.prices.octopus import OctopusSource


class PriceSource(Protocol):
    name: str

    async def fetch(self, start: datetime, end: datetime) -> list[PriceSlot]:
        """Slots overlapping [start, end); raises PriceError subclasses only."""
        ...


class CsvFileSource:
    """The user's own file, re-read on every fetch so edits are picked up."""

    name = "csv"

    def __init__(self, path: Path, variant: str, currency: str) -> None:
        self._path = path
        self._variant = variant
        self._currency = currency

    async def fetch(self, start: datetime, end: datetime) -> list[PriceSlot]:
        try:
            raw = self._path.read_bytes()
        except OSError as exc:
            raise PriceParseError(f"csv: cannot read {self._path}: {exc.strerror}") from None
        slots = [s for s in parse_csv(raw, self._variant) if s.end > start and s.start < end]
        return check_currency(slots, self._currency, "csv")


def cache_key(cfg: PricesSection) -> str:
    """The store key: a change of source or area must not reuse the other's prices."""
    return f"{cfg.source}:{cfg.area or ''}"


def make_source(cfg: PricesSection, http: httpx.AsyncClient) -> PriceSource | None:
    """The fetcher for `cfg.source`; None for tariff and mqtt, which are not fetched."""
    try:
        return _make(cfg, http)
    except PriceParseError as exc:  # an unknown zone or region is the user's config mistake
        raise ConfigError("config", "prices.area", str(exc)) from None


def _make(cfg: PricesSection, http: httpx.AsyncClient) -> PriceSource | None:
    area = cfg.area or ""
    if cfg.source == "entsoe":
        token = read_secret("config", "prices.token", cfg.token, cfg.token_file, cfg.credential)
        if not token:
            raise ConfigError(
                "config",
                "prices.token",
                "source 'entsoe' needs a security token (token, token_file or credential)",
            )
        return EntsoeSource(http, area, token, cfg.currency, cfg.base_url)
    if cfg.source == "nordpool":
        return NordpoolSource(http, area, cfg.currency, cfg.base_url)
    if cfg.source == "energidataservice":
        return EnergiDataServiceSource(http, area, cfg.currency, cfg.base_url)
    if cfg.source == "awattar":
        return AwattarSource(http, cfg.area, cfg.base_url)
    if cfg.source == "octopus":
        return OctopusSource(http, area, cfg.product_code, cfg.base_url)
    if cfg.source == "csv" and cfg.csv_file is not None:
        return CsvFileSource(cfg.csv_file, cfg.csv_format, cfg.currency)
    return None
