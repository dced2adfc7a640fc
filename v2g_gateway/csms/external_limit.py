"""NotifyChargingLimit schedules -> the power cap (W) in force now, and when it next changes.

A local energy manager or the grid operator may limit a charger behind the gateway's back; the
charger tells us with NotifyChargingLimit (per source, maybe per EVSE, with or without a schedule).
The cap is a magnitude: it bounds charging and discharging alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from v2g_gateway.csms.electrical import Electrical
from v2g_gateway.csms.timestamps import parse_ts


def _schedule_limit(
    sched: dict[str, Any], received: datetime, now: datetime, electrical: Electrical
) -> tuple[float | None, datetime | None]:
    start = parse_ts(sched["startSchedule"], "startSchedule") if "startSchedule" in sched else None
    start = start or received
    end = start + timedelta(seconds=int(sched["duration"])) if "duration" in sched else None
    if end is not None and now >= end:
        return None, None
    unit = str(sched.get("chargingRateUnit", "W"))
    periods = sorted(sched.get("chargingSchedulePeriod", ()), key=lambda p: int(p["startPeriod"]))
    limit: float | None = None
    nxt: datetime | None = end
    for p in periods:
        at = start + timedelta(seconds=int(p["startPeriod"]))
        if at <= now:
            phases = p.get("numberPhases")
            limit = abs(electrical.to_w(float(p["limit"]), unit, int(phases) if phases else None))
        else:
            nxt = at if nxt is None else min(nxt, at)
            break
    if start > now:
        nxt = start
    return limit, nxt


def cap_in_force(
    schedules: Iterable[tuple[dict[str, Any], datetime]], now: datetime, electrical: Electrical
) -> tuple[float | None, datetime | None]:
    """(lowest cap in force W or None, next time it may change or None).

    `schedules` pairs each ChargingScheduleType with the time it was received (a schedule
    without startSchedule starts then).
    """
    cap: float | None = None
    nxt: datetime | None = None
    for sched, received in schedules:
        limit, change = _schedule_limit(sched, received, now, electrical)
        if limit is not None:
            cap = limit if cap is None else min(cap, limit)
        if change is not None:
            nxt = change if nxt is None else min(nxt, change)
    return cap, nxt
