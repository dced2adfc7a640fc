"""The world the safety property test drives: a clock, a car's true battery, a charger that obeys
(or refuses) profiles, and a synchronous shell that does what the controller does per EVSE, with
the same functions (situation, step, drain, lesson)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from v2g_gateway.config import Config
from v2g_gateway.dispatch.core import Sent, Step, step
from v2g_gateway.dispatch.gate import GatedProfile
from v2g_gateway.dispatch.outcomes import lesson
from v2g_gateway.dispatch.situation import (
    Drain,
    Grid,
    Plan,
    Wishes,
    drain_for,
    drain_sent,
    situation,
)
from v2g_gateway.model import (
    ChargingProfileSpec,
    CommandResult,
    CommandStatus,
    Override,
    UserPriceSlot,
)
from v2g_gateway.store import Store

CAPACITY_KWH = 60.0
ETA = 0.95
MAX_CHARGE_W = 11000.0


class SyncClock:
    """A Clock a synchronous state machine can move: `advance` is time, `step_wall` a step."""

    speed = 1.0

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._mono = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("nothing sleeps in the property test")

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def step_wall(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


def power_at(spec: ChargingProfileSpec | None, at: datetime) -> float:
    """What a charger that obeys does at `at` (nothing after the profile expires)."""
    if spec is None or not spec.start <= at < spec.valid_to:
        return 0.0
    limit = 0.0
    for p in spec.periods:
        if spec.start + timedelta(seconds=p.start_offset_s) <= at:
            limit = p.limit_w
    return limit


def integrate(
    soc: float, spec: ChargingProfileSpec | None, start: datetime, seconds: float
) -> tuple[float, float]:
    """The true SoC after `seconds` under `spec` (second by second), and the lowest on the way."""
    low = soc
    t = 0.0
    while t < seconds:
        dt = min(1.0, seconds - t)
        w = power_at(spec, start + timedelta(seconds=t))
        energy = w * ETA if w > 0 else w / ETA
        soc = min(100.0, max(0.0, soc + energy * dt / 3600.0 / (CAPACITY_KWH * 10.0)))
        low = min(low, soc)
        t += dt
    return soc, low


@dataclass
class Car:
    soc: float
    plugged_mono: float
    history: list[tuple[float, float]] = field(default_factory=list)  # (monotonic, true SoC)

    def at(self, mono: float) -> float | None:
        """The true SoC at an earlier time of this plug-in (None before it)."""
        if mono < self.plugged_mono:
            return None
        best = None
        for t, s in self.history:
            if t <= mono:
                best = s
        return best


@dataclass
class ChargerModel:
    """Obeys accepted profiles; refuses discharge as its firmware says."""

    behaviour: str  # "accept", "unclear" (Rejected, no reason), "explicit" (names the limit)
    spec: ChargingProfileSpec | None = None
    known_tx: str | None = None

    def answer(self, p: GatedProfile) -> CommandResult:
        spec = p.spec
        if spec.transaction_id is not None and spec.transaction_id != self.known_tx:
            info = {"reasonCode": "TxNotFound"}
            return CommandResult(
                CommandStatus.REJECTED,
                "Rejected: TxNotFound",
                {"status": "Rejected", "statusInfo": info},
            )
        if p.discharges and self.behaviour == "unclear":
            return CommandResult(CommandStatus.REJECTED, "Rejected", {"status": "Rejected"})
        if p.discharges and self.behaviour == "explicit":
            info = {"reasonCode": "InvalidValue", "additionalInfo": "negative limit"}
            return CommandResult(
                CommandStatus.REJECTED,
                "Rejected: InvalidValue",
                {"status": "Rejected", "statusInfo": info},
            )
        self.spec = spec
        return CommandResult(CommandStatus.ACCEPTED, None, {"status": "Accepted"})


@dataclass
class Shell:
    """What the controller remembers per EVSE, and one dispatch round for it."""

    last: Sent | None = None
    drain: Drain = field(default_factory=Drain)
    probing: bool = False
    forgotten_tx: str | None = None
    session_id: str | None = None

    def round(
        self,
        cfg: Config,
        store: Store,
        clock: SyncClock,
        charger: ChargerModel,
        price: UserPriceSlot | None,
        override: Override | None,
        outage: bool,
        reserve: float,
    ) -> tuple[Step, Sent | None]:
        now, mono = clock.now(), clock.monotonic()
        sessions = store.open_sessions()
        assert len(sessions) <= 1
        if not sessions:
            raise LookupError("nobody plugged in")
        session = sessions[0]
        if session.session_id != self.session_id:
            self.last, self.drain, self.probing, self.forgotten_tx = None, Drain(), False, None
            self.session_id = session.session_id
        ch = store.charger_state("garage")
        assert ch is not None
        ev = ch.evses.get(1)
        if self.forgotten_tx is not None and (ev is None or ev.transaction_id != self.forgotten_tx):
            self.forgotten_tx = None
        in_force = self.last.profile if self.last is not None else None
        self.drain = drain_for(
            self.drain, session, power_at(in_force.spec if in_force else None, now)
        )
        vehicle = store.vehicle_view(session.vehicle_id) if session.vehicle_id else None
        sit = situation(
            cfg,
            now,
            mono,
            session,
            vehicle,
            ch,
            Wishes(reserve, True, 0.30),
            price,
            Plan(),
            override=override,
            grid=Grid(outage, 3000.0),
            last=self.last,
            commanded_w=self.drain.w,
            tx_forgotten=self.forgotten_tx is not None,
            probing=self.probing,
        )
        out = step(sit)
        before = self.last
        if out.send is not None:
            self.drain = drain_sent(self.drain, out.send)
            result = charger.answer(out.send)
            learnt = lesson(
                result,
                out.send,
                ch.discharge,
                probing=self.probing,
                booted_at=ch.booted_at,
                now=now,
            )
            if learnt.capability is not None:
                store.set_discharge_capability("garage", learnt.capability)
            if learnt.probing is not None:
                self.probing = learnt.probing
            if learnt.forget_transaction is not None:
                self.forgotten_tx = learnt.forget_transaction
            if result.ok:
                self.last = Sent(out.send, out.decision.mode, out.decision.reason)
        return out, before
