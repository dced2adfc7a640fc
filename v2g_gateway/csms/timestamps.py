"""Charger timestamps: ISO 8601, read as UTC when a charger leaves out the offset."""

from __future__ import annotations

from datetime import UTC, datetime

from v2g_gateway.csms.frames import FrameError

# Years a charger may plausibly mean; outside them, later arithmetic (validity windows,
# conversions between zones) could overflow.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_ts(value: object, field_name: str = "timestamp") -> datetime:
    if not isinstance(value, str):
        raise FrameError("TypeConstraintViolation", f"{field_name} must be a date-time string")
    try:
        ts = datetime.fromisoformat(value)
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except ValueError:
        raise FrameError(
            "PropertyConstraintViolation",
            f"{field_name} {value[:40]!r} is not an ISO 8601 date-time",
        ) from None
    except OverflowError:
        ts = _LATEST.replace(year=9999)  # reported as out of range just below
    if not _EARLIEST <= ts <= _LATEST:
        raise FrameError(
            "PropertyConstraintViolation", f"{field_name} {value[:40]!r} is out of range"
        )
    return ts


def iso(ts: datetime) -> str:
    """UTC with a Z, the form every charger firmware parses."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
