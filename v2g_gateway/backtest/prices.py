"""The price history a backtest replays: loaded, composed into the user's prices, made contiguous."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from v2g_gateway.config import PricesSection
from v2g_gateway.model import PriceSlot, UserPriceSlot

MAX_FILLED_GAP = timedelta(hours=3)


def _provided(module: str, name: str) -> Callable[..., Any] | None:
    """The prices package's function when it exists (it is written in parallel with this)."""
    try:
        fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return fn


def load_prices(path: Path, fmt: str, area: str | None = None) -> list[PriceSlot]:
    from v2g_gateway.prices.load import load_price_file

    return load_price_file(path, fmt, area)


def compose_prices(
    spot: Sequence[PriceSlot], cfg: PricesSection, tz: ZoneInfo
) -> list[UserPriceSlot]:
    compose = _provided("v2g_gateway.prices.compose", "compose")
    if compose is None:
        return [_compose_one(s, cfg) for s in spot]
    out: list[UserPriceSlot] = compose(spot, cfg, tz)
    return out


def _compose_one(s: PriceSlot, c: PricesSection) -> UserPriceSlot:
    imp = (s.price + c.supplier_margin_per_kwh) * (1 + c.vat_percent / 100.0)
    imp += c.grid_fee_per_kwh + c.energy_tax_per_kwh
    if c.export_fixed_per_kwh is not None:
        exp = c.export_fixed_per_kwh
    else:
        exp = s.price * c.export_factor - c.export_fee_per_kwh
    return UserPriceSlot(s.start, s.end, imp, exp)


def contiguous(prices: Sequence[UserPriceSlot], notes: list[str]) -> list[UserPriceSlot]:
    """Short gaps are filled with the last price; a longer one ends the usable history."""
    out: list[UserPriceSlot] = []
    for p in sorted(prices, key=lambda p: p.start):
        if out and p.start < out[-1].end:
            continue
        if out and p.start > out[-1].end:
            gap = p.start - out[-1].end
            if gap > MAX_FILLED_GAP:
                notes.append(
                    f"prices stop at {out[-1].end.isoformat()} (gap of {gap}); ended there"
                )
                break
            last = out[-1]
            t = last.end
            while t < p.start:
                step = min(last.end - last.start, p.start - t)
                out.append(UserPriceSlot(t, t + step, last.import_per_kwh, last.export_per_kwh))
                t += step
            notes.append(f"filled a {gap} gap at {last.end.isoformat()} with the last price")
        out.append(p)
    return out
