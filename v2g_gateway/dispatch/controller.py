"""Turns decisions into charger commands: wakes on change or tick, never resends the same intent.

Every profile it sends is Absolute, starts now and expires within the configured validity, and is
renewed while the decision holds, so a gateway that dies leaves no car discharging for long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from v2g_gateway.bus import Changed
from v2g_gateway.clock import Clock
from v2g_gateway.config import Config, VehicleSection
from v2g_gateway.dispatch.decision import Decision, Inputs, Mode, decide
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.model import (
    ChargerState,
    ChargingProfileSpec,
    CommandResult,
    CommandStatus,
    Notification,
    Override,
    ProfilePeriod,
    ProfilePurpose,
    UserPriceSlot,
    VehicleState,
)
from v2g_gateway.store import Store

log = structlog.get_logger(__name__)

TX_PROFILE_ID_BASE = 2000
TX_DEFAULT_PROFILE_ID_BASE = 1000


class CommandSink(Protocol):
    async def set_charging_profile(self, spec: ChargingProfileSpec) -> CommandResult: ...

    async def clear_charging_profile(
        self, charger_id: str, *, profile_id: int | None = None, evse_id: int | None = None
    ) -> CommandResult: ...


class PriceView(Protocol):
    def user_prices(self, start: datetime, end: datetime) -> Sequence[UserPriceSlot]: ...


@dataclass(frozen=True, slots=True)
class PlannedPower:
    power_w: float
    reason: str


# (vehicle_id, now) -> what the plan says for the slot containing now, or None without a plan.
PlanLookup = Callable[[str, datetime], PlannedPower | None]
# (vehicle_id, start, end) -> the plan's later slots starting inside (start, end).
PlanAhead = Callable[[str, datetime, datetime], list[tuple[datetime, PlannedPower]]]
# now -> (outage?, backup power in W)
OutageView = Callable[[datetime], tuple[bool, float]]


@dataclass(slots=True)
class _Sent:
    spec: ChargingProfileSpec | None
    mode: Mode
    reason: str


_PLANNED = (Mode.CHARGE, Mode.HOLD, Mode.DISCHARGE)


def _close(old: float, new: float) -> bool:
    """A limit this near the one in force is not worth a new profile (each is a step the
    charger ramps to); plans are re-made often and their averages move by a few watts."""
    same_sign = (old > 0) == (new > 0) and (old < 0) == (new < 0)
    return same_sign and abs(old - new) <= max(100.0, 0.05 * abs(old))


def _same_course(new: ChargingProfileSpec, old: ChargingProfileSpec, now: datetime) -> bool:
    """Would `new` make the charger do what `old` already makes it do, for as long as `old`
    lasts? Compared in absolute time, so a renewal that only moves the start is the same."""
    if (new.charger_id, new.evse_id, new.purpose, new.transaction_id) != (
        old.charger_id,
        old.evse_id,
        old.purpose,
        old.transaction_id,
    ):
        return False
    a = [p for p in new.course(now) if p[0] < old.valid_to]
    b = list(old.course(now))
    return len(a) == len(b) and all(
        ta == tb and _close(wb, wa) for (ta, wa), (tb, wb) in zip(a, b, strict=True)
    )


class Controller:
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
        plan_ahead: PlanAhead | None = None,
        outage_view: OutageView | None = None,
    ) -> None:
        self._cfg = cfg
        self._store = store
        self._policy = policy
        self._prices = prices
        self._commands = commands
        self._clock = clock
        self._plan_lookup = plan_lookup
        self._plan_ahead = plan_ahead
        self._outage_view = outage_view
        self._sent: dict[tuple[str, int], _Sent] = {}
        self._price: UserPriceSlot | None = None  # the slot of the decision being applied
        self._refused_told: set[str] = set()
        self._wake = asyncio.Event()
        self.steps = 0

    # ------------------------------------------------------------------ loop

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
                # A rebooted charger forgot our profiles: re-apply on the next step.
                for key, sent in list(self._sent.items()):
                    if key[0] == c.key:
                        self._sent[key] = _Sent(None, sent.mode, sent.reason)
            if c.kind in relevant:
                self._wake.set()

    # ------------------------------------------------------------------ one decision round

    async def step(self) -> None:
        now = self._clock.now()
        self.steps += 1
        for o in self._store.expire_overrides(now):
            self._store.notify(
                Notification(
                    kind="override_expired",
                    message=f"{o.kind.value.replace('_', ' ')} for {o.vehicle_id} expired; "
                    "back to the plan",
                    at=now,
                    vehicle_id=o.vehicle_id,
                    data={"override_id": o.override_id},
                )
            )
        outage, backup_w = self._outage_view(now) if self._outage_view else (False, 0.0)
        for i, vcfg in enumerate(self._cfg.vehicles):
            if i:
                # Let chargers' messages through between vehicles (a round with many cars is
                # long); each vehicle is then read fresh from the store.
                await asyncio.sleep(0)
            v = self._store.vehicle_view(vcfg.id)
            if v is None or v.charger_id is None or v.evse_id is None:
                continue
            charger = self._store.charger_state(v.charger_id)
            if charger is None or not charger.online:
                continue
            override = next(
                (o for o in self._store.active_overrides(now) if o.vehicle_id == vcfg.id), None
            )
            inputs = self._inputs(now, override, vcfg, v, charger, outage, backup_w)
            self._price = inputs.price
            decision = decide(inputs)
            await self._apply(now, vcfg, v, charger, decision, self._later(inputs, decision))

    def _inputs(
        self,
        now: datetime,
        override: Override | None,
        vcfg: VehicleSection,
        v: VehicleState,
        charger: ChargerState,
        outage: bool,
        backup_w: float,
    ) -> Inputs:
        ccfg = self._cfg.charger(charger.charger_id)
        max_charge, max_discharge = self._cfg.power_limits(vcfg.id, charger.charger_id)
        v2g = bool(self._policy.preference("v2g_enabled"))
        can_discharge = max_discharge > 0 and charger.supports_discharge is not False
        if not outage:
            can_discharge = can_discharge and v2g
        price = self._price_now(now)
        planned = self._plan_lookup(vcfg.id, now) if self._plan_lookup else None
        threshold = self._policy.preference("discharge_above_per_kwh")
        return Inputs(
            now=now,
            vehicle=v,
            capacity_kwh=(v.capacity_wh / 1000.0) if v.capacity_wh else vcfg.battery_kwh,
            reserve_percent=self._policy.reserve_percent(vcfg.id),
            max_soc_percent=vcfg.max_soc_percent,
            max_charge_w=max_charge,
            max_discharge_w=max_discharge,
            can_discharge=can_discharge,
            soc_max_age=timedelta(minutes=self._cfg.preferences.soc_max_age_minutes),
            price=price,
            discharge_above_per_kwh=None if threshold is None else float(threshold),
            planned_w=None if planned is None else planned.power_w,
            plan_reason=None if planned is None else planned.reason,
            override=override,
            outage=outage,
            min_discharge_w=ccfg.min_discharge_w if ccfg else 0.0,
            outage_floor_percent=self._cfg.outage.floor_soc_percent,
            backup_w=backup_w,
        )

    def _later(self, x: Inputs, d: Decision) -> list[tuple[datetime, float]]:
        """The plan's next slots inside this profile's validity, each through the safety gate,
        so the charger switches on the slot boundary itself (several periods in one profile)."""
        if self._plan_ahead is None or x.planned_w is None or d.mode not in _PLANNED:
            return []
        validity = timedelta(minutes=self._cfg.preferences.profile_validity_minutes)
        out: list[tuple[datetime, float]] = []
        last = d.limit_w
        for at, planned in self._plan_ahead(x.vehicle.vehicle_id, x.now, x.now + validity):
            later = decide(
                replace(
                    x,
                    now=at,
                    price=self._price_now(at),
                    planned_w=planned.power_w,
                    plan_reason=planned.reason,
                )
            )
            if later.mode not in _PLANNED:
                break  # anything else (prices unknown at that time, ...) waits for its own step
            if later.limit_w != last:
                out.append((at, later.limit_w))
                last = later.limit_w
        return out

    def _price_now(self, now: datetime) -> UserPriceSlot | None:
        try:
            slots = self._prices.user_prices(now, now + timedelta(minutes=1))
        except Exception as exc:  # a price source must never stop dispatch
            log.warning("dispatch.prices_unavailable", error=str(exc))
            return None
        return next((s for s in slots if s.start <= now < s.end), None)

    # ------------------------------------------------------------------ commands

    def _spec(
        self,
        now: datetime,
        v: VehicleState,
        charger: ChargerState,
        limit_w: float,
        later: list[tuple[datetime, float]],
    ) -> ChargingProfileSpec:
        assert v.evse_id is not None
        ev = charger.evses.get(v.evse_id)
        tx = ev.transaction_id if ev else None
        validity = timedelta(minutes=self._cfg.preferences.profile_validity_minutes)
        start = now.replace(microsecond=0)
        return ChargingProfileSpec(
            charger_id=charger.charger_id,
            evse_id=v.evse_id,
            profile_id=(TX_PROFILE_ID_BASE if tx else TX_DEFAULT_PROFILE_ID_BASE) + v.evse_id,
            purpose=ProfilePurpose.TX_PROFILE if tx else ProfilePurpose.TX_DEFAULT_PROFILE,
            transaction_id=tx,
            start=start,
            valid_to=start + validity,
            periods=(
                ProfilePeriod(0, round(limit_w)),
                *(
                    ProfilePeriod(int((at - start).total_seconds()), round(w))
                    for at, w in later
                    if start < at < start + validity
                ),
            ),
        )

    async def _apply(
        self,
        now: datetime,
        vcfg: VehicleSection,
        v: VehicleState,
        charger: ChargerState,
        d: Decision,
        later: list[tuple[datetime, float]],
    ) -> None:
        assert v.evse_id is not None
        key = (charger.charger_id, v.evse_id)
        last = self._sent.get(key)
        if d.mode == Mode.IDLE:
            self._sent.pop(key, None)
            return
        if d.mode == Mode.RELEASE:
            if last is None or last.mode != Mode.RELEASE:
                result = await self._commands.clear_charging_profile(
                    charger.charger_id, evse_id=v.evse_id
                )
                self._log(now, vcfg.id, charger, v.evse_id, "clear", None, d.reason, result)
                self._sent[key] = _Sent(None, d.mode, d.reason)
            return
        spec = self._spec(now, v, charger, d.limit_w, later)
        validity = timedelta(minutes=self._cfg.preferences.profile_validity_minutes)
        if (
            last is not None
            and last.spec is not None
            and _same_course(spec, last.spec, now)
            and last.spec.valid_to - now > validity / 3
        ):
            # The charger already does this (a later period of the profile may just have
            # taken over); resending would cause power spikes. Only the news is due.
            self._announce(now, vcfg.id, charger.charger_id, last.mode, d)
            last.mode = d.mode
            return
        result = await self._commands.set_charging_profile(spec)
        self._log(now, vcfg.id, charger, v.evse_id, "set_profile", d.limit_w, d.reason, result)
        if result.ok:
            self._sent[key] = _Sent(spec, d.mode, d.reason)
            self._announce(now, vcfg.id, charger.charger_id, last.mode if last else None, d)
            return
        self._sent.pop(key, None)
        if (
            d.limit_w < 0
            and result.status
            in (
                CommandStatus.REJECTED,
                CommandStatus.NOT_IMPLEMENTED,
            )
            and charger.charger_id not in self._refused_told
        ):
            self._refused_told.add(charger.charger_id)
            self._store.notify(
                Notification(
                    kind="charger_refused_discharge",
                    message=f"charger {charger.charger_id} refused to discharge "
                    f"({result.status.value}); falling back to charge-only control",
                    at=now,
                    level="warning",
                    charger_id=charger.charger_id,
                    vehicle_id=vcfg.id,
                    data={"status": result.status.value, "detail": result.detail},
                )
            )

    def _announce(
        self, now: datetime, vehicle_id: str, charger_id: str, before: Mode | None, d: Decision
    ) -> None:
        active = (Mode.DISCHARGE, Mode.BACKUP)
        if d.mode in active and before != d.mode:
            kind, verb = "dispatch_started", "discharging"
        elif d.mode not in active and before in active:
            kind, verb = "dispatch_stopped", "stopped discharging"
        else:
            return
        data: dict[str, object] = {"mode": d.mode.value, "limit_w": d.limit_w, "reason": d.reason}
        message = f"{vehicle_id} {verb}: {d.reason}"
        price = self._price
        if d.mode == Mode.DISCHARGE and price is not None:
            # What an hour at this power earns at the current export price.
            per_hour = -d.limit_w / 1000.0 * price.export_per_kwh
            data |= {
                "export_per_kwh": price.export_per_kwh,
                "expected_per_hour": round(per_hour, 3),
            }
            message += f" (about {per_hour:.2f} {self._cfg.prices.currency} an hour)"
        self._store.notify(
            Notification(
                kind=kind,
                message=message,
                at=now,
                charger_id=charger_id,
                vehicle_id=vehicle_id,
                data=data,
            )
        )

    def _log(
        self,
        now: datetime,
        vehicle_id: str,
        charger: ChargerState,
        evse_id: int,
        action: str,
        limit_w: float | None,
        reason: str,
        result: CommandResult,
    ) -> None:
        log.info(
            "dispatch.command",
            charger_id=charger.charger_id,
            vehicle_id=vehicle_id,
            action=action,
            limit_w=limit_w,
            reason=reason,
            result=result.status.value,
        )
        self._store.log_dispatch(
            now,
            action,
            reason,
            charger_id=charger.charger_id,
            evse_id=evse_id,
            vehicle_id=vehicle_id,
            limit_w=limit_w,
            result=result.status.value
            if result.detail is None
            else f"{result.status.value}: {result.detail}",
        )
