"""The one TOML config file, read into frozen pydantic models that reject unknown keys.

Key names here are the user-facing contract of DESIGN.md section 5; add keys, never rename.
Reading the file lives in config_load.py, secrets in credentials.py, the `config init` template
in config_init.py and `config check` in config_check.py; the names below keep working.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from v2g_gateway.config_base import CredentialName, Section, at_most_one
from v2g_gateway.config_load import load_config, parse_config
from v2g_gateway.config_network import MqttSection, WebSection, is_loopback_host
from v2g_gateway.credentials import read_secret
from v2g_gateway.home.config import HomeSection

__all__ = [
    "Config",
    "MqttSection",
    "WebSection",
    "is_loopback_host",
    "load_config",
    "parse_config",
    "read_secret",
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Percent = Annotated[float, Field(ge=0, le=100)]
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def parse_hhmm(value: str) -> time:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError(f"expected a local time as HH:MM, got {value!r}")
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


class GatewaySection(Section):
    id: str = Field(default="home", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    state_dir: Path = Path("/var/lib/v2g-gateway")
    timezone: str = "Europe/Berlin"
    log_format: Literal["auto", "console", "json"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    tick_seconds: float = Field(default=60.0, gt=0, le=900)
    history_days: int = Field(default=90, ge=1, le=3650)
    # Where `credential = "NAME"` files are read when not started by systemd (relative: beside
    # this file); under systemd they come from $CREDENTIALS_DIRECTORY (see credentials.py).
    credentials_dir: Path = Path("credentials")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name like Europe/Berlin)"
            ) from exc
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class OcppSection(Section):
    host: str = "0.0.0.0"
    port: int = Field(default=9000, ge=0, le=65535)
    security_profile: Literal[1, 2, 3] = 1
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_key_credential: CredentialName | None = None  # the key as a credential instead
    tls_ca_file: Path | None = None  # CA that signs charger client certificates (profile 3)
    heartbeat_interval_s: int = Field(default=300, ge=10, le=86400)
    meter_interval_s: int = Field(default=60, ge=1, le=3600)
    ping_interval_s: float = Field(default=30.0, gt=0)
    ping_timeout_s: float = Field(default=30.0, gt=0)
    call_timeout_s: float = Field(default=30.0, gt=0)
    max_frame_bytes: int = Field(default=65536, ge=1024)
    max_messages_per_minute: int = Field(default=600, ge=10)
    # Before a connection has proved who it is (docs/security.md, csms/handshake_guard.py):
    handshake_timeout_s: float = Field(default=10.0, gt=0, le=120)  # TLS and websocket
    max_pending_handshakes: int = Field(default=256, ge=1, le=65536)  # in total
    max_pending_per_address: int = Field(default=16, ge=1, le=65536)
    login_failures_free: int = Field(default=3, ge=1, le=1000)  # then back-off: 1, 2, 4 .. s
    login_backoff_max_s: float = Field(default=60.0, ge=1, le=3600)
    # Who may charge: "any" accepts every token (NoAuthorization, unknown cards: guests);
    # "known" accepts only the tokens of [[vehicles]].
    authorize: Literal["any", "known"] = "any"
    # OCPP 2.1: how long a profile stays valid once the charger has lost the gateway
    # (maxOfflineDuration, with invalidAfterOfflineDuration): then it stops discharging.
    max_offline_s: int = Field(default=120, ge=1, le=3600)

    @model_validator(mode="after")
    def _tls_files(self) -> OcppSection:
        at_most_one(self, "tls_key_file", "tls_key_credential")
        no_key = self.tls_key_file is None and self.tls_key_credential is None
        if self.security_profile >= 2 and (self.tls_cert_file is None or no_key):
            raise ValueError(
                f"security_profile {self.security_profile} needs tls_cert_file and tls_key_file "
                "(or tls_key_credential)"
            )
        if self.security_profile == 3 and self.tls_ca_file is None:
            raise ValueError(
                "security_profile 3 needs tls_ca_file (the CA of charger certificates)"
            )
        return self


class ChargerSection(Section):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,48}$")
    enabled: bool = True  # false: its BootNotification is Rejected (taken out of service)
    password: str | None = Field(default=None, min_length=16, max_length=40)
    password_file: Path | None = None
    credential: CredentialName | None = None  # a file in the credentials folder (credentials.py)
    max_charge_w: float = Field(default=11000, gt=0, le=400_000)
    max_discharge_w: float = Field(default=10000, ge=0, le=400_000)
    min_discharge_w: float = Field(default=0, ge=0)
    evse_count: int = Field(default=1, ge=1, le=16)
    # Electrical facts for chargers that take limits in A (SmartChargingCtrlr.RateUnit): phases
    # (default: SupplyPhases from the charger, else 3), nominal voltage, and the smallest
    # current a car charges at (IEC 61851: 6 A).
    phases: Literal[1, 3] | None = None
    voltage_v: float = Field(default=230.0, ge=100, le=1000)
    min_current_a: float = Field(default=6.0, ge=0, le=32)
    strict: bool = False  # true: frames breaking the 2.0.1 schema get a CALLERROR (no leniency)
    # Pin the OCPP version (default: the charger's preference among 2.1 and 2.0.1).
    ocpp_version: Literal["2.0.1", "2.1"] | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> ChargerSection:
        at_most_one(self, "password", "password_file", "credential")
        return self


class VehicleSection(Section):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,48}$")
    battery_kwh: float = Field(gt=0, le=300)
    reserve_soc_percent: Percent = 40
    max_soc_percent: Percent = 100
    min_soc_percent: Percent = 10  # the lowest the car itself allows
    max_charge_w: float | None = Field(default=None, gt=0)
    max_discharge_w: float | None = Field(default=None, ge=0)
    charge_efficiency: float = Field(default=0.95, gt=0, le=1)
    discharge_efficiency: float = Field(default=0.95, gt=0, le=1)
    charger: str | None = None  # the charger it normally uses; default: the only one
    id_tokens: tuple[str, ...] = ()
    evccid: str | None = None
    soc_topic: str | None = None
    # What the user asks of this car (docs/home.md): smart (the plan), pv_only, min_pv,
    # charge_now, hold; settable at run time over MQTT (set/vehicle/<id>/mode).
    charge_mode: Literal["smart", "pv_only", "min_pv", "charge_now", "hold"] = "smart"
    make: str | None = None
    model: str | None = None
    year: int | None = Field(default=None, ge=1990, le=2100)

    @model_validator(mode="after")
    def _ordering(self) -> VehicleSection:
        if not self.min_soc_percent <= self.reserve_soc_percent <= self.max_soc_percent:
            raise ValueError(
                "need min_soc_percent <= reserve_soc_percent <= max_soc_percent, got "
                f"{self.min_soc_percent} / {self.reserve_soc_percent} / {self.max_soc_percent}"
            )
        return self


class TariffPeriod(Section):
    """A time-of-use period in local time; end <= start wraps past midnight."""

    start: str
    end: str
    import_per_kwh: float
    export_per_kwh: float = 0.0
    days: tuple[Weekday, ...] = WEEKDAYS
    months: tuple[Annotated[int, Field(ge=1, le=12)], ...] = tuple(range(1, 13))

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if v == "24:00":
            return v
        parse_hhmm(v)
        return v


class PricesSection(Section):
    source: Literal[
        "tariff", "entsoe", "nordpool", "energidataservice", "awattar", "octopus", "csv", "mqtt"
    ] = "tariff"
    area: str | None = None  # bidding zone, e.g. DE-LU, SE3, DK1, or Octopus region letter
    currency: str = "EUR"
    token: str | None = None
    token_file: Path | None = None
    credential: CredentialName | None = None  # the token as a credential (credentials.py)
    base_url: str | None = None  # override the API address (tests, proxies)
    product_code: str | None = None  # Octopus product, e.g. AGILE-24-10-01
    csv_file: Path | None = None
    # auto: told apart by the file itself, exactly as `prices load --format csv` does.
    csv_format: Literal["auto", "simple", "entsoe", "stata"] = "auto"
    mqtt_topic: str | None = None
    tariff: tuple[TariffPeriod, ...] = ()
    # Composition into the user's real prices (per kWh in `currency`).
    supplier_margin_per_kwh: float = 0.0
    vat_percent: float = Field(default=0.0, ge=0, le=100)
    grid_fee_per_kwh: float = 0.0
    # Time-of-use grid fee: periods whose import_per_kwh is the fee; replaces grid_fee_per_kwh.
    grid_fee_tou: tuple[TariffPeriod, ...] = ()
    energy_tax_per_kwh: float = 0.0
    export_factor: float = 1.0
    export_fee_per_kwh: float = 0.0
    export_fixed_per_kwh: float | None = None
    max_age_hours: float = Field(default=36.0, gt=0)

    @model_validator(mode="after")
    def _source_needs(self) -> PricesSection:
        at_most_one(self, "token", "token_file", "credential")
        if self.source == "tariff" and not self.tariff:
            raise ValueError("source = 'tariff' needs at least one [[prices.tariff]] period")
        if self.source == "csv" and self.csv_file is None:
            raise ValueError("source = 'csv' needs csv_file")
        if self.source == "mqtt" and not self.mqtt_topic:
            raise ValueError("source = 'mqtt' needs mqtt_topic")
        if self.source in ("entsoe", "nordpool", "energidataservice", "octopus") and not self.area:
            raise ValueError(f"source = {self.source!r} needs area")
        return self


class DeparturePlan(Section):
    vehicle: str | None = None  # default: every vehicle
    days: tuple[Weekday, ...] = WEEKDAYS
    time: str
    target_soc_percent: Percent = 80

    @field_validator("time")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        parse_hhmm(v)
        return v


class DemandResponseSection(Section):
    enabled: bool = True
    max_power_w: float | None = Field(default=None, ge=0)


class PreferencesSection(Section):
    v2g_enabled: bool = True
    v2h_only: bool = False
    discharge_above_per_kwh: float | None = None
    degradation_cost_per_kwh: float = Field(default=0.05, ge=0)
    max_cycles_per_day: float = Field(default=1.0, gt=0)
    grid_export_limit_w: float | None = Field(default=None, ge=0)
    departures: tuple[DeparturePlan, ...] = ()
    demand_response: DemandResponseSection = DemandResponseSection()
    profile_validity_minutes: int = Field(default=15, ge=1, le=60)
    soc_max_age_minutes: int = Field(default=30, ge=1, le=1440)


class OutageSection(Section):
    enabled: bool = True
    mqtt_topic: str | None = None
    payload_outage: str = "offline"
    payload_normal: str = "online"
    json_path: str | None = None  # e.g. "voltage" or "em:0.a_voltage"
    voltage_below_v: float | None = Field(default=None, ge=0)
    charger_voltage_below_v: float | None = Field(default=80.0, ge=0)
    debounce_s: float = Field(default=2.0, ge=0)
    restore_holdoff_s: float = Field(default=60.0, ge=0)
    silence_timeout_s: float = Field(default=120.0, gt=0)
    floor_soc_percent: Percent = 20
    home_power_topic: str | None = None
    home_power_json_path: str | None = None
    fixed_backup_w: float = Field(default=3000.0, ge=0)
    # Grid-meter readings: restore only this far back above a threshold (no chattering).
    voltage_hysteresis_v: float = Field(default=10.0, ge=0)
    frequency_json_path: str | None = None  # e.g. "frequency" or "em:0.a_freq"
    frequency_below_hz: float | None = Field(default=None, ge=0)
    frequency_above_hz: float | None = Field(default=None, ge=0)
    frequency_hysteresis_hz: float = Field(default=0.2, ge=0)
    true_means: Literal["normal", "outage"] = "normal"  # what a boolean payload `true` says
    # Load following: re-plan when the home's load moves this much, at most this often.
    follow_step_w: float = Field(default=200.0, ge=0)
    follow_min_interval_s: float = Field(default=5.0, ge=0)
    # How many independent sources (the grid meter, each charger) must confirm an outage before
    # the floor drops to floor_soc_percent: 2 = one spoofed message or one odd charger is not
    # enough (docs/outage.md).
    confirm_sources: int = Field(default=1, ge=1, le=8)
    # A charger's NotifyEvent PowerLoss/GridLoss hints count as evidence (false: ignored).
    charger_events: bool = True

    @field_validator("mqtt_topic")
    @classmethod
    def _one_topic(cls, v: str | None) -> str | None:
        if v is not None and ("+" in v or "#" in v):
            raise ValueError(
                "must be one topic, not a filter with + or #: an outage is believed only from "
                "that exact topic"
            )
        return v


class Config(Section):
    gateway: GatewaySection = GatewaySection()
    ocpp: OcppSection = OcppSection()
    chargers: tuple[ChargerSection, ...] = ()
    vehicles: tuple[VehicleSection, ...] = ()
    prices: PricesSection = PricesSection(
        tariff=(TariffPeriod(start="00:00", end="00:00", import_per_kwh=0.30, export_per_kwh=0.08),)
    )
    preferences: PreferencesSection = PreferencesSection()
    outage: OutageSection = OutageSection()
    mqtt: MqttSection = MqttSection()
    home: HomeSection = HomeSection()
    web: WebSection | None = None  # None: no [web] table, the web app is off

    @model_validator(mode="after")
    def _references(self) -> Config:
        ids = [c.id for c in self.chargers]
        if len(set(ids)) != len(ids):
            raise ValueError(f"chargers: duplicate id in {ids}")
        vids = [v.id for v in self.vehicles]
        if len(set(vids)) != len(vids):
            raise ValueError(f"vehicles: duplicate id in {vids}")
        for i, v in enumerate(self.vehicles):
            if v.charger is not None and v.charger not in ids:
                raise _RefError(
                    f"vehicles[{i}].charger", f"unknown charger {v.charger!r} (known: {ids})"
                )
        floor = self.outage.floor_soc_percent
        for i, v in enumerate(self.vehicles):
            if self.outage.enabled and floor < v.min_soc_percent:
                raise _RefError(
                    "outage.floor_soc_percent",
                    f"{floor:g} % is below the minimum of vehicle {v.id!r} "
                    f"(vehicles[{i}].min_soc_percent = {v.min_soc_percent:g} %): the car "
                    "itself stops there",
                )
        for i, d in enumerate(self.preferences.departures):
            if d.vehicle is not None and d.vehicle not in vids:
                raise _RefError(
                    f"preferences.departures[{i}].vehicle",
                    f"unknown vehicle {d.vehicle!r} (known: {vids})",
                )
        return self

    def charger(self, charger_id: str) -> ChargerSection | None:
        return next((c for c in self.chargers if c.id == charger_id), None)

    def vehicle(self, vehicle_id: str) -> VehicleSection | None:
        return next((v for v in self.vehicles if v.id == vehicle_id), None)

    def power_limits(self, vehicle_id: str, charger_id: str | None) -> tuple[float, float]:
        """(max charge W, max discharge W): the lower of the charger's and the car's limits.
        An unknown charger may charge at a common 11 kW and never discharge."""
        c = self.charger(charger_id) if charger_id else None
        v = self.vehicle(vehicle_id)
        car_c = v.max_charge_w if v and v.max_charge_w is not None else float("inf")
        car_d = v.max_discharge_w if v and v.max_discharge_w is not None else float("inf")
        return (
            min(c.max_charge_w if c else 11000.0, car_c),
            min(c.max_discharge_w if c else 0.0, car_d),
        )

    def default_vehicle(self, charger_id: str) -> VehicleSection | None:
        """The car a charger has when nothing identifies it: the vehicle whose `charger` is this
        one, else, with a single charger configured, the one vehicle that names no charger.
        Anything else plugged in there is a guest (charged by price, never discharged)."""
        homed = [v for v in self.vehicles if v.charger == charger_id]
        if homed:
            return homed[0]
        unhomed = [v for v in self.vehicles if v.charger is None]
        if len(self.chargers) <= 1 and len(unhomed) == 1:
            return unhomed[0]
        return None

    def vehicle_for(self, charger_id: str, id_token: str | None = None) -> VehicleSection | None:
        """Which configured vehicle is at this charger: by id token, then by home charger."""
        if id_token:
            for v in self.vehicles:
                if id_token in v.id_tokens or id_token == v.evccid:
                    return v
        homed = [v for v in self.vehicles if v.charger == charger_id]
        if homed:
            return homed[0]
        unhomed = [v for v in self.vehicles if v.charger is None]
        return unhomed[0] if unhomed else None


class _RefError(ValueError):
    """A reference error that knows its own key path."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(problem)
