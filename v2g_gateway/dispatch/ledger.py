"""The energy ledger: kWh and money per vehicle and local day, from the chargers' registers.

It reads the charger's own import and export energy registers rather than integrating power, so
a missed meter value loses nothing; each delta is priced at the user's price of the moment. The
last register readings are kept in the store, so a restart neither double-counts nor drops.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import structlog

from v2g_gateway.bus import Changed
from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.dispatch.controller import PriceView
from v2g_gateway.store import Store

log = structlog.get_logger(__name__)

REGISTERS_KEY = "ledger.registers"
# A register that jumps by more than this between two readings was reset or replaced, not used.
MAX_STEP_WH = 50_000.0


class Ledger:
    def __init__(self, cfg: Config, store: Store, prices: PriceView, clock: Clock) -> None:
        self._cfg = cfg
        self._store = store
        self._prices = prices
        self._clock = clock
        raw = store.kv_get(REGISTERS_KEY) or {}
        self._last: dict[str, list[float]] = {
            k: [float(v[0]), float(v[1])] for k, v in raw.items() if isinstance(v, list)
        }

    def on_meter(self, charger_id: str) -> None:
        ch = self._store.charger_state(charger_id)
        if ch is None:
            return
        now = self._clock.now()
        changed = False
        for evse in ch.evses.values():
            if evse.energy_import_wh is None and evse.energy_export_wh is None:
                continue
            key = f"{charger_id}/{evse.evse_id}"
            now_regs = [evse.energy_import_wh or 0.0, evse.energy_export_wh or 0.0]
            before = self._last.get(key)
            self._last[key] = now_regs
            changed = True
            if before is None:
                continue  # the first reading is the baseline
            d_imp, d_exp = now_regs[0] - before[0], now_regs[1] - before[1]
            if not (0 <= d_imp <= MAX_STEP_WH and 0 <= d_exp <= MAX_STEP_WH):
                log.info("ledger.register_reset", charger_id=charger_id, evse_id=evse.evse_id)
                continue
            vehicle = self._store.vehicle_at(charger_id, evse.evse_id)
            if vehicle is None or (d_imp == 0 and d_exp == 0):
                continue
            self._book(vehicle, now, d_imp, d_exp)
        if changed:
            self._store.kv_set(REGISTERS_KEY, self._last)

    def _book(self, vehicle: str, now: datetime, import_wh: float, export_wh: float) -> None:
        try:
            slots = self._prices.user_prices(now, now + timedelta(minutes=1))
        except Exception:  # an unknown price books the energy without money, not nothing
            slots = []
        slot = next((s for s in slots if s.start <= now < s.end), None)
        cost = import_wh / 1000.0 * slot.import_per_kwh if slot else 0.0
        revenue = export_wh / 1000.0 * slot.export_per_kwh if slot else 0.0
        day = now.astimezone(self._cfg.gateway.tz).date().isoformat()
        self._store.add_ledger(vehicle, day, import_wh, export_wh, cost, revenue)

    def today(self) -> list[dict[str, object]]:
        day = self._clock.now().astimezone(self._cfg.gateway.tz).date().isoformat()
        return [row for row in self._store.ledger() if row["day"] == day]

    async def run(self) -> None:
        changes: asyncio.Queue[Changed] = self._store.changes.subscribe()
        try:
            while True:
                c = await changes.get()
                if c.kind == "meter" and c.key is not None:
                    try:
                        self.on_meter(c.key)
                    except Exception:  # bookkeeping must never stop the gateway
                        log.exception("ledger.failed", charger_id=c.key)
        finally:
            self._store.changes.unsubscribe(changes)
