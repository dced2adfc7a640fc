"""Domain types shared by every part of the gateway.

These are plain frozen dataclasses so that the planner stays pure and snapshots can be handed
between tasks without copying. Power sign convention everywhere: positive = energy flows from the
grid into the car (charging), negative = the car feeds the house/grid (discharging). Times are
timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from v2g_gateway.capability import DischargeCapability
from v2g_gateway.soc import PlugSession, SocReading

# --------------------------------------------------------------------------------------------
# Prices


@dataclass(frozen=True, slots=True)
class PriceSlot:
    """One price interval with its true length (15, 30 or 60 minutes; DST days differ).

    `price` is per kWh in `currency` (spot prices from a market are converted from per-MWh).
    """

    start: datetime
    end: datetime
    price: float
    currency: str = "EUR"

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600.0


@dataclass(frozen=True, slots=True)
class UserPriceSlot:
    """The user's real import and export price for one interval, per kWh."""

    start: datetime
    end: datetime
    import_per_kwh: float
    export_per_kwh: float

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600.0


# --------------------------------------------------------------------------------------------
# Events from chargers (csms -> store)


class ConnectorStatus(StrEnum):
    AVAILABLE = "Available"
    OCCUPIED = "Occupied"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


@dataclass(frozen=True, slots=True)
class ChargerConnected:
    charger_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ChargerDisconnected:
    charger_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ChargerBooted:
    charger_id: str
    at: datetime
    vendor: str
    model: str
    serial: str | None = None
    firmware: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class HeartbeatSeen:
    charger_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ConnectorStatusChanged:
    charger_id: str
    evse_id: int
    connector_id: int
    status: ConnectorStatus
    at: datetime


@dataclass(frozen=True, slots=True)
class MeterSample:
    """A set of measurands read at one time on one EVSE; None = not reported."""

    charger_id: str
    evse_id: int
    at: datetime
    transaction_id: str | None = None
    soc_percent: float | None = None
    power_w: float | None = None  # signed: import minus export
    energy_import_wh: float | None = None
    energy_export_wh: float | None = None
    voltage_v: float | None = None  # lowest phase voltage when reported per phase
    current_a: float | None = None
    offline: bool = False  # replayed from the charger's offline queue: a reading of the past


class TransactionEventType(StrEnum):
    STARTED = "Started"
    UPDATED = "Updated"
    ENDED = "Ended"


@dataclass(frozen=True, slots=True)
class TransactionChanged:
    charger_id: str
    evse_id: int
    transaction_id: str
    event_type: TransactionEventType
    at: datetime
    seq_no: int
    trigger_reason: str
    charging_state: str | None = None  # Charging, EVConnected, SuspendedEV, SuspendedEVSE, Idle
    id_token: str | None = None
    plugged: bool | None = None
    stopped_reason: str | None = None
    offline: bool = False


@dataclass(frozen=True, slots=True)
class EvChargingNeeds:
    charger_id: str
    evse_id: int
    at: datetime
    soc_percent: float | None = None
    capacity_wh: float | None = None
    departure_time: datetime | None = None
    energy_request_wh: float | None = None
    max_charge_w: float | None = None
    max_discharge_w: float | None = None
    # OCPP 2.1 (v2xChargingParameters, requestedEnergyTransfer): the car's own V2X limits.
    min_charge_w: float | None = None
    min_discharge_w: float | None = None
    # True: the car asked for a bidirectional mode the gateway allowed; False: it did not.
    bidirectional: bool | None = None
    # Energy (Wh) the car wants before it may be discharged (evMinV2XEnergyRequest > 0).
    v2x_min_energy_wh: float | None = None


@dataclass(frozen=True, slots=True)
class ChargerCapability:
    """Something learnt about a charger from a report or an answer (e.g. 'discharge': False)."""

    charger_id: str
    at: datetime
    name: str
    value: Any
    detail: str | None = None


# The ChargerCapability name under which csms records what a charger's NotifyEvent said about
# the grid (True = gone); the outage detector follows it.
GRID_HINT = "grid_outage_hint"


ChargerEvent = (
    ChargerConnected
    | ChargerDisconnected
    | ChargerBooted
    | HeartbeatSeen
    | ConnectorStatusChanged
    | MeterSample
    | TransactionChanged
    | EvChargingNeeds
    | ChargerCapability
)


# --------------------------------------------------------------------------------------------
# Commands (dispatch -> csms)


class ProfilePurpose(StrEnum):
    TX_PROFILE = "TxProfile"
    TX_DEFAULT_PROFILE = "TxDefaultProfile"


@dataclass(frozen=True, slots=True)
class ProfilePeriod:
    start_offset_s: int
    limit_w: float  # negative = discharge


@dataclass(frozen=True, slots=True)
class ChargingProfileSpec:
    """What dispatch wants a charger to do; csms turns it into an OCPP ChargingProfile.

    Always Absolute with a start and a bounded validity (safety invariant 4).
    """

    charger_id: str
    evse_id: int
    profile_id: int
    purpose: ProfilePurpose
    start: datetime
    valid_to: datetime
    periods: tuple[ProfilePeriod, ...]
    transaction_id: str | None = None
    stack_level: int = 0

    @property
    def duration_s(self) -> int:
        return int((self.valid_to - self.start).total_seconds())

    def course(self, since: datetime) -> tuple[tuple[datetime, float], ...]:
        """The limits in force from `since` to `valid_to`, as (absolute start, limit W)."""
        out: list[tuple[datetime, float]] = []
        for i, p in enumerate(self.periods):
            begin = self.start + timedelta(seconds=p.start_offset_s)
            nxt = self.periods[i + 1] if i + 1 < len(self.periods) else None
            end = self.start + timedelta(seconds=nxt.start_offset_s) if nxt else self.valid_to
            if end > since and begin < self.valid_to:
                out.append((max(begin, since), p.limit_w))
        return tuple(out)


class CommandStatus(StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    NOT_IMPLEMENTED = "NotImplemented"
    OFFLINE = "Offline"
    TIMEOUT = "Timeout"
    ERROR = "Error"


@dataclass(frozen=True, slots=True)
class CommandResult:
    status: CommandStatus
    detail: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == CommandStatus.ACCEPTED


# --------------------------------------------------------------------------------------------
# Snapshot (store -> dispatch, mqtt)


@dataclass(frozen=True, slots=True)
class EvseState:
    charger_id: str
    evse_id: int
    status: ConnectorStatus | None = None
    plugged: bool = False
    transaction_id: str | None = None
    charging_state: str | None = None
    power_w: float | None = None
    energy_import_wh: float | None = None
    energy_export_wh: float | None = None
    voltage_v: float | None = None
    updated_at: datetime | None = None
    session: PlugSession | None = None  # who is plugged in now; None = nobody (or unknown)


@dataclass(frozen=True, slots=True)
class ChargerState:
    charger_id: str
    online: bool = False
    last_seen: datetime | None = None
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    booted_at: datetime | None = None
    connected_at: datetime | None = None  # this connection's start (not persisted)
    # False from a (re)connect until the charger's first message on it: a charger that rebooted
    # says so first (BootNotification), and nothing is sent to it before we know.
    spoken: bool = True
    discharge: DischargeCapability = field(default_factory=DischargeCapability)
    capabilities: dict[str, Any] = field(default_factory=dict)
    evses: dict[int, EvseState] = field(default_factory=dict)

    @property
    def supports_discharge(self) -> bool | None:
        """For display: True worked, False refused (retried later), None not yet known."""
        return self.discharge.supports


@dataclass(frozen=True, slots=True)
class VehicleState:
    """A configured vehicle as the store knows it. `session` is the plug-in it is bound to (at
    most one, and an EVSE has at most one vehicle); its SoC is only the SoC of that session."""

    vehicle_id: str
    charger_id: str | None = None
    evse_id: int | None = None
    plugged: bool = False
    session: PlugSession | None = None
    power_w: float | None = None
    capacity_wh: float | None = None
    departure_time: datetime | None = None
    energy_request_wh: float | None = None
    last_soc: SocReading | None = None  # the latest reading of any session or topic (display)

    @property
    def soc(self) -> SocReading | None:
        """The current plug session's latest reading (None: unplugged, or none yet)."""
        return None if self.session is None else self.session.soc

    def usable_soc(self, mono_now: float, max_age: timedelta) -> SocReading | None:
        """The reading dispatch may act on: fresh, of known age, of this plug session."""
        r = self.soc
        sid = None if self.session is None else self.session.session_id
        return r if r is not None and r.usable(mono_now, max_age, sid) else None

    @property
    def shown_soc(self) -> SocReading | None:
        """What to show a user: this session's reading, else the last one known."""
        return self.soc or self.last_soc

    @property
    def soc_percent(self) -> float | None:
        """Display only (dispatch uses `usable_soc`)."""
        r = self.shown_soc
        return None if r is None else r.percent

    @property
    def soc_at(self) -> datetime | None:
        r = self.shown_soc
        return None if r is None else r.received_at


class OverrideKind(StrEnum):
    """What a user override does. HOLD keeps the car at 0 W (no charge, no discharge; the
    user-facing word "pause" means this); RELEASE hands control back to the charger (clears
    the gateway's profiles), which may then charge at full power."""

    CHARGE_NOW = "charge_now"
    DISCHARGE_NOW = "discharge_now"
    HOLD = "hold"
    RELEASE = "release"

    @classmethod
    def parse(cls, word: str) -> OverrideKind:
        """A user's word for a kind; "pause" is the everyday word for hold."""
        w = word.strip().lower().replace(" ", "_")
        return cls.HOLD if w == "pause" else cls(w)


@dataclass(frozen=True, slots=True)
class Override:
    """A user's instruction that wins over the plan until it expires (invariant 5)."""

    override_id: str
    vehicle_id: str
    kind: OverrideKind
    created_at: datetime
    expires_at: datetime
    target_soc_percent: float | None = None  # charge up to / discharge down to
    power_w: float | None = None  # a magnitude: charge now charges at it, discharge now gives it

    def __post_init__(self) -> None:
        # The sign belongs to the kind, never to the number: a negative charge-now power must
        # not become a discharge labelled "charge".
        if self.power_w is not None and not self.power_w > 0:
            raise ValueError(f"{self.kind.value} power_w must be positive, got {self.power_w!r}")
        if self.power_w is not None and self.kind in (OverrideKind.HOLD, OverrideKind.RELEASE):
            raise ValueError(f"{self.kind.value} takes no power_w")

    def active(self, now: datetime) -> bool:
        """Until its expiry, whatever the wall clock did since it was made (a clock stepped
        back must not suspend it)."""
        return now < self.expires_at


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything dispatch and mqtt read, taken at one instant."""

    taken_at: datetime
    chargers: dict[str, ChargerState]
    vehicles: dict[str, VehicleState]
    overrides: tuple[Override, ...] = ()
    grid_outage: bool = False
    taken_mono: float = 0.0  # the gateway's monotonic clock then (SoC ages are measured on it)
    dispatch: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Notifications (dispatch, grid, prices -> mqtt events topic)


@dataclass(frozen=True, slots=True)
class Notification:
    """A user-facing event: a sentence for humans and fields for machines."""

    kind: str
    message: str
    at: datetime
    level: str = "info"
    charger_id: str | None = None
    vehicle_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
