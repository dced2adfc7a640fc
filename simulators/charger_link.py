"""The simulated charger's link to its CSMS: connect, boot, heartbeat, and the send queue.

Split from charger.py. Reconnects with jittered backoff; TransactionEvents that cannot go out
are kept (offline = true) and replayed in order after the next boot, other messages are dropped
while offline, as chargers do. `down()` pulls the cable until `up()`.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import OCPPError
from ocpp.v201 import call
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

from simulators.charger21 import session_for, subprotocol
from simulators.charger_session import Session

if TYPE_CHECKING:
    from simulators.charger import SimulatedCharger

MAX_OFFLINE_QUEUE = 2000


@dataclass
class _Out:
    payload: Any
    done: asyncio.Future[Any] | None


class Link:
    def __init__(self, sim: SimulatedCharger) -> None:
        self._sim = sim
        self.connected = asyncio.Event()
        self.booted = asyncio.Event()
        self.disconnected = asyncio.Event()  # set whenever a session has ended
        self.sent_messages = 0
        self.latencies_s: list[float] = []  # round trip of every CALL this charger made
        self.connects = 0
        self.session: Session | None = None
        self.boot_reason = "PowerUp"
        self.restart_transactions = False  # after a power cut: start them anew once back
        self.boot_answers: list[str] = []  # the status of every BootNotification answer
        self._queue: deque[_Out] = deque()
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()  # set while connected with nothing left to send
        self._up = asyncio.Event()
        self._up.set()
        self._log = sim.log

    async def run(self, physics: asyncio.Task[None]) -> None:
        """Stay connected until cancelled; a crashed physics task is surfaced."""
        sim = self._sim
        attempt = 0
        while True:
            await self._up.wait()
            try:
                async with connect(
                    sim.url,
                    subprotocols=[Subprotocol(subprotocol(sim.ocpp_version))],
                    additional_headers=self._auth_headers(),
                    ssl=sim.ssl,
                    proxy=None,
                    open_timeout=10,
                ) as ws:
                    self.connects += 1
                    if await self._session_run(ws):
                        attempt = 0
            except (OSError, WebSocketException, TimeoutError) as exc:
                self._log.info("sim_link_down", error=f"{type(exc).__name__}: {exc}")
            finally:
                self.session = None
                sim.book.went_offline()
                self.idle.clear()
                self.connected.clear()
                self.booted.clear()
                self.disconnected.set()
            if physics.done():
                physics.result()  # a crashed physics loop is a bug: surface it
            delay = min(sim.reconnect_max_s, sim.reconnect_min_s * 2**attempt)
            attempt = min(attempt + 1, 16)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    @property
    def queued(self) -> int:
        """Messages waiting to go out (TransactionEvents held while offline among them)."""
        return len(self._queue)

    def pending(self) -> list[Any]:
        """The payloads waiting to go out, oldest first."""
        return [out.payload for out in self._queue]

    async def down(self) -> None:
        self._up.clear()
        if self.session is not None:
            await self.session.connection.close()

    def up(self) -> None:
        self._up.set()

    async def reset(self, *, power_cut: bool = False) -> None:
        self.boot_reason = "PowerUp" if power_cut else "RemoteReset"
        self.restart_transactions = power_cut
        if self.session is not None:
            await self.session.connection.close()

    def _auth_headers(self) -> dict[str, str]:
        sim = self._sim
        if sim.password is None:
            return {}
        token = base64.b64encode(f"{sim.charger_id}:{sim.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def _session_run(self, ws: ClientConnection) -> bool:
        """One connection's life; True when it got as far as an accepted boot."""
        cp = session_for(self._sim, ws)
        self.session = cp
        self.disconnected.clear()
        self.connected.set()
        reader = asyncio.create_task(cp.start(), name=f"sim-reader-{self._sim.charger_id}")
        worker = asyncio.create_task(self._online(cp), name=f"sim-online-{self._sim.charger_id}")
        try:
            await asyncio.wait({reader, worker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, worker):
                task.cancel()
            results = await asyncio.gather(reader, worker, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(
                result, WebSocketException | OSError | TimeoutError
            ):
                self._log.warning("sim_session_error", error=repr(result))
        return self.booted.is_set()

    async def _online(self, cp: Session) -> None:
        interval = await self._boot(cp)
        self._sim.book.back_online()
        self.boot_reason = "Unknown"
        self.booted.set()
        for evse in self._sim.evse_states().values():
            await self._call(cp, self._sim.messages.status(evse))
        if self.restart_transactions:
            # Back from a power cut: a car still plugged in gets a new transaction.
            self.restart_transactions = False
            for evse in self._sim.evse_states().values():
                if evse.ev is not None and evse.tx_id is None:
                    self._sim.start_transaction(evse, evse.id_token or "car-token", "EVDetected")
        await asyncio.gather(self._sender(cp), self._heartbeat(cp, interval))

    async def _boot(self, cp: Session) -> int:
        while True:
            sim = self._sim
            res = await self._call(cp, sim.messages.boot(self.boot_reason))
            self.boot_answers.append(res.status)
            if res.status == "Accepted":
                if res.interval > 0:
                    sim.device.set("OCPPCommCtrlr", "HeartbeatInterval", str(res.interval))
                return int(sim.device.value("OCPPCommCtrlr", "HeartbeatInterval"))
            self._log.info("sim_boot_not_accepted", status=res.status, interval=res.interval)
            await sim.clock.sleep(max(1, res.interval or 10))

    async def _heartbeat(self, cp: Session, interval: int) -> None:
        while True:
            await self._sim.clock.sleep(max(1, interval))
            await self._call(cp, call.Heartbeat())
            interval = int(self._sim.device.value("OCPPCommCtrlr", "HeartbeatInterval"))

    async def _call(self, cp: Session, payload: Any) -> Any:
        started = time.perf_counter()
        try:
            result = await cp.call(
                payload, suppress=False, skip_schema_validation=not self._sim.validate_frames
            )
        except TimeoutError:
            # No answer: treat the link as dead so the reconnect logic takes over.
            await cp.connection.close()
            raise
        self.sent_messages += 1
        self.latencies_s.append(time.perf_counter() - started)
        return result

    async def _sender(self, cp: Session) -> None:
        """Send queued messages in order; a TransactionEvent survives a lost link."""
        while True:
            while not self._queue:
                self._wake.clear()
                self.idle.set()
                await self._wake.wait()
            self.idle.clear()
            out = self._queue[0]
            try:
                result = await self._call(cp, out.payload)
            except OCPPError as exc:
                self._queue.popleft()
                self._log.warning(
                    "sim_call_error", action=type(out.payload).__name__, error=str(exc)
                )
                _resolve(out.done, None)
                continue
            except BaseException:
                if isinstance(out.payload, call.TransactionEvent):
                    self._queue[0] = _Out(replace(out.payload, offline=True), None)
                else:
                    self._queue.popleft()
                _resolve(out.done, None)
                raise
            self._queue.popleft()
            _resolve(out.done, result)

    def send(self, payload: Any) -> asyncio.Future[Any]:
        """Queue a message; its future resolves with the answer, or None if dropped/held."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        online = self.booted.is_set()
        if isinstance(payload, call.TransactionEvent):
            if not online:
                payload = replace(payload, offline=True)
                done.set_result(None)
            self._queue.append(_Out(payload, None if done.done() else done))
            if len(self._queue) > MAX_OFFLINE_QUEUE:
                self._drop_oldest_update()
        elif online:
            self._queue.append(_Out(payload, done))
        else:
            done.set_result(None)  # chargers keep only transaction messages while offline
        if self._queue:
            self.idle.clear()
        self._wake.set()
        return done

    def _drop_oldest_update(self) -> None:
        for i, out in enumerate(self._queue):
            if (
                isinstance(out.payload, call.TransactionEvent)
                and out.payload.event_type == "Updated"
            ):
                del self._queue[i]
                return


def _resolve(done: asyncio.Future[Any] | None, value: Any) -> None:
    if done is not None and not done.done():
        done.set_result(value)
