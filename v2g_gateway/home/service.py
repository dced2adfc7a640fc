"""The home as dispatch sees it: measurements now, and PV and house-load forecasts per slot.

Fetches the PV forecast every `forecast_refresh_minutes` (a failure keeps the last good forecast
and retries with jittered backoff; the first one is told to the user once), learns the house
load from every reading, and keeps that history in the store across restarts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog

from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.errors import HomeError
from v2g_gateway.home.forecast_solar import ForecastSolar
from v2g_gateway.home.load import LoadHistory
from v2g_gateway.home.meter import HomeMeter, HomeNow, Kind, MessageHandler
from v2g_gateway.home.openmeteo import OpenMeteo
from v2g_gateway.home.pv import PowerSlot, PvForecaster
from v2g_gateway.home.series import CsvForecast, PushedForecast
from v2g_gateway.model import Notification
from v2g_gateway.store import Store

log = structlog.get_logger(__name__)

HISTORY_KEY = "home_load_history"
SAVE_EVERY = timedelta(minutes=15)


def forecaster(cfg: Config) -> PvForecaster | None:
    h = cfg.home
    if h.pv_forecast == "open-meteo":
        return OpenMeteo(h)
    if h.pv_forecast == "forecast.solar":
        return ForecastSolar(h)
    if h.pv_forecast == "csv" and h.pv_forecast_csv is not None:
        return CsvForecast(h.pv_forecast_csv)
    if h.pv_forecast == "mqtt":
        return PushedForecast()
    return None


def mean_kw(slots: Sequence[PowerSlot], start: datetime, end: datetime) -> float:
    """Mean power over [start, end) of a forecast; where it has no value, 0 (no sun assumed)."""
    total = 0.0
    for s in slots:
        overlap = (min(s.end, end) - max(s.start, start)).total_seconds()
        if overlap > 0:
            total += s.kw * overlap
    span = (end - start).total_seconds()
    return total / span if span > 0 else 0.0


class HomeService:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        clock: Clock,
        http: httpx.AsyncClient,
        cars_w: Callable[[], float | None],
        on_grid: Callable[[float], None] | None = None,
    ) -> None:
        self._cfg = cfg
        self._h = cfg.home
        self._store = store
        self._clock = clock
        self._http = http
        self._on_grid = on_grid
        self.meter = HomeMeter(self._h, clock, cars_w, on_reading=self._reading)
        self.history = LoadHistory(
            cfg.gateway.tz, self._h.load_history_weeks, self._h.annual_load_kwh
        )
        try:
            self.history.load_json(store.kv_get(HISTORY_KEY))
        except Exception as exc:  # a damaged history only costs the learning
            log.warning("home.history_unreadable", error=str(exc))
        self.pv: list[PowerSlot] = []
        self.pv_at: datetime | None = None
        self._forecaster = forecaster(cfg)
        self._failing = False
        self._sampled: float | None = None
        self._saved = clock.now()
        self.fetches = 0

    @property
    def has_pv(self) -> bool:
        return self._forecaster is not None or bool(self._h.pv)

    def listeners(self) -> list[tuple[str, MessageHandler]]:
        out = self.meter.listeners()
        if isinstance(self._forecaster, PushedForecast) and self._h.pv_forecast_topic:
            out.append((self._h.pv_forecast_topic, self._pushed))
        return out

    def now(self) -> HomeNow:
        return self.meter.now()

    def forecast(
        self, slots: Sequence[tuple[datetime, datetime]]
    ) -> tuple[list[float] | None, list[float]]:
        """(PV kW or None without a PV forecast, house load kW) per (start, end)."""
        load = self.history.forecast_kw(slots)
        if self._forecaster is None:
            return None, load
        return [mean_kw(self.pv, a, b) for a, b in slots], load

    # ------------------------------------------------------------------ inputs

    def _reading(self, kind: Kind, w: float) -> None:
        now = self.meter.now()
        mono = self._clock.monotonic()
        if now.load_w is not None and kind in ("grid", "load"):
            held = 0.0 if self._sampled is None else mono - self._sampled
            held = min(held, self._h.silence_timeout_s)
            if held > 0:
                self.history.add(self._clock.now(), now.load_w, held)
            self._sampled = mono
        if kind == "grid" and self._on_grid is not None:
            self._on_grid(w)

    def _pushed(self, topic: str, payload: bytes) -> None:
        assert isinstance(self._forecaster, PushedForecast)
        try:
            self._forecaster.accept(payload)
        except HomeError as exc:
            self._tell("pv_forecast_rejected", f"PV forecast on {topic} ignored: {exc}")
            return
        self.pv = list(self._forecaster.slots)
        self.pv_at = self._clock.now()

    # ------------------------------------------------------------------ loop

    async def refresh(self) -> bool:
        """Fetch the PV forecast once; False (and the last good one kept) on failure."""
        if self._forecaster is None or isinstance(self._forecaster, PushedForecast):
            return True
        try:
            slots = await self._forecaster.fetch(self._http, self._clock.now())
        except HomeError as exc:
            log.warning("home.pv_forecast_failed", error=str(exc))
            if not self._failing:
                self._failing = True
                self._tell("pv_forecast_failed", f"PV forecast failed: {exc}")
            return False
        self.fetches += 1
        self._failing = False
        self.pv, self.pv_at = slots, self._clock.now()
        return True

    async def run(self) -> None:
        delay = 30.0
        while True:
            ok = await self.refresh()
            self.save()
            if ok:
                delay = 30.0
                wait = self._h.forecast_refresh_minutes * 60.0
            else:
                wait = delay * random.uniform(0.8, 1.2)
                delay = min(delay * 2, self._h.forecast_refresh_minutes * 60.0)
            await self._clock.sleep(min(wait, SAVE_EVERY.total_seconds()))

    def save(self) -> None:
        now = self._clock.now()
        if now - self._saved < SAVE_EVERY:
            return
        self._saved = now
        try:
            self._store.kv_set(HISTORY_KEY, self.history.to_json())
        except Exception as exc:
            log.warning("home.history_not_saved", error=str(exc))

    def status(self) -> dict[str, Any]:
        now = self._clock.now()
        return {
            **self.meter.status(),
            "pv_forecast": self._h.pv_forecast,
            "pv_forecast_at": None if self.pv_at is None else self.pv_at.isoformat(),
            "pv_forecast_failing": self._failing,
            "load_days_learnt": round(self.history.days_learnt(now), 1),
            "import_limit_w": None if (x := self._h.import_limit_kw()) is None else round(x * 1000),
            "export_limit_w": None
            if (y := self._h.export_limit_kw(self._cfg.preferences.grid_export_limit_w)) is None
            else round(y * 1000),
        }

    def _tell(self, kind: str, message: str) -> None:
        self._store.notify(
            Notification(kind=kind, message=message, at=self._clock.now(), level="warning")
        )
