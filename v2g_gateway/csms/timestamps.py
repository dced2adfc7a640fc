"""Charger timestamps: ISO 8601, read as UTC when a charger leaves out the offset."""

from __future__ import annotations

from datetime import UTC, datetime

from v2g_gateway.csms.frames import FrameError


def parse_ts(value: object, field_name: str = "timestamp") -> datetime:
    if not isinstance(value, str):
        raise FrameError("TypeConstraintViolation", f"{field_name} must be a date-time string")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise FrameError(
            "PropertyConstraintViolation",
            f"{field_name} {value[:40]!r} is not an ISO 8601 date-time",
        ) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def iso(ts: datetime) -> str:
    """UTC with a Z, the form every charger firmware parses."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
