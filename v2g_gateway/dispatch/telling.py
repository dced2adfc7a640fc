"""What dispatch tells: notifications to the user, the dispatch log, and a warning when the
gateway's own clock was stepped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from v2g_gateway.config import Config
from v2g_gateway.dispatch.core import Step
from v2g_gateway.dispatch.decision import Mode
from v2g_gateway.model import CommandResult, Notification, UserPriceSlot
from v2g_gateway.soc import PlugSession
from v2g_gateway.store import Store

log = structlog.get_logger(__name__)

CLOCK_STEP_S = 60.0  # wall clock and monotonic clock disagreeing by more: a step


class Teller:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        clock_now: Callable[[], datetime],
        price_at: Callable[[datetime], UserPriceSlot | None],
    ) -> None:
        self._cfg = cfg
        self._store = store
        self._now = clock_now
        self._price_at = price_at
        self._last_clock: tuple[datetime, float] | None = None

    def check_clock(self, now: datetime, mono: float) -> None:
        """A step of the gateway's own wall clock changes no SoC age and no override (both are
        safe by construction), but the user is told: the log's times jump."""
        if self._last_clock is not None:
            wall0, mono0 = self._last_clock
            jump = (now - wall0).total_seconds() - (mono - mono0)
            if abs(jump) > CLOCK_STEP_S:
                self.notify(
                    "gateway_clock_stepped",
                    f"the gateway's clock was stepped by {jump / 60:+.0f} min (NTP or by hand); "
                    "SoC ages and overrides are not affected",
                    level="warning",
                    data={"step_s": round(jump)},
                )
        self._last_clock = (now, mono)

    def announce(self, now: datetime, session: PlugSession, out: Step) -> None:
        if out.announce is None:
            return
        d = out.decision
        who = session.vehicle_id or f"guest car at {session.charger_id}"
        verb = "discharging" if out.announce == "dispatch_started" else "stopped discharging"
        data: dict[str, object] = {"mode": d.mode.value, "limit_w": d.limit_w, "reason": d.reason}
        message = f"{who} {verb}: {d.reason}"
        price = self._price_at(now)
        if d.mode == Mode.DISCHARGE and price is not None:
            per_hour = -d.limit_w / 1000.0 * price.export_per_kwh
            data |= {
                "export_per_kwh": price.export_per_kwh,
                "expected_per_hour": round(per_hour, 3),
            }
            message += f" (about {per_hour:.2f} {self._cfg.prices.currency} an hour)"
        self.notify(
            out.announce,
            message,
            charger_id=session.charger_id,
            vehicle_id=session.vehicle_id,
            data=data,
        )

    def notify(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        charger_id: str | None = None,
        vehicle_id: str | None = None,
        data: dict[str, object] | None = None,
    ) -> None:
        self._store.notify(
            Notification(
                kind=kind,
                message=message,
                at=self._now(),
                level=level,
                charger_id=charger_id,
                vehicle_id=vehicle_id,
                data=dict(data or {}),
            )
        )

    def log(
        self,
        now: datetime,
        session: PlugSession,
        action: str,
        limit_w: float | None,
        reason: str,
        result: CommandResult,
    ) -> None:
        log.info(
            "dispatch.command",
            charger_id=session.charger_id,
            vehicle_id=session.vehicle_id,
            action=action,
            limit_w=limit_w,
            reason=reason,
            result=result.status.value,
        )
        self._store.log_dispatch(
            now,
            action,
            reason,
            charger_id=session.charger_id,
            evse_id=session.evse_id,
            vehicle_id=session.vehicle_id,
            limit_w=limit_w,
            result=result.status.value
            if result.detail is None
            else f"{result.status.value}: {result.detail}",
        )
