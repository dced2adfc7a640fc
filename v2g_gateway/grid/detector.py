"""Grid outage detection: combines meters, charger voltage and charger hints into one state.

A source whose outage reading survives the debounce declares an outage, or with `confirm_sources
= N` N independent ones do (a charger's voltage and its events are one origin: one charger); the
outage ends when fewer than N still say outage after the hold-off. Only the configured topic
counts as the grid meter. Silence is never evidence: a meter
that stops talking leaves the state as it was and is reported as unknown. The switch to backup
happens inside the message handler (store flag + controller wake), not at the next timer tick,
because the house is dark until the charger gets its discharge profile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from v2g_gateway.bus import Changed
from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.grid.energy import BackupEnergy
from v2g_gateway.grid.payload import GridPayloadError, Verdict, parse_grid, parse_home_power
from v2g_gateway.grid.sources import Source, describe, duration, label, origin
from v2g_gateway.model import GRID_HINT, EvseState, Notification
from v2g_gateway.store import Store

log = structlog.get_logger(__name__)

MessageHandler = Callable[[str, bytes], None]


class OutageDetector:
    def __init__(self, cfg: Config, store: Store, clock: Clock, wake: Callable[[], None]) -> None:
        self._cfg = cfg
        self._o = cfg.outage
        self._store = store
        self._clock = clock
        self._wake = wake
        self._debounce = timedelta(seconds=self._o.debounce_s)
        self._holdoff = timedelta(seconds=self._o.restore_holdoff_s)
        self._silence = timedelta(seconds=self._o.silence_timeout_s)
        # A charger reports on its own meter interval, which may be slower than a grid meter.
        self._charger_silence = max(
            self._silence, timedelta(seconds=2.5 * cfg.ocpp.meter_interval_s)
        )
        self._sources: dict[str, Source] = {}
        self._outage = False
        self._since = clock.now()
        self._backup_w = 0.0
        self._followed_at: datetime | None = None
        self._follow_due: datetime | None = None
        self._home_w: float | None = None
        self._home_at: datetime | None = None
        self._energy = BackupEnergy()
        self._bad_topics: set[str] = set()
        self._silent_told: set[str] = set()
        self._hints: dict[str, bool] = {}
        self._kick = asyncio.Event()
        self.running = asyncio.Event()  # set once run() follows the store

    # ------------------------------------------------------------------ inputs

    def listeners(self) -> list[tuple[str, MessageHandler]]:
        """(topic filter, handler) pairs to register with the MQTT bridge."""
        out: list[tuple[str, MessageHandler]] = []
        if self._o.enabled and self._o.mqtt_topic:
            out.append((self._o.mqtt_topic, self.handle_grid_message))
        if self._o.enabled and self._o.home_power_topic:
            out.append((self._o.home_power_topic, self.handle_home_power))
        return out

    def handle_grid_message(self, topic: str, payload: bytes) -> None:
        """A grid meter spoke. Bad payloads are logged once per topic and never mean outage."""
        if not self._o.enabled:
            return
        if topic != self._o.mqtt_topic:  # the bridge filters too; this is the rule itself
            if topic not in self._bad_topics:
                self._bad_topics.add(topic)
                log.warning("grid.foreign_topic", topic=topic, expected=self._o.mqtt_topic)
            return
        try:
            reading = parse_grid(self._o, payload)
        except GridPayloadError as exc:
            if topic not in self._bad_topics:
                self._bad_topics.add(topic)
                log.warning("grid.bad_payload", topic=topic, error=str(exc))
            return
        self._bad_topics.discard(topic)
        now = self._clock.now()
        self._source(f"mqtt:{topic}", self._silence).hear(
            now, reading.verdict, reading.value, reading.measured
        )
        self._update(now)

    def handle_home_power(self, topic: str, payload: bytes) -> None:
        """The home's load in W: what the car should cover during an outage."""
        if not self._o.enabled:
            return
        try:
            watts = parse_home_power(self._o, payload)
        except GridPayloadError as exc:
            if topic not in self._bad_topics:
                self._bad_topics.add(topic)
                log.warning("grid.bad_home_power", topic=topic, error=str(exc))
            return
        self._bad_topics.discard(topic)
        now = self._clock.now()
        self._home_w, self._home_at = watts, now
        self._update(now)

    def handle_charger_hint(self, charger_id: str, outage: bool) -> None:
        """A charger said the grid is gone or back (e.g. a NotifyEvent the csms recognised)."""
        if not self._o.enabled or not self._o.charger_events:
            return
        now = self._clock.now()
        verdict: Verdict = "outage" if outage else "normal"
        self._source(f"event:{charger_id}", self._charger_silence).hear(now, verdict, None, False)
        self._update(now)

    def _charger_hint(self, charger_id: str) -> None:
        """Follow the grid hint the csms recorded from the charger's NotifyEvent, once each."""
        ch = self._store.charger_state(charger_id)
        hint = None if ch is None else ch.capabilities.get(GRID_HINT)
        if isinstance(hint, bool) and self._hints.get(charger_id) is not hint:
            self._hints[charger_id] = hint
            self.handle_charger_hint(charger_id, hint)

    def charger_metered(self, charger_id: str) -> None:
        """A charger sent meter values: its voltage is evidence, its export counts as backup."""
        if not self._o.enabled:
            return
        now = self._clock.now()
        ch = self._store.charger_state(charger_id)
        if ch is None:
            return
        if self._outage:
            for ev in ch.evses.values():
                self._energy.sample(ev)
        threshold = self._o.charger_voltage_below_v
        volts = [ev.voltage_v for ev in ch.evses.values() if ev.voltage_v is not None]
        if threshold is None or not ch.online or not volts:
            return
        v = max(volts)  # every EVSE hangs on the same feed; the lowest phase is already taken
        verdict: Verdict | None = None
        if v < threshold:
            verdict = "outage"
        elif v >= threshold + self._o.voltage_hysteresis_v:
            verdict = "normal"
        self._source(f"charger:{charger_id}", self._charger_silence).hear(now, verdict, v, True)
        self._update(now)

    # ------------------------------------------------------------------ outputs

    def state(self, now: datetime) -> tuple[bool, float]:
        """(outage?, backup power W): the controller's `outage_view`."""
        return (True, self._backup_w) if self._outage else (False, 0.0)

    def backup_power_w(self, now: datetime) -> float:
        """What the car should deliver: the followed home load, or the fixed backup power."""
        return self._backup_w if self._outage else self._load_target(now)

    def home_load_w(self, now: datetime) -> float | None:
        """The home's current load from its meter, or None when there is no fresh reading."""
        return self._home_w if self._following(now) else None

    @property
    def outage(self) -> bool:
        return self._outage

    def status(self) -> dict[str, Any]:
        now = self._clock.now()
        silent = sorted(n for n, s in self._sources.items() if s.silent(now))
        state = "outage" if self._outage else ("unknown" if silent else "normal")
        return {
            "state": state,
            "outage": self._outage,
            "since": self._since.isoformat(),
            "backup_w": round(self._backup_w) if self._outage else 0,
            "home_w": None if self._home_w is None else round(self._home_w),
            "unknown_sources": silent,
            "sources": {n: s.status(now) for n, s in sorted(self._sources.items())},
            # Who may lower the floor to the outage floor, how many must agree, who says so now.
            "floor_sources": self.floor_sources(),
            "confirm_sources": self._o.confirm_sources,
            "outage_evidence": sorted(
                n for n, s in self._sources.items() if s.confirmed == "outage"
            ),
        }

    def floor_sources(self) -> list[str]:
        """The sources whose outage reading can switch to backup (and the outage floor)."""
        if not self._o.enabled:
            return []
        out = [f"mqtt:{self._o.mqtt_topic}"] if self._o.mqtt_topic else []
        for c in self._cfg.chargers:
            if self._o.charger_voltage_below_v:
                out.append(f"charger:{c.id}")
            if self._o.charger_events:
                out.append(f"event:{c.id}")
        return out

    # ------------------------------------------------------------------ timers

    def poll(self) -> None:
        """Apply every rule whose time has come (debounce, hold-off, silence, load following)."""
        self._evaluate(self._clock.now())

    async def run(self) -> None:
        changes = self._store.changes.subscribe()
        watcher = asyncio.create_task(self._watch(changes), name="grid-watch")
        self.running.set()
        try:
            while True:
                now = self._clock.now()
                self._evaluate(now)
                self._kick.clear()
                due = self._next_deadline(now)
                waits: set[asyncio.Task[Any]] = {asyncio.create_task(self._kick.wait())}
                if due is not None:
                    delay = max(0.0, (due - now).total_seconds())
                    waits.add(asyncio.create_task(self._clock.sleep(delay)))
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for t in waits:
                        t.cancel()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self._store.changes.unsubscribe(changes)
            self.running.clear()

    async def _watch(self, changes: asyncio.Queue[Changed]) -> None:
        while True:
            c = await changes.get()
            if c.key is None or c.kind not in ("meter", "charger"):
                continue
            try:
                if c.kind == "charger":
                    self._charger_hint(c.key)
                    continue
                self.charger_metered(c.key)
            except Exception:  # one odd sample must not end outage detection
                log.exception("grid.meter_failed", charger_id=c.key)

    def _next_deadline(self, now: datetime) -> datetime | None:
        times = [
            t
            for s in self._sources.values()
            if (t := s.next_deadline(now, self._debounce, self._holdoff)) is not None
        ]
        if self._outage and self._follow_due is not None:
            times.append(self._follow_due)
        if self._outage and self._home_at is not None and self._home_fresh(now):
            times.append(self._home_at + self._silence + timedelta(microseconds=1))
        return min(times) if times else None

    # ------------------------------------------------------------------ rules

    def _source(self, name: str, silence_after: timedelta) -> Source:
        src = self._sources.get(name)
        if src is None:
            src = self._sources[name] = Source(name, silence_after)
        return src

    def _update(self, now: datetime) -> None:
        self._evaluate(now)
        self._kick.set()  # new deadlines for run()

    def _evaluate(self, now: datetime) -> None:
        for s in self._sources.values():
            s.settle(now, self._debounce, self._holdoff)
        confirmed = [s for s in self._sources.values() if s.confirmed == "outage"]
        enough = len({origin(s.name) for s in confirmed}) >= self._o.confirm_sources
        if enough and not self._outage:
            self._declare(now, confirmed)
        elif not enough and self._outage:
            self._restore(now)
        elif self._outage:
            self._follow(now)
        self._tell_silence(now)

    def _declare(self, now: datetime, evidence: list[Source]) -> None:
        self._outage = True
        self._since = now
        self._backup_w = self._load_target(now)
        self._followed_at = now
        self._follow_due = None
        self._store.set_grid_outage(True)
        self._wake()  # first: the house is waiting
        snap = self._store.snapshot(now)
        evses: list[EvseState] = [
            ev for ch in snap.chargers.values() if ch.online for ev in ch.evses.values()
        ]
        self._energy.start(now, evses)
        why = ", ".join(describe(s) for s in evidence)
        how = "following the home's load" if self._following(now) else "fixed power"
        log.warning("grid.outage", evidence=why, backup_w=self._backup_w)
        self._store.notify(
            Notification(
                kind="grid_outage",
                message=f"Grid outage detected ({why}): backing up the home from the car at "
                f"{self._backup_w:.0f} W ({how}), down to {self._o.floor_soc_percent:g} % SoC",
                at=now,
                level="warning",
                data={
                    "sources": [s.name for s in evidence],
                    "confirm_sources": self._o.confirm_sources,
                    "backup_w": self._backup_w,
                    "floor_soc_percent": self._o.floor_soc_percent,
                },
            )
        )

    def _restore(self, now: datetime) -> None:
        began = self._since
        self._outage = False
        self._since = now
        self._backup_w = 0.0
        self._follow_due = None
        self._store.set_grid_outage(False)
        self._wake()
        wh = self._energy.supplied_wh(now)
        minutes = (now - began).total_seconds() / 60.0
        log.info("grid.restored", energy_wh=round(wh), minutes=round(minutes, 1))
        self._store.notify(
            Notification(
                kind="grid_restored",
                message=f"Grid power is back after {duration(minutes)}; the car supplied "
                f"{wh / 1000.0:.2f} kWh to the home during the outage. Back to the plan.",
                at=now,
                data={
                    "energy_wh": round(wh, 1),
                    "duration_s": round((now - began).total_seconds()),
                    "outage_started": began.isoformat(),
                },
            )
        )

    def _home_fresh(self, now: datetime) -> bool:
        return self._home_at is not None and now - self._home_at <= self._silence

    def _following(self, now: datetime) -> bool:
        return bool(self._o.home_power_topic) and self._home_w is not None and self._home_fresh(now)

    def _load_target(self, now: datetime) -> float:
        if self._following(now) and self._home_w is not None:
            return self._home_w
        return self._o.fixed_backup_w

    def _follow(self, now: datetime) -> None:
        """Re-wake the controller when the load moved enough, at most every few seconds."""
        target = self._load_target(now)
        if abs(target - self._backup_w) <= self._o.follow_step_w:
            self._follow_due = None
            return
        last = self._followed_at or now
        due = last + timedelta(seconds=self._o.follow_min_interval_s)
        if now < due:
            self._follow_due = due
            return
        self._backup_w = target
        self._followed_at = now
        self._follow_due = None
        self._wake()

    def _tell_silence(self, now: datetime) -> None:
        for name, s in self._sources.items():
            if not s.silent(now):
                self._silent_told.discard(name)
                continue
            if name in self._silent_told:
                continue
            self._silent_told.add(name)
            state = "outage" if self._outage else "normal"
            secs = s.silence_after.total_seconds()
            log.warning("grid.source_silent", source=name)
            self._store.notify(
                Notification(
                    kind="grid_unknown",
                    message=f"{label(name)} has been silent for over {secs:g} s: the grid "
                    f"state is unknown (keeping '{state}')",
                    at=now,
                    level="warning",
                    data={"source": name, "state": state},
                )
            )
