"""Spot prices turned into what the user really pays and earns per kWh.

import = (spot + supplier margin) x (1 + VAT) + grid fee + energy tax
export = fixed feed-in rate if configured, else spot x factor - export fee
A time-of-use grid fee can change inside a spot slot, so slots are split at its boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from v2g_gateway.config import PricesSection
from v2g_gateway.model import PriceSlot, UserPriceSlot
from v2g_gateway.prices.tariff import tariff_prices


def _user_slot(
    spot: PriceSlot, start: datetime, end: datetime, fee: float, cfg: PricesSection
) -> UserPriceSlot:
    imp = (spot.price + cfg.supplier_margin_per_kwh) * (1 + cfg.vat_percent / 100.0)
    imp += fee + cfg.energy_tax_per_kwh
    if cfg.export_fixed_per_kwh is not None:
        exp = cfg.export_fixed_per_kwh
    else:
        exp = spot.price * cfg.export_factor - cfg.export_fee_per_kwh
    return UserPriceSlot(start, end, imp, exp)


def compose(spot: Sequence[PriceSlot], cfg: PricesSection, tz: ZoneInfo) -> list[UserPriceSlot]:
    """User prices for each spot slot (split where a time-of-use grid fee changes)."""
    if not spot:
        return []
    if not cfg.grid_fee_tou:
        return [_user_slot(s, s.start, s.end, cfg.grid_fee_per_kwh, cfg) for s in spot]
    out: list[UserPriceSlot] = []
    fees = tariff_prices(cfg.grid_fee_tou, tz, min(s.start for s in spot), max(s.end for s in spot))
    i = 0
    for s in sorted(spot, key=lambda s: s.start):
        while i < len(fees) and fees[i].end <= s.start:
            i += 1
        j = i
        while j < len(fees) and fees[j].start < s.end:
            f = fees[j]
            out.append(
                _user_slot(s, max(s.start, f.start), min(s.end, f.end), f.import_per_kwh, cfg)
            )
            j += 1
    return out
