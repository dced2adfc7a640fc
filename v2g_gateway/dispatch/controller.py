"""The async shell around the dispatch core: read the store, decide, send, learn.

Wakes on change or tick. Each round builds one frozen situation per plugged EVSE (guests
included), asks the pure core what to do, and hands the result to that charger's own sender, so
one charger's slow answer never delays another's command (outage backup included). Answers come
back as lessons (outcomes.py): capabilities learnt, a probe, a forgotten transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from v2g_gateway.bus import Changed
from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.dispatch import core
from v2g_gateway.dispatch.acting import Acting, Evse
from v2g_gateway.dispatch.core import Ahead
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.dispatch.sender import ChargerSender, CommandSink
from v2g_gateway.dispatch.site_view import HomeView, SiteView
from v2g_gateway.dispatch.situation import (
    Grid,
    Plan,
    Wishes,
    drain_for,
    situation,
)
from v2g_gateway.dispatch.telling import Teller
from v2g_gateway.model import ChargerState, UserPriceSlot
from v2g_gateway.soc import PlugSession
from v2g_gateway.store import Store

log = structlog.get_logger(__name__)

__all__ = ["CommandSink", "Controller", "PlannedPower", "PriceView"]


class PriceView(Protocol):
    def user_prices(self, start: datetime, end: datetime) -> Sequence[UserPriceSlot]: ...


@dataclass(frozen=True, slots=True)
class PlannedPower:
    power_w: float
    reason: str


# (plan subject, now) -> what the plan says for the slot containing now, or None without a plan.
# The subject is a vehicle id, or "guest:<session id>" for a guest car.
PlanLookup = Callable[[str, datetime], PlannedPower | None]
# (plan subject, start, end) -> the plan's later slots starting inside (start, end).
PlanAhead = Callable[[str, datetime, datetime], list[tuple[datetime, PlannedPower]]]
# now -> (outage?, backup power in W)
OutageView = Callable[[datetime], tuple[bool, float]]


# How long a charger that reconnected and said nothing yet is left alone: a charger that
# rebooted sends BootNotification first (and its lost transaction then ends), one that only
# lost the link may stay silent until its next heartbeat: it is controlled again after this.
SETTLE = timedelta(seconds=120)


def settling(charger: ChargerState, now: datetime) -> bool:
    if charger.spoken or charger.connected_at is None:
        return False
    return now - charger.connected_at < SETTLE


def subject(session: PlugSession) -> str:
    return session.vehicle_id or f"guest:{session.session_id}"


class Controller(Acting):
    def __init__(
        self,
        cfg: Config,
        store: Store,
        policy: Policy,
        prices: PriceView,
        commands: CommandSink,
        clock: Clock,
        *,
        plan_lookup: PlanLookup | None = None,
        plan_round: Callable[[datetime], None] | None = None,
        plan_ahead: PlanAhead | None = None,
        outage_view: OutageView | None = None,
        home: HomeView | None = None,
    ) -> None:
        self._cfg = cfg
        self._store = store
        self._policy = policy
        self._prices = prices
        self._commands = commands
        self._clock = clock
        self._plan_lookup = plan_lookup
        self._plan_round = plan_round
        self._plan_ahead = plan_ahead
        self._outage_view = outage_view
        self._evses: dict[tuple[str, int], Evse] = {}
        self._senders: dict[str, ChargerSender] = {}
        self._wake = asyncio.Event()
        self._tell = Teller(cfg, store, clock.now, self._price_at)
        self._site = SiteView(cfg, policy, home, clock.now)
        self.steps = 0

    # ------------------------------------------------------------------ loop

    def on_grid(self, grid_w: float) -> None:
        """A grid-power reading: a breach of the connection's limit is acted on at once."""
        if self._site.wants_wake(grid_w, self._clock.monotonic()):
            self.wake()

    def wake(self) -> None:
        """Ask for a decision now (outage, override): no waiting for the next tick."""
        self._wake.set()

    async def run(self) -> None:
        changes = self._store.changes.subscribe()
        watcher = asyncio.create_task(self._watch(changes), name="dispatch-watch")
        try:
            while True:
                await self.step()
                tick = asyncio.create_task(self._clock.sleep(self._cfg.gateway.tick_seconds))
                woke = asyncio.create_task(self._wake.wait())
                try:
                    await asyncio.wait({tick, woke}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    tick.cancel()
                    woke.cancel()
                self._wake.clear()
        finally:
            watcher.cancel()
            for s in self._senders.values():
                await s.close()
            self._store.changes.unsubscribe(changes)

    async def _watch(self, changes: asyncio.Queue[Changed]) -> None:
        relevant = {
            "vehicle",
            "boot",
            "prices",
            "override",
            "preferences",
            "grid",
            "plan",
            "charger",
        }
        while True:
            c = await changes.get()
            if c.kind == "boot" and c.key is not None:
                # A rebooted charger forgot our profiles (and its transactions: the store
                # ended its plug sessions).
                for key in [k for k in self._evses if k[0] == c.key]:
                    del self._evses[key]
            if c.kind in relevant:
                self._wake.set()

    # ------------------------------------------------------------------ one round

    async def step(self) -> None:
        now, mono = self._clock.now(), self._clock.monotonic()
        self.steps += 1
        self._tell.check_clock(now, mono)
        for o in self._store.expire_overrides(now):
            self._tell.notify(
                "override_expired",
                f"{o.kind.value.replace('_', ' ')} for {o.vehicle_id} expired; back to the plan",
                vehicle_id=o.vehicle_id,
                data={"override_id": o.override_id},
            )
        outage, backup_w = self._outage_view(now) if self._outage_view else (False, 0.0)
        grid = Grid(outage, backup_w)
        price = self._price_at(now)
        seen: set[tuple[str, int]] = set()
        plugged = [
            (s, ch)
            for s in self._store.open_sessions()
            if (ch := self._store.charger_state(s.charger_id)) is not None and ch.online
        ]
        self._site.begin(mono, plugged, self._evses)
        if self._plan_round is not None and plugged:
            try:
                self._plan_round(now)
            except Exception as exc:  # each EVSE then asks for the plan itself
                log.exception("dispatch.plan_round_failed", error=repr(exc))
        for i, (session, _) in enumerate(plugged):
            if i:
                # Let chargers' messages through between EVSEs (a round with many cars is
                # long); each one is then read fresh from the store.
                await asyncio.sleep(0)
            charger = self._store.charger_state(session.charger_id)
            if charger is None or not charger.online:
                continue
            key = (session.charger_id, session.evse_id)
            seen.add(key)
            if settling(charger, now):
                continue  # a charger that just reconnected may have rebooted: it says so first
            mem = self._evses.get(key)
            if mem is None or mem.session_id != session.session_id:
                mem = self._evses[key] = Evse(session.session_id)
            try:
                self._round_one(now, mono, session, charger, mem, price, grid)
            except Exception as exc:  # one EVSE's trouble must not stop dispatch for the others
                log.exception(
                    "dispatch.round_failed", charger_id=session.charger_id, error=repr(exc)
                )
        for key in [k for k in self._evses if k not in seen]:
            del self._evses[key]  # unplugged (or offline): nothing of ours is in force there

    def _round_one(
        self,
        now: datetime,
        mono: float,
        session: PlugSession,
        charger: ChargerState,
        mem: Evse,
        price: UserPriceSlot | None,
        grid: Grid,
    ) -> None:
        if charger.capabilities.get("smart_charging_enabled") is False:
            # Nothing to control until it is switched on (the user was told how, once).
            why = "smart charging is off on the charger: nothing to control"
            key = (session.charger_id, session.evse_id)
            self._store.set_dispatch_state(key, {"mode": "none", "limit_w": None, "reason": why})
            return
        vid = session.vehicle_id
        vehicle = self._store.vehicle_view(vid) if vid else None
        ev = charger.evses.get(session.evse_id)
        if mem.forgotten_tx is not None and (ev is None or ev.transaction_id != mem.forgotten_tx):
            mem.forgotten_tx = None  # a new transaction: TxProfile again
        in_force = mem.last.profile if mem.last is not None else None
        course = in_force.spec.course(now) if in_force is not None else ()
        mem.drain = drain_for(mem.drain, session, course[0][1] if course else None)
        override = None
        if vid is not None:
            override = next(
                (o for o in self._store.active_overrides(now) if o.vehicle_id == vid), None
            )
        key = (session.charger_id, session.evse_id)
        max_c, max_d = self._cfg.power_limits(vid or "", session.charger_id)
        min_c = charger.capabilities.get("min_power_w")
        plan = self._site.follow(
            key,
            vid,
            self._plan(subject(session), now),
            mono,
            (max_c, max_d, float(min_c) if isinstance(min_c, int | float) else 0.0),
        )
        sit = situation(
            self._cfg,
            now,
            mono,
            session,
            vehicle,
            charger,
            self._wishes(vid),
            price,
            plan,
            site_cap=self._site.cap(key),
            override=override,
            grid=grid,
            last=mem.inflight or mem.last,
            commanded_w=mem.drain.w,
            tx_forgotten=mem.forgotten_tx is not None,
            probing=mem.probing,
        )
        self._act(now, session, mem, core.step(sit), (charger.booted_at, charger.connected_at))

    def _wishes(self, vehicle_id: str | None) -> Wishes:
        threshold = self._policy.preference("discharge_above_per_kwh")
        reserve = self._policy.reserve_percent(vehicle_id) if vehicle_id else 100.0
        return Wishes(
            reserve_percent=reserve,
            v2g_enabled=bool(self._policy.preference("v2g_enabled")),
            discharge_above_per_kwh=None if threshold is None else float(threshold),
        )

    def _plan(self, key: str, now: datetime) -> Plan:
        planned = self._plan_lookup(key, now) if self._plan_lookup else None
        if planned is None:
            return Plan()
        ahead: list[Ahead] = []
        if self._plan_ahead is not None:
            validity = timedelta(minutes=self._cfg.preferences.profile_validity_minutes)
            for at, p in self._plan_ahead(key, now, now + validity):
                ahead.append(Ahead(at, self._price_at(at), p.power_w, p.reason))
        return Plan(planned.power_w, planned.reason, tuple(ahead))

    def _price_at(self, at: datetime) -> UserPriceSlot | None:
        try:
            slots = self._prices.user_prices(at, at + timedelta(minutes=1))
        except Exception as exc:  # a price source must never stop dispatch
            log.warning("dispatch.prices_unavailable", error=str(exc))
            return None
        return next((s for s in slots if s.start <= at < s.end), None)
