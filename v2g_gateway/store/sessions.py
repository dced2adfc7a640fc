"""Who is plugged in, and which SoC readings count: pure rules, no SQLite.

- A plug-in starts a session with no SoC; a plug-out or the charger's reboot ends it.
- A session belongs to a configured vehicle only when the car is identified: by an id token or
  EVCCID the user configured, or as the charger's default vehicle. Anything else is a guest.
- A vehicle is in at most one session, an EVSE has at most one session: a token
  identification takes the vehicle from a session that only had it by default; a default
  never takes a vehicle from another session.
- Readings are ordered by the gateway's receipt, never by the sender's clock; a jump larger than
  the charger's power allows is held back until a second reading confirms it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from v2g_gateway.config import Config
from v2g_gateway.soc import PlugSession, SocReading

# Two readings may differ by this much beyond what the power allows (sources round differently,
# a car API lags the charger by a minute).
JUMP_TOLERANCE_PERCENT = 5.0
# A confirming reading must be this close to the held one.
CONFIRM_PERCENT = 3.0


@dataclass(frozen=True, slots=True)
class Identity:
    vehicle_id: str | None  # None = guest
    identified_by: str | None

    @property
    def strong(self) -> bool:
        """A token says who this is; a default is only a guess."""
        return self.identified_by in ("id_token", "evccid")


GUEST = Identity(None, None)


def identify(cfg: Config, charger_id: str, id_token: str | None) -> Identity:
    if id_token:
        for v in cfg.vehicles:
            if id_token in v.id_tokens:
                return Identity(v.id, "id_token")
            if v.evccid is not None and id_token.lower() == v.evccid.lower():
                return Identity(v.id, "evccid")
        if any(v.id_tokens or v.evccid for v in cfg.vehicles):
            return GUEST  # cars are told apart by token here: an unknown one is someone else
    default = cfg.default_vehicle(charger_id)
    return GUEST if default is None else Identity(default.id, "default")


def new_session(
    charger_id: str,
    evse_id: int,
    now: datetime,
    mono: float,
    import_wh: float | None,
    export_wh: float | None,
) -> PlugSession:
    return PlugSession(
        session_id=f"{charger_id}/{evse_id}/{uuid.uuid4().hex[:10]}",
        charger_id=charger_id,
        evse_id=evse_id,
        started_at=now,
        started_mono=mono,
        import_wh_at_start=import_wh,
        export_wh_at_start=export_wh,
    )


def bind(
    session: PlugSession,
    who: Identity,
    id_token: str | None,
    open_sessions: dict[str, PlugSession],
) -> tuple[PlugSession, list[PlugSession]]:
    """The session with `who` as its car, and the other sessions that lose that vehicle.

    `open_sessions` are all open sessions by id (the one given may be among them)."""
    if who.vehicle_id == session.vehicle_id and who.identified_by == session.identified_by:
        return (replace(session, id_token=id_token or session.id_token), [])
    if not who.strong and session.identified_by in ("id_token", "evccid"):
        return (session, [])  # a token already said who this is; a default does not undo it
    holders = [
        s
        for s in open_sessions.values()
        if s.session_id != session.session_id
        and who.vehicle_id is not None
        and s.vehicle_id == who.vehicle_id
    ]
    if holders and not who.strong:
        return (session, [])  # the default vehicle is plugged in elsewhere: this is a guest
    demoted = [replace(s, vehicle_id=None, identified_by=None) for s in holders]
    return (
        replace(
            session,
            vehicle_id=who.vehicle_id,
            identified_by=who.identified_by,
            id_token=id_token or session.id_token,
        ),
        demoted,
    )


class Verdict:
    ACCEPTED = "accepted"
    HELD = "held"  # implausible jump: kept aside until confirmed
    CONFIRMED = "confirmed"  # a held reading confirmed by this one
    STALE = "stale"  # received before the session's current reading: ignored
    OTHER_SESSION = "other_session"  # not of this session: ignored


def max_change_percent(seconds: float, capacity_kwh: float, max_power_w: float) -> float:
    """How far SoC can move in `seconds` at the charger's full power, plus a tolerance."""
    if capacity_kwh <= 0:
        return 100.0
    physics = max_power_w * max(seconds, 0.0) / 3600.0 / (capacity_kwh * 10.0)
    return 1.5 * physics + JUMP_TOLERANCE_PERCENT


def judge(
    session: PlugSession, new: SocReading, capacity_kwh: float, max_power_w: float
) -> tuple[PlugSession, str]:
    """The session with `new` applied, and what became of it."""
    if new.session_id != session.session_id:
        return session, Verdict.OTHER_SESSION
    prev = session.soc
    if prev is None:
        return replace(session, soc=new, pending_soc=None), Verdict.ACCEPTED
    if new.received_mono < prev.received_mono:
        return session, Verdict.STALE
    span = new.received_mono - prev.received_mono
    if abs(new.percent - prev.percent) <= max_change_percent(span, capacity_kwh, max_power_w):
        return replace(session, soc=new, pending_soc=None), Verdict.ACCEPTED
    held = session.pending_soc
    if held is not None:
        since_held = new.received_mono - held.received_mono
        near = (
            CONFIRM_PERCENT
            + max_change_percent(since_held, capacity_kwh, max_power_w)
            - (JUMP_TOLERANCE_PERCENT)
        )
        if abs(new.percent - held.percent) <= near:
            return replace(session, soc=new, pending_soc=None), Verdict.CONFIRMED
    return replace(session, pending_soc=new), Verdict.HELD
