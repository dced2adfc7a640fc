"""SoC readings and plug sessions to and from their stored form.

Monotonic times do not survive a restart, so a reading is stored with its wall receipt time and
its monotonic receipt time is rebuilt at load from the age the wall clock gives. A wall clock that
now reads earlier than the receipt (it was stepped back while the gateway was down) gives no
trustworthy age: such a reading loads as of unknown age and is never acted on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from v2g_gateway.soc import PlugSession, SocReading, SocSource

# A stored reading that the wall clock says is from the future by more than this has an unknown age.
FUTURE_TOLERANCE = timedelta(seconds=5)


def ts(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat()


def dt(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


def reading_to_json(r: SocReading | None, mono_now: float) -> str | None:
    if r is None:
        return None
    expires_in = None if r.expires_mono is None else r.expires_mono - mono_now
    return json.dumps(
        {
            "percent": r.percent,
            "source": r.source.value,
            "received_at": ts(r.received_at),
            "session_id": r.session_id,
            "measured_at": ts(r.measured_at),
            "expires_in_s": expires_in,
            "age_known": r.age_known,
        }
    )


def reading_from_json(raw: str | None, now: datetime, mono_now: float) -> SocReading | None:
    """A stored reading with its monotonic receipt time rebuilt; None when unreadable."""
    if raw is None:
        return None
    try:
        d: dict[str, Any] = json.loads(raw)
        received_at = datetime.fromisoformat(d["received_at"])
        age = (now - received_at).total_seconds()
        age_known = bool(d.get("age_known", True)) and age >= -FUTURE_TOLERANCE.total_seconds()
        expires_in = d.get("expires_in_s")
        return SocReading(
            percent=float(d["percent"]),
            source=SocSource(d["source"]),
            received_at=received_at,
            received_mono=mono_now - max(0.0, age),
            session_id=d.get("session_id"),
            measured_at=dt(d.get("measured_at")),
            # The expiry counted down while the gateway was down, too.
            expires_mono=None
            if expires_in is None
            else mono_now + float(expires_in) - max(0.0, age),
            age_known=age_known,
        )
    except (KeyError, TypeError, ValueError, json.JSONDecodeError):
        return None


SESSION_COLUMNS = (
    "session_id, charger_id, evse_id, started_at, vehicle_id, identified_by, id_token, "
    "import_wh_at_start, export_wh_at_start, soc, pending_soc, capacity_wh, departure_time, "
    "energy_request_wh"
)


def session_row(s: PlugSession, mono_now: float) -> tuple[Any, ...]:
    return (
        s.session_id,
        s.charger_id,
        s.evse_id,
        ts(s.started_at),
        s.vehicle_id,
        s.identified_by,
        s.id_token,
        s.import_wh_at_start,
        s.export_wh_at_start,
        reading_to_json(s.soc, mono_now),
        reading_to_json(s.pending_soc, mono_now),
        s.capacity_wh,
        ts(s.departure_time),
        s.energy_request_wh,
    )


def session_from_row(r: tuple[Any, ...], now: datetime, mono_now: float) -> PlugSession:
    started = datetime.fromisoformat(r[3])
    return PlugSession(
        session_id=r[0],
        charger_id=r[1],
        evse_id=r[2],
        started_at=started,
        started_mono=mono_now - max(0.0, (now - started).total_seconds()),
        vehicle_id=r[4],
        identified_by=r[5],
        id_token=r[6],
        import_wh_at_start=r[7],
        export_wh_at_start=r[8],
        soc=reading_from_json(r[9], now, mono_now),
        pending_soc=reading_from_json(r[10], now, mono_now),
        capacity_wh=r[11],
        departure_time=dt(r[12]),
        energy_request_wh=r[13],
    )
