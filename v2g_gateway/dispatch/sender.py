"""One sender per charger: commands to different chargers never wait for each other.

A round of dispatch hands each EVSE's command to its charger's sender and moves on. The sender
sends one at a time (OCPP allows one outgoing call in flight per charger) and keeps only the
newest command per EVSE: a command overtaken by a newer decision before it went out is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from v2g_gateway.dispatch.gate import GatedProfile
from v2g_gateway.model import CommandResult, CommandStatus

log = structlog.get_logger(__name__)


class CommandSink(Protocol):
    async def set_charging_profile(self, profile: GatedProfile) -> CommandResult: ...

    async def clear_charging_profile(
        self, charger_id: str, *, profile_id: int | None = None, evse_id: int | None = None
    ) -> CommandResult: ...


@dataclass(frozen=True, slots=True)
class Job:
    evse_id: int
    profile: GatedProfile | None  # None: clear the gateway's profiles on this EVSE
    done: Callable[[CommandResult], None]
    # Asked just before sending: a decision made before the charger's last answer taught
    # something (a refusal, a forgotten transaction) is dropped, not sent.
    wanted: Callable[[], bool] = lambda: True


class ChargerSender:
    def __init__(self, charger_id: str, commands: CommandSink) -> None:
        self.charger_id = charger_id
        self._commands = commands
        self._pending: dict[int, Job] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def submit(self, job: Job) -> None:
        self._pending[job.evse_id] = job  # a newer decision replaces one not yet sent
        self._ready.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"send-{self.charger_id}")

    @property
    def busy(self) -> bool:
        return bool(self._pending) or (self._task is not None and not self._task.done())

    async def _run(self) -> None:
        while self._pending:
            evse_id = next(iter(self._pending))
            job = self._pending.pop(evse_id)
            if not job.wanted():
                continue
            try:
                if job.profile is not None:
                    result = await self._commands.set_charging_profile(job.profile)
                else:
                    result = await self._commands.clear_charging_profile(
                        self.charger_id, evse_id=job.evse_id
                    )
            except Exception as exc:  # a command must never take dispatch down
                log.error("dispatch.send_failed", charger_id=self.charger_id, error=repr(exc))
                result = CommandResult(CommandStatus.ERROR, repr(exc))
            try:
                job.done(result)
            except Exception as exc:
                log.error("dispatch.result_failed", charger_id=self.charger_id, error=repr(exc))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
