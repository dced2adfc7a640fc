"""State of charge with its provenance, and the plug session a reading belongs to.

A SoC is only as good as what we know about it (DESIGN.md invariant 6): who measured it, when
the gateway received it (ages are measured on the gateway's monotonic clock, so neither a
charger's wrong clock nor a step of the gateway's own wall clock can make a reading young), and
which plug-in of which car it describes. A new plug-in starts with no SoC at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

WHOLE_PERCENT_ALLOWANCE = 0.5  # a reading of 41 may be a rounded 40.5


class SocSource(StrEnum):
    CHARGER = "charger"  # the SoC measurand of MeterValues / TransactionEvent
    EV = "ev"  # NotifyEVChargingNeeds (ISO 15118: the car itself)
    MQTT = "mqtt"  # the vehicle's own topic (a car API, evcc, Home Assistant)
    ESTIMATE = "estimate"  # a reading moved by the power since (never stored as a reading)


@dataclass(frozen=True, slots=True)
class SocReading:
    percent: float
    source: SocSource
    received_at: datetime  # gateway wall clock at receipt: shown to users, persisted
    received_mono: float  # gateway monotonic clock at receipt: every age is measured on this
    session_id: str | None  # the plug session it describes; None = the car was not plugged
    measured_at: datetime | None = None  # the device's own timestamp: informational only
    expires_mono: float | None = None  # MQTT 5 message expiry: not valid after this
    age_known: bool = True  # False: a retained value of unknown age (never used to discharge)

    def age_s(self, mono_now: float) -> float:
        return max(0.0, mono_now - self.received_mono)

    def usable(self, mono_now: float, max_age: timedelta, session_id: str | None) -> bool:
        """Fresh enough to act on, for this plug session."""
        return (
            self.age_known
            and session_id is not None
            and self.session_id == session_id
            and self.age_s(mono_now) <= max_age.total_seconds()
            and (self.expires_mono is None or mono_now < self.expires_mono)
        )


@dataclass(frozen=True, slots=True)
class PlugSession:
    """One plug-in at one EVSE: from cable in to cable out (or the charger's reboot).

    `vehicle_id` None is a guest: a car not identified as a configured vehicle. It is charged by
    price and never discharged.
    """

    session_id: str
    charger_id: str
    evse_id: int
    started_at: datetime
    started_mono: float
    vehicle_id: str | None = None
    identified_by: str | None = None  # "id_token", "evccid", "default"; None = guest
    id_token: str | None = None
    import_wh_at_start: float | None = None
    export_wh_at_start: float | None = None
    soc: SocReading | None = None  # the latest accepted reading of this session
    pending_soc: SocReading | None = None  # an implausible jump, held until confirmed
    capacity_wh: float | None = None  # what the car said (ISO 15118) in this session
    departure_time: datetime | None = None
    energy_request_wh: float | None = None

    @property
    def guest(self) -> bool:
        return self.vehicle_id is None


def drained_percent(power_w: float, seconds: float, capacity_kwh: float, eta_d: float) -> float:
    """SoC points a discharge at `power_w` (grid side, positive number) takes in `seconds`:
    the battery gives more than the grid receives (1 / eta_d)."""
    if capacity_kwh <= 0 or power_w <= 0 or seconds <= 0:
        return 0.0
    return power_w / max(eta_d, 1e-6) * seconds / 3600.0 / (capacity_kwh * 10.0)


def conservative_soc(
    reading: SocReading,
    mono_now: float,
    capacity_kwh: float,
    eta_d: float,
    *,
    measured_w: float | None,
    commanded_w: float | None,
) -> float:
    """The reading moved by whichever power since drains more: the one measured, or the one the
    gateway commanded (a charger that went silent may still be discharging as told). Charging is
    never credited: the estimate only goes down."""
    drain_w = -min(0.0, measured_w if measured_w is not None else 0.0, commanded_w or 0.0)
    moved = reading.percent - drained_percent(drain_w, reading.age_s(mono_now), capacity_kwh, eta_d)
    return max(0.0, min(reading.percent, moved))


def resolution_allowance(reading: SocReading) -> float:
    """How much lower the true SoC may be than a reading says: a whole-percent reading (most
    chargers and cars round) may be half a point high. The energy bound counts from below it."""
    return WHOLE_PERCENT_ALLOWANCE if reading.percent.is_integer() else 0.0
