"""The `[home]` table: what is measured where, the grid connection's limits, the PV arrays and
where their forecast comes from. Kept apart from config.py (which only adds the table)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PvArray(_Section):
    """One array of modules: its peak power and which way it faces."""

    name: str = "roof"
    kwp: float = Field(gt=0, le=1000)
    tilt: float = Field(default=30.0, ge=0, le=90)  # degrees from horizontal
    azimuth: float = Field(default=180.0, ge=0, le=360)  # degrees from north: 180 = south
    losses_percent: float = Field(default=14.0, ge=0, le=50)
    inverter_kw: float | None = Field(default=None, gt=0)  # AC clipping, if lower than kwp


class HomeSection(_Section):
    enabled: bool = True
    # Measurements over MQTT (W; a JSON path like the outage meter's). Grid: + import, - export.
    grid_power_topic: str | None = None
    grid_power_json_path: str | None = None
    grid_power_invert: bool = False  # a meter that counts export as positive
    pv_power_topic: str | None = None
    pv_power_json_path: str | None = None
    house_load_topic: str | None = None  # without it: load = grid + PV - cars
    house_load_json_path: str | None = None
    # A reading older than this is unknown (silence is never zero).
    silence_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    # The grid connection, for the whole site (all cars and the house together).
    import_limit_w: float | None = Field(default=None, ge=0)
    export_limit_w: float | None = Field(default=None, ge=0)
    main_fuse_a: float | None = Field(default=None, gt=0, le=1000)
    phases: Literal[1, 3] = 3
    voltage_v: float = Field(default=230.0, ge=100, le=480)
    # Real time between plans: follow PV and load when they move this much, at most this often;
    # and keep this far inside the connection's limits.
    follow_step_w: float = Field(default=300.0, ge=0)
    follow_min_interval_s: float = Field(default=10.0, ge=0)
    limit_margin_w: float = Field(default=200.0, ge=0)
    # PV forecast for the plan.
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    pv: tuple[PvArray, ...] = ()
    pv_forecast: Literal["none", "open-meteo", "forecast.solar", "csv", "mqtt"] = "none"
    pv_forecast_csv: Path | None = None
    pv_forecast_topic: str | None = None
    forecast_base_url: str | None = None  # override the API address (tests, proxies)
    forecast_refresh_minutes: int = Field(default=60, ge=5, le=1440)
    # House load forecast: learnt from these many weeks of measurements; a standard household
    # profile of this yearly energy until there is history.
    load_history_weeks: int = Field(default=4, ge=1, le=12)
    annual_load_kwh: float = Field(default=4000.0, ge=0, le=100_000)

    @model_validator(mode="after")
    def _forecast_needs(self) -> HomeSection:
        if self.pv_forecast in ("open-meteo", "forecast.solar"):
            if self.latitude is None or self.longitude is None:
                raise ValueError(f"pv_forecast = {self.pv_forecast!r} needs latitude and longitude")
            if not self.pv:
                raise ValueError(
                    f"pv_forecast = {self.pv_forecast!r} needs at least one [[home.pv]]"
                )
        if self.pv_forecast == "csv" and self.pv_forecast_csv is None:
            raise ValueError("pv_forecast = 'csv' needs pv_forecast_csv")
        if self.pv_forecast == "mqtt" and not self.pv_forecast_topic:
            raise ValueError("pv_forecast = 'mqtt' needs pv_forecast_topic")
        return self

    def _fuse_w(self) -> float | None:
        return None if self.main_fuse_a is None else self.main_fuse_a * self.voltage_v * self.phases

    def import_limit_kw(self) -> float | None:
        """The lower of the import limit and the main fuse (A x V x phases), in kW."""
        limits = [x for x in (self.import_limit_w, self._fuse_w()) if x is not None]
        return min(limits) / 1000.0 if limits else None

    def export_limit_kw(self, fallback_w: float | None = None) -> float | None:
        limits = [x for x in (self.export_limit_w, self._fuse_w(), fallback_w) if x is not None]
        return min(limits) / 1000.0 if limits else None

    @property
    def measured(self) -> bool:
        return any((self.grid_power_topic, self.pv_power_topic, self.house_load_topic))
