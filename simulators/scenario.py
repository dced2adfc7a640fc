"""Scenario files: a day or a week of arrivals, departures, outages and demand-response events.

Times in the file are local wall-clock times ("17:30") on a day counted from `start`; a departure
earlier than its arrival is on the next day. The runner performs the events on the injected
clock, so an accelerated clock plays a day in a minute. A demand-response event is announced
`notice_minutes` before it starts, through the `announce` callback the runner is given (the demo
sends the gateway's documented `set/demand_response` command, as an aggregator would).
"""

from __future__ import annotations

import tomllib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import v2g_gateway
from simulators.battery import EvBattery
from simulators.charger import SimulatedCharger
from simulators.errors import ScenarioError
from simulators.grid import GridSimulator
from v2g_gateway.clock import Clock

log = structlog.get_logger("simulators.scenario")
SCENARIO_DIR = Path(__file__).parent / "scenarios"
Percent = Annotated[float, Field(ge=0, le=100)]
# (event_id, start, end, power_w): how a demand-response event reaches the gateway.
Announce = Callable[[str, datetime, datetime, float], Awaitable[None]]


def _hhmm(value: str) -> str:
    try:
        time.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a local time HH:MM, got {value!r}") from None
    return value


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Car(_Section):
    id: str = "car"
    capacity_kwh: float = Field(default=60, gt=0, le=300)
    max_charge_w: float = Field(default=11000, gt=0)
    max_discharge_w: float = Field(default=10000, ge=0)
    min_soc_percent: Percent = 5
    eta_charge: float = Field(default=0.95, gt=0, le=1)
    eta_discharge: float = Field(default=0.95, gt=0, le=1)
    id_token: str = "car-token"


class Arrival(_Section):
    car: str = "car"
    charger: str | None = None  # default: the first charger given to the runner
    evse: int = Field(default=1, ge=1)
    day: int = Field(default=0, ge=0)
    time: str
    soc_percent: Percent
    departure: str | None = None
    target_soc_percent: Percent | None = None

    @field_validator("time", "departure")
    @classmethod
    def _times(cls, v: str | None) -> str | None:
        return None if v is None else _hhmm(v)


class Window(_Section):
    day: int = Field(default=0, ge=0)
    start: str
    end: str
    power_w: float | None = Field(default=None, ge=0)  # demand response: export asked for
    notice_minutes: float = Field(default=60, ge=0, le=2880)  # demand response: sent this early

    @field_validator("start", "end")
    @classmethod
    def _time(cls, v: str) -> str:
        return _hhmm(v)


class Scenario(_Section):
    name: str
    description: str = ""
    start: date
    start_time: str = "00:00"
    timezone: str = "Europe/Berlin"
    days: int = Field(default=1, ge=1, le=31)
    speed: float = Field(default=1440.0, gt=0)  # clock seconds per wall second
    prices: str | None = None
    prices_format: str | None = None
    seed: int = 0
    cars: tuple[Car, ...] = (Car(),)
    arrivals: tuple[Arrival, ...] = ()
    outages: tuple[Window, ...] = ()
    demand_response: tuple[Window, ...] = ()
    # A home with PV (docs/home.md): a clear day's PV of this size, the grid meter and PV on
    # MQTT, and export at a fixed feed-in price instead of net metering.
    pv_kwp: float = Field(default=0.0, ge=0, le=100)
    export_fixed_per_kwh: float | None = None
    source: Path | None = None

    @field_validator("start_time")
    @classmethod
    def _start_time(cls, v: str) -> str:
        return _hhmm(v)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.fromisoformat(self.start_time), self.tz)

    @property
    def end_at(self) -> datetime:
        return self.start_at + timedelta(days=self.days)

    def at(self, day: int, hhmm: str) -> datetime:
        return datetime.combine(self.start + timedelta(days=day), time.fromisoformat(hhmm), self.tz)

    def car(self, car_id: str) -> Car:
        return next(c for c in self.cars if c.id == car_id)

    def prices_path(self) -> Path | None:
        """The price file: relative to the scenario file, else to the installed package."""
        if self.prices is None:
            return None
        candidates = [Path(self.prices)]
        if self.source is not None:
            candidates.insert(0, self.source.parent / self.prices)
        candidates.append(Path(v2g_gateway.__file__).parent / self.prices)
        return next((p for p in candidates if p.is_file()), candidates[0])


@dataclass(frozen=True, slots=True)
class ScenarioEvent:
    at: datetime
    kind: Literal["arrive", "depart", "outage", "restore", "dr_announce", "dr_start", "dr_end"]
    charger: str | None = None
    evse: int = 1
    arrival: Arrival | None = None
    window: Window | None = None

    def describe(self) -> str:
        what = self.kind.replace("_", " ")
        if self.arrival is not None and self.kind == "arrive":
            what += f" {self.arrival.car} at {self.arrival.soc_percent:.0f} %"
        return f"{self.at.isoformat(timespec='minutes')} {what}"


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; every mistake is one ScenarioError naming file and key."""
    p = Path(path)
    if not p.is_file() and (SCENARIO_DIR / f"{path}.toml").is_file():
        p = SCENARIO_DIR / f"{path}.toml"  # a shipped scenario by name
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(str(p), None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(p), None, f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(p), None, f"invalid TOML: {exc}") from None
    return parse_scenario(data, p)


def parse_scenario(data: Mapping[str, Any], source: Path | None = None) -> Scenario:
    where = str(source) if source else "<scenario>"
    if "source" in data:
        raise ScenarioError(where, "source", "unknown key")
    try:
        sc = Scenario.model_validate({**data, "source": source})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"]).lstrip(".")
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")
        raise ScenarioError(where, key or None, msg) from None
    car_ids = {c.id for c in sc.cars}
    for i, a in enumerate(sc.arrivals):
        if a.car not in car_ids:
            raise ScenarioError(where, f"arrivals[{i}].car", f"unknown car {a.car!r}")
        if not sc.start_at <= sc.at(a.day, a.time) < sc.end_at:
            raise ScenarioError(where, f"arrivals[{i}].time", "outside the scenario's time span")
    for name, windows in (("outages", sc.outages), ("demand_response", sc.demand_response)):
        for i, w in enumerate(windows):
            if not sc.start_at <= sc.at(w.day, w.start) < sc.end_at:
                raise ScenarioError(where, f"{name}[{i}].start", "outside the scenario's time span")
    if sc.prices is not None:
        path = sc.prices_path()
        if path is None or not path.is_file():
            raise ScenarioError(where, "prices", f"price file not found: {sc.prices}")
    return sc


def timeline(sc: Scenario, chargers: Sequence[str]) -> list[ScenarioEvent]:
    """Every event of the scenario in time order (departures after their arrival)."""
    if not chargers:
        raise ScenarioError(str(sc.source or "<scenario>"), None, "needs at least one charger")
    events: list[ScenarioEvent] = []
    for a in sc.arrivals:
        charger = a.charger or chargers[0]
        if charger not in chargers:
            raise ScenarioError(str(sc.source), "arrivals.charger", f"unknown charger {charger!r}")
        arrive = sc.at(a.day, a.time)
        events.append(ScenarioEvent(arrive, "arrive", charger, a.evse, arrival=a))
        if a.departure is not None:
            leave = sc.at(a.day, a.departure)
            while leave <= arrive:
                leave = leave + timedelta(days=1)
            events.append(ScenarioEvent(leave, "depart", charger, a.evse, arrival=a))
    for w in sc.outages:
        events.append(ScenarioEvent(sc.at(w.day, w.start), "outage", window=w))
        events.append(ScenarioEvent(_end(sc, w), "restore", window=w))
    for w in sc.demand_response:
        start = sc.at(w.day, w.start)
        notice = timedelta(minutes=w.notice_minutes)
        events.append(ScenarioEvent(max(sc.start_at, start - notice), "dr_announce", window=w))
        events.append(ScenarioEvent(start, "dr_start", window=w))
        events.append(ScenarioEvent(_end(sc, w), "dr_end", window=w))
    order = {
        "restore": 0,
        "dr_end": 1,
        "depart": 2,
        "arrive": 3,
        "outage": 4,
        "dr_announce": 5,
        "dr_start": 6,
    }
    return sorted(events, key=lambda e: (e.at, order[e.kind]))


def window_span(sc: Scenario, w: Window) -> tuple[datetime, datetime]:
    """A window's start and end as aware datetimes (an end before the start is the next day)."""
    return sc.at(w.day, w.start), _end(sc, w)


def _end(sc: Scenario, w: Window) -> datetime:
    end = sc.at(w.day, w.end)
    return end if end > sc.at(w.day, w.start) else end + timedelta(days=1)


async def run_scenario(
    scenario: Scenario,
    chargers: Mapping[str, SimulatedCharger] | Sequence[SimulatedCharger],
    grid: GridSimulator | None,
    clock: Clock,
    on_event: Callable[[ScenarioEvent], Awaitable[None] | None] | None = None,
    announce: Announce | None = None,
) -> list[ScenarioEvent]:
    """Perform the scenario's events on `clock`; returns them as done (events before the start
    are skipped, late ones performed late).

    `announce(event_id, start, end, power_w)` delivers a demand-response event; without it the
    grid simulator announces it on its own topic."""
    by_id = dict(chargers) if isinstance(chargers, Mapping) else {c.charger_id: c for c in chargers}
    done: list[ScenarioEvent] = []
    # Only what was over before the run began is skipped; an event a busy machine makes late (at
    # thousands of times real speed a millisecond is seconds) is still performed, late.
    began = clock.now()
    for event in timeline(scenario, list(by_id)):
        wait = (event.at - clock.now()).total_seconds()
        if (event.at - began).total_seconds() < -1:
            log.info("sim_scenario_skip", what=event.describe())
            continue
        if wait > 0:
            await clock.sleep(wait)
        await _perform(scenario, event, by_id, grid, announce)
        done.append(event)
        log.info("sim_scenario_event", what=event.describe())
        if on_event is not None:
            result = on_event(event)
            if result is not None:
                await result
    remaining = (scenario.end_at - clock.now()).total_seconds()
    if remaining > 0:
        await clock.sleep(remaining)
    return done


async def _perform(
    sc: Scenario,
    event: ScenarioEvent,
    chargers: Mapping[str, SimulatedCharger],
    grid: GridSimulator | None,
    announce: Announce | None = None,
) -> None:
    if event.kind in ("arrive", "depart"):
        assert event.charger is not None and event.arrival is not None
        charger = chargers[event.charger]
        a = event.arrival
        if event.kind == "depart":
            if charger.ev(event.evse) is not None:
                await charger.plug_out(event.evse)
            return
        car = sc.car(a.car)
        ev = EvBattery(
            car.capacity_kwh,
            a.soc_percent,
            eta_charge=car.eta_charge,
            eta_discharge=car.eta_discharge,
            max_charge_w=car.max_charge_w,
            max_discharge_w=car.max_discharge_w,
            min_soc_percent=car.min_soc_percent,
        )
        departure = None
        energy = None
        if a.departure is not None:
            departure = sc.at(a.day, a.departure)
            while departure <= event.at:
                departure += timedelta(days=1)
        if a.target_soc_percent is not None:
            energy = max(
                0.0, (a.target_soc_percent - a.soc_percent) / 100 * car.capacity_kwh * 1000
            )
        if charger.ev(event.evse) is not None:
            await charger.plug_out(event.evse)
        await charger.plug_in(ev, event.evse, car.id_token, departure, energy)
    elif event.kind == "outage":
        if grid is not None:
            grid.outage()
        else:
            for c in chargers.values():
                c.set_grid_voltage(0.0)
    elif event.kind == "restore":
        if grid is not None:
            grid.restore()
        else:
            for c in chargers.values():
                c.set_grid_voltage(c.nominal_voltage)
    elif event.kind == "dr_announce":
        w = event.window
        assert w is not None
        start, end = window_span(sc, w)
        event_id = f"{sc.name}-dr-{start:%Y%m%d-%H%M}"
        if announce is not None:
            await announce(event_id, start, end, w.power_w or 0.0)
        elif grid is not None:
            grid.demand_response(start, end, w.power_w or 0.0)
