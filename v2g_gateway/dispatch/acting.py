"""The controller's acting half: hand a decided step to the charger's sender, and learn from the
answer (capabilities, probes, forgotten transactions). A mixin of Controller, kept apart so each
module stays small; it reads and writes only the Controller's own attributes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from v2g_gateway.clock import Clock
from v2g_gateway.dispatch.core import Sent, Step
from v2g_gateway.dispatch.decision import Mode
from v2g_gateway.dispatch.gate import GatedProfile
from v2g_gateway.dispatch.outcomes import lesson
from v2g_gateway.dispatch.sender import ChargerSender, CommandSink, Job
from v2g_gateway.dispatch.situation import Drain, drain_sent
from v2g_gateway.dispatch.telling import Teller
from v2g_gateway.model import CommandResult
from v2g_gateway.soc import PlugSession
from v2g_gateway.store import Store


@dataclass(slots=True)
class Evse:
    """What the shell remembers about one EVSE between rounds."""

    session_id: str
    last: Sent | None = None  # accepted
    inflight: Sent | None = None  # handed to the sender, no answer yet
    drain: Drain = field(default_factory=Drain)
    forgotten_tx: str | None = None
    probing: bool = False
    told: set[str] = field(default_factory=set)
    reason: str = ""
    epoch: int = 0  # bumped by every lesson: commands decided before it are stale


class Acting:
    _store: Store
    _clock: Clock
    _commands: CommandSink
    _senders: dict[str, ChargerSender]
    _tell: Teller

    def wake(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ acting

    def _act(
        self,
        now: datetime,
        session: PlugSession,
        mem: Evse,
        out: Step,
        link: tuple[datetime | None, datetime | None],
    ) -> None:
        key = (session.charger_id, session.evse_id)
        mem.reason = out.decision.reason
        self._store.set_dispatch_state(
            key,
            {
                "mode": out.decision.mode.value,
                "limit_w": out.decision.limit_w,
                "reason": out.decision.reason,
            },
        )
        if out.decision.mode == Mode.IDLE:
            return
        sent = Sent(out.send, out.decision.mode, out.decision.reason)
        if out.clear:
            clearing = mem.inflight = Sent(None, Mode.RELEASE, out.decision.reason)

            def cleared(result: CommandResult) -> None:
                if mem.inflight is clearing:
                    mem.inflight = None
                self._cleared(now, session, mem, result, out)

            self._sender(session.charger_id).submit(Job(session.evse_id, None, cleared))
            return
        if out.send is None:
            if out.announce:
                self._tell.announce(now, session, out)
            if mem.last is not None and mem.last.mode != out.decision.mode:
                mem.last = Sent(mem.last.profile, out.decision.mode, out.decision.reason)
            return
        profile = out.send
        epoch = mem.epoch
        mem.inflight = sent
        mem.drain = drain_sent(mem.drain, profile)

        def wanted() -> bool:
            ch = self._store.charger_state(session.charger_id)
            same_link = ch is not None and (ch.booted_at, ch.connected_at) == link
            if mem.epoch == epoch and same_link:
                return True  # (a charger that reconnected or rebooted since: decide again)
            if mem.inflight is sent:
                mem.inflight = None  # decided before the last lesson: decide again
            self.wake()
            return False

        def done(result: CommandResult) -> None:
            if mem.inflight is sent:  # (a newer command may be queued behind this one)
                mem.inflight = None
            self._answered(now, session, mem, profile, result, out)

        self._sender(session.charger_id).submit(Job(session.evse_id, profile, done, wanted))

    def _sender(self, charger_id: str) -> ChargerSender:
        s = self._senders.get(charger_id)
        if s is None:
            s = self._senders[charger_id] = ChargerSender(charger_id, self._commands)
        return s

    def _answered(
        self,
        now: datetime,
        session: PlugSession,
        mem: Evse,
        profile: GatedProfile,
        result: CommandResult,
        out: Step,
    ) -> None:
        self._tell.log(
            now,
            session,
            "set_profile",
            profile.spec.periods[0].limit_w,
            out.decision.reason,
            result,
        )
        charger = self._store.charger_state(session.charger_id)
        cap = charger.discharge if charger is not None else None
        if cap is None:
            return
        learnt = lesson(
            result,
            profile,
            cap,
            probing=mem.probing,
            booted_at=charger.booted_at if charger else None,
            now=self._clock.now(),
        )
        if learnt.capability is not None and learnt.capability != cap:
            self._store.set_discharge_capability(session.charger_id, learnt.capability)
            mem.epoch += 1
        if learnt.probing is not None and learnt.probing != mem.probing:
            mem.probing = learnt.probing
            mem.epoch += 1
        if learnt.forget_transaction is not None:
            mem.forgotten_tx = learnt.forget_transaction
            mem.epoch += 1
        if learnt.notice is not None:
            kind, level, message = learnt.notice
            if kind not in mem.told:
                mem.told.add(kind)
                self._tell.notify(
                    kind,
                    message,
                    level=level,
                    charger_id=session.charger_id,
                    vehicle_id=session.vehicle_id,
                    data={"status": result.status.value, "detail": result.detail},
                )
        if result.ok:
            mem.last = Sent(profile, out.decision.mode, out.decision.reason)
            if out.announce:
                self._tell.announce(now, session, out)
        if learnt.probing is True or learnt.forget_transaction is not None:
            self.wake()  # try the other form at once, not at the next tick

    def _cleared(
        self, now: datetime, session: PlugSession, mem: Evse, result: CommandResult, out: Step
    ) -> None:
        self._tell.log(now, session, "clear", None, out.decision.reason, result)
        if result.ok or result.payload.get("status") == "Unknown":
            mem.last = Sent(None, Mode.RELEASE, out.decision.reason)
            if out.announce:
                self._tell.announce(now, session, out)
