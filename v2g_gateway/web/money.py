"""The money: today and this month from the energy ledger, against plain charging.

Plain charging is estimated as buying the energy the car kept (imported minus what the exported
energy cost to store, through both efficiencies) at each day's time-weighted average import price,
with nothing exported. A day without known prices is left out of the comparison and counted.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from v2g_gateway.web import words
from v2g_gateway.web.views import Sources


class Money:
    def __init__(self, src: Sources) -> None:
        self._src = src
        self._avg: dict[str, float | None] = {}  # past days' average import price, kept

    def _average_import(self, day: str, today: str) -> float | None:
        if day in self._avg and day != today:
            return self._avg[day]
        tz = self._src.cfg.gateway.tz
        d = date.fromisoformat(day)
        start = datetime.combine(d, time(0), tzinfo=tz)
        end = datetime.combine(d + timedelta(days=1), time(0), tzinfo=tz)
        try:
            slots = [s for s in self._src.prices.user_prices(start, end) if s.end > start]
        except Exception:
            slots = []
        hours = sum(s.hours for s in slots)
        avg = sum(s.import_per_kwh * s.hours for s in slots) / hours if hours > 0 else None
        self._avg[day] = avg
        return avg

    def view(self) -> dict[str, Any]:
        cfg = self._src.cfg
        today = self._src.clock.now().astimezone(cfg.gateway.tz).date().isoformat()
        month = today[:7]
        rows = [r for r in self._src.store.ledger() if str(r["day"]).startswith(month)]
        return {
            "currency": cfg.prices.currency,
            "today": self._total([r for r in rows if r["day"] == today], today),
            "month": self._total(rows, today),
            "month_name": month,
            "baseline": "plain charging: the same energy bought at each day's average import "
            "price, nothing exported",
        }

    def _total(self, rows: list[dict[str, Any]], today: str) -> dict[str, Any]:
        cfg = self._src.cfg
        cur = cfg.prices.currency
        imp = sum(float(r["import_wh"]) for r in rows)
        exp = sum(float(r["export_wh"]) for r in rows)
        cost = sum(float(r["cost"]) for r in rows)
        revenue = sum(float(r["revenue"]) for r in rows)
        plain = 0.0
        unknown_days: set[str] = set()
        for r in rows:
            avg = self._average_import(str(r["day"]), today)
            if avg is None:
                unknown_days.add(str(r["day"]))
                continue
            v = cfg.vehicle(str(r["vehicle_id"]))
            eta = (v.charge_efficiency * v.discharge_efficiency) if v else 0.9
            kept_wh = max(0.0, float(r["import_wh"]) - float(r["export_wh"]) / eta)
            plain += kept_wh / 1000.0 * avg
        net = cost - revenue
        compared = bool(rows) and len(unknown_days) < len({str(r["day"]) for r in rows})
        saved = plain - net if compared else None
        if not rows:
            text = "nothing charged or discharged yet"
        else:
            verb = "paid" if net >= 0 else "earned"
            text = f"{verb} {words.money(abs(net), cur)} net"
            text += f" ({words.kwh(imp)} in, {words.kwh(exp)} out)"
            if saved is not None:
                text += f"; {words.money(abs(saved), cur)} {'less' if saved >= 0 else 'more'}"
                text += " than plain charging"
        return {
            "import_kwh": round(imp / 1000.0, 3),
            "export_kwh": round(exp / 1000.0, 3),
            "cost": round(cost, 4),
            "revenue": round(revenue, 4),
            "net_cost": round(net, 4),
            "plain_charging_cost": round(plain, 4) if compared else None,
            "saved": None if saved is None else round(saved, 4),
            "days_without_prices": sorted(unknown_days),
            "text": text,
        }
