"""The setup page's "test discharge": a short, small discharge-now override for the car at one
charger, which dispatch and its safety gate handle like any other, and a clear verdict.

The verdict comes from what actually happened: the gate's decision and the charger's answer in
the dispatch log, a refusal notification, and the charger's meter showing power flowing out.
The override is cancelled as soon as the verdict is in (back to automatic), and it expires on its
own in TEST_MINUTES whatever happens to the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from v2g_gateway.dispatch.policy import PolicyError
from v2g_gateway.model import Notification, OverrideKind
from v2g_gateway.web.views import IDLE_W, Sources

TEST_MINUTES = 5.0
TEST_POWER_W = 1000.0  # small: a test, not a dispatch


@dataclass(slots=True)
class TestResult:
    charger_id: str
    vehicle_id: str | None
    started_at: datetime
    state: str = "running"  # running, passed, failed
    message: str = "asking dispatch for a short discharge"
    power_w: float | None = None

    def json(self) -> dict[str, Any]:
        return {
            "charger_id": self.charger_id,
            "vehicle_id": self.vehicle_id,
            "started_at": self.started_at.isoformat(),
            "state": self.state,
            "message": self.message,
            "power_w": self.power_w,
        }


class TestRefused(ValueError):
    """The test cannot start; the message says why."""


class DischargeTests:
    def __init__(self, src: Sources) -> None:
        self._src = src
        self.results: dict[str, TestResult] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, charger_id: str) -> TestResult:
        cfg, store, now = self._src.cfg, self._src.store, self._src.clock.now()
        ccfg = cfg.charger(charger_id)
        if ccfg is None:
            raise TestRefused(f"unknown charger {charger_id!r}")
        old = self.results.get(charger_id)
        if old is not None and old.state == "running":
            raise TestRefused("a test discharge is already running on this charger")
        ch = store.charger_state(charger_id)
        if ch is None or not ch.online:
            raise TestRefused(f"charger {charger_id} is not connected")
        snap = store.snapshot(now)
        car = next(
            (v for v in snap.vehicles.values() if v.charger_id == charger_id and v.plugged), None
        )
        if car is None or cfg.vehicle(car.vehicle_id) is None:
            raise TestRefused(f"no configured car is plugged in at {charger_id}")
        _, max_discharge = cfg.power_limits(car.vehicle_id, charger_id)
        if max_discharge <= 0:
            raise TestRefused(f"{charger_id} may not discharge (max_discharge_w is 0)")
        # What the safety gate would say anyway, said at once instead of after a silent wait.
        max_age = timedelta(minutes=cfg.preferences.soc_max_age_minutes)
        if car.usable_soc(self._src.clock.monotonic(), max_age) is None:
            raise TestRefused("the car's state of charge is unknown or too old: no discharge")
        reserve = self._src.policy.reserve_percent(car.vehicle_id)
        if car.soc_percent is not None and car.soc_percent <= reserve + 1.0:
            raise TestRefused(
                f"the car is at {car.soc_percent:.0f} %, at its reserve of {reserve:g} %"
            )
        if not self._src.policy.preference("v2g_enabled"):
            raise TestRefused("V2G is switched off (turn it on to test)")
        power = min(max(TEST_POWER_W, ccfg.min_discharge_w), max_discharge)
        try:
            o = self._src.policy.override(
                OverrideKind.DISCHARGE_NOW, car.vehicle_id, power_w=power, minutes=TEST_MINUTES
            )
        except PolicyError as exc:
            raise TestRefused(str(exc)) from None
        result = TestResult(charger_id, car.vehicle_id, now)
        self.results[charger_id] = result
        task = asyncio.create_task(self._watch(result, o.override_id), name="web-test-discharge")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return result

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def _watch(self, r: TestResult, override_id: str) -> None:
        store, clock = self._src.store, self._src.clock
        changes = store.changes.subscribe()
        deadline = r.started_at + timedelta(minutes=TEST_MINUTES)
        try:
            while r.state == "running":
                self._judge(r)
                if r.state != "running":
                    break
                left = (deadline - clock.now()).total_seconds()
                if left <= 0:
                    if r.message.startswith("the charger accepted"):
                        r.message += ", but its meter never showed power flowing out: it may "
                        r.message += "ignore discharge profiles"
                    else:
                        r.message = f"nothing happened within {TEST_MINUTES:g} min: {r.message}"
                    r.state = "failed"
                    break
                waiter = asyncio.ensure_future(changes.get())
                sleeper = asyncio.ensure_future(clock.sleep(min(left, 60.0)))
                try:
                    await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                    sleeper.cancel()
        finally:
            store.changes.unsubscribe(changes)
            if any(o.override_id == override_id for o in store.active_overrides(clock.now())):
                with contextlib.suppress(PolicyError):
                    self._src.policy.cancel(r.vehicle_id)
        if r.state != "running":
            self._tell(r)

    def _judge(self, r: TestResult) -> None:
        """Read what happened since the start, most telling first."""
        store = self._src.store
        since = r.started_at - timedelta(seconds=1)
        ch = store.charger_state(r.charger_id)
        if ch is None or not ch.online:
            r.state, r.message = "failed", f"charger {r.charger_id} went offline"
            return
        measured = [e.power_w for e in ch.evses.values() if e.power_w is not None]
        if measured and min(measured) < -IDLE_W:
            r.power_w = min(measured)
            r.state = "passed"
            r.message = (
                f"the car discharged: the charger's meter showed {-r.power_w:.0f} W flowing out"
            )
            return
        for row in reversed(store.dispatch_log(50)):
            if row.get("vehicle_id") != r.vehicle_id or datetime.fromisoformat(row["at"]) < since:
                continue
            limit = row.get("limit_w")
            result = str(row.get("result") or "")
            if limit is not None and limit < 0 and result.startswith("Accepted"):
                r.message = f"the charger accepted a {-limit:.0f} W discharge profile"
                continue
            if limit is not None and limit < 0:
                r.state, r.message = "failed", f"the charger refused to discharge ({result})"
                return
            if "discharge now (user) stopped" in str(row.get("reason")):
                r.state = "failed"
                r.message = (
                    "the safety gate did not allow it: " + str(row["reason"]).split(": ", 1)[-1]
                )
                return

    def _tell(self, r: TestResult) -> None:
        self._src.store.notify(
            Notification(
                kind="test_discharge",
                message=f"test discharge on {r.charger_id} {r.state}: {r.message}",
                at=self._src.clock.now(),
                level="info" if r.state == "passed" else "warning",
                charger_id=r.charger_id,
                vehicle_id=r.vehicle_id,
                data=r.json(),
            )
        )
