"""A small world for the dispatch core's table tests: one charger, one EVSE, one car, built from
the same types the store hands to dispatch (no store, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from v2g_gateway.capability import DischargeCapability
from v2g_gateway.config import Config, parse_config
from v2g_gateway.dispatch.core import Sent, Situation
from v2g_gateway.dispatch.situation import Grid, Plan, Wishes, situation
from v2g_gateway.model import (
    ChargerState,
    EvseState,
    Override,
    OverrideKind,
    UserPriceSlot,
    VehicleState,
)
from v2g_gateway.soc import PlugSession, SocReading, SocSource

NOW = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)
MONO = 100_000.0  # the gateway's monotonic clock at NOW
PEAK = UserPriceSlot(NOW - timedelta(hours=1), NOW + timedelta(hours=1), 0.45, 0.35)
CHEAP = UserPriceSlot(NOW - timedelta(hours=1), NOW + timedelta(hours=1), 0.20, 0.05)

CFG = parse_config(
    {
        "chargers": [
            {"id": "garage", "password": "a-long-random-secret", "max_discharge_w": 10000}
        ],
        "vehicles": [{"id": "car", "battery_kwh": 60, "reserve_soc_percent": 40}],
        "preferences": {"profile_validity_minutes": 15, "soc_max_age_minutes": 30},
        "outage": {"floor_soc_percent": 20},
    }
)


@dataclass(frozen=True)
class World:
    """Knobs of one situation; `build()` makes the frozen Situation the core decides on."""

    soc: float | None = 70.0
    age_s: float = 10.0  # of the reading, on the monotonic clock
    reading_session: str = "s1"  # the session the reading belongs to
    source: SocSource = SocSource.CHARGER
    age_known: bool = True
    plugged: bool = True
    guest: bool = False
    power_w: float | None = 0.0  # measured
    commanded_w: float | None = None
    transaction_id: str | None = "tx-1"
    tx_forgotten: bool = False
    discharge: DischargeCapability = field(default_factory=DischargeCapability)
    booted_at: datetime | None = None
    capabilities: dict[str, Any] = field(default_factory=dict)
    reserve: float = 40.0
    v2g: bool = True
    threshold: float | None = 0.30
    price: UserPriceSlot | None = PEAK
    planned_w: float | None = None
    override: Override | None = None
    outage: bool = False
    backup_w: float = 0.0
    last: Sent | None = None
    probing: bool = False
    now: datetime = NOW
    mono: float = MONO
    cfg: Config = CFG

    def build(self) -> Situation:
        session = PlugSession(
            session_id="s1",
            charger_id="garage",
            evse_id=1,
            started_at=NOW - timedelta(hours=1),
            started_mono=MONO - 3600,
            vehicle_id=None if self.guest else "car",
            identified_by=None if self.guest else "default",
        )
        if self.soc is not None:
            session = replace(
                session,
                soc=SocReading(
                    percent=self.soc,
                    source=self.source,
                    received_at=self.now - timedelta(seconds=self.age_s),
                    received_mono=self.mono - self.age_s,
                    session_id=self.reading_session,
                    age_known=self.age_known,
                ),
            )
        ev = EvseState(
            "garage",
            1,
            plugged=self.plugged,
            transaction_id=self.transaction_id,
            power_w=self.power_w,
            session=session,
        )
        charger = ChargerState(
            "garage",
            online=True,
            booted_at=self.booted_at,
            discharge=self.discharge,
            capabilities=self.capabilities,
            evses={1: ev},
        )
        vehicle = (
            None
            if self.guest
            else VehicleState(
                "car", "garage", 1, plugged=self.plugged, session=session, power_w=self.power_w
            )
        )
        return situation(
            self.cfg,
            self.now,
            self.mono,
            session,
            vehicle,
            charger,
            Wishes(self.reserve, self.v2g, self.threshold),
            self.price,
            Plan(self.planned_w, None if self.planned_w is None else "plan"),
            override=self.override,
            grid=Grid(self.outage, self.backup_w),
            last=self.last,
            commanded_w=self.commanded_w,
            tx_forgotten=self.tx_forgotten,
            probing=self.probing,
        )


def override(
    kind: OverrideKind, soc: float | None = None, power_w: float | None = None
) -> Override:
    return Override(
        "o1", "car", kind, NOW - timedelta(minutes=1), NOW + timedelta(hours=1), soc, power_w
    )
