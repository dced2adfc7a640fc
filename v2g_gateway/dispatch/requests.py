"""What the planner is asked: departures, slots cut at the right places, demand-response events,
and the vehicle as the plan should see it (with a fresh SoC, or the worst case without one).

Without a fresh SoC of its plug session a car is planned from the worst case: it is assumed
empty, plus what the charger's registers say it took in this session, so it charges in the
cheapest slots that still meet its departure, and it is never discharged. A guest car is
planned the same way, with a default battery and a default stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from v2g_gateway.config import WEEKDAYS, Config, VehicleSection, parse_hhmm
from v2g_gateway.dispatch.plan_types import DemandResponse, PlanVehicle
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.model import EvseState, UserPriceSlot, VehicleState
from v2g_gateway.soc import PlugSession

log = structlog.get_logger(__name__)

GUEST_BATTERY_KWH = 60.0
GUEST_STAY = timedelta(hours=12)  # a guest is planned to be full after this long, at best price


def next_departure(
    cfg: Config, policy: Policy, vcfg: VehicleSection, v: VehicleState, now: datetime
) -> tuple[datetime, float] | None:
    """The next time this vehicle must be ready, with its target SoC in percent."""
    target_pref = policy.preference("target_soc_percent", vcfg.id)
    if v.departure_time is not None and v.departure_time > now:  # ISO 15118 told us
        target = float(target_pref) if target_pref is not None else vcfg.max_soc_percent
        return v.departure_time, target
    tz = cfg.gateway.tz
    local = now.astimezone(tz)
    one_off = policy.preference("departure_time", vcfg.id)
    plans: list[tuple[tuple[str, ...], str, float]] = []
    weekly = policy.preference("departures", vcfg.id)
    if isinstance(one_off, str):
        tgt = float(target_pref) if target_pref is not None else 80.0
        plans.append((WEEKDAYS, one_off, tgt))
    elif isinstance(weekly, list):  # the user's weekly plan, set at run time (web app, MQTT)
        for d in weekly:
            tgt = float(target_pref) if target_pref is not None else float(d["target_soc_percent"])
            plans.append((tuple(d["days"]), str(d["time"]), tgt))
    else:
        for d in cfg.preferences.departures:
            if d.vehicle in (None, vcfg.id):
                tgt = float(target_pref) if target_pref is not None else d.target_soc_percent
                plans.append((d.days, d.time, tgt))
    best: tuple[datetime, float] | None = None
    for days, hhmm, target in plans:
        t = parse_hhmm(hhmm)
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            if WEEKDAYS[day.weekday()] not in days:
                continue
            at = datetime.combine(day, t, tzinfo=tz)
            if at > now:
                if best is None or at < best[0]:
                    best = (at, target)
                break
    return best


def split_slots(
    prices: Sequence[UserPriceSlot],
    cuts: Sequence[datetime],
    max_len: timedelta = timedelta(hours=1),
) -> list[UserPriceSlot]:
    """Long tariff periods become hour slots (cut on the hour), and a departure starts a slot,
    so the plan can say when within a period to act and meet a target exactly on time."""
    out: list[UserPriceSlot] = []
    for p in prices:
        start = p.start
        while start < p.end:
            nxt = start.replace(minute=0, second=0, microsecond=0) + max_len
            for c in cuts:
                if start < c < nxt:
                    nxt = c
            end = min(nxt, p.end)
            out.append(UserPriceSlot(start, end, p.import_per_kwh, p.export_per_kwh))
            start = end
    return out


def dr_events(raw: Any) -> tuple[DemandResponse, ...]:
    out: list[DemandResponse] = []
    if not isinstance(raw, list):
        return ()
    for e in raw:
        try:
            power_w = e.get("power_w")
            out.append(
                DemandResponse(
                    start=datetime.fromisoformat(e["start"]),
                    end=datetime.fromisoformat(e["end"]),
                    power_kw=None if power_w is None else float(power_w) / 1000.0,
                    bonus_per_kwh=e.get("price_bonus_per_kwh"),
                    event_id=str(e.get("event_id", "")),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("replan.bad_demand_response", event=str(e)[:200])
    return tuple(out)


def delivered_kwh(session: PlugSession, ev: EvseState | None, eta_c: float, eta_d: float) -> float:
    """Energy the battery gained in this session by the charger's registers (0 if unknown)."""
    if ev is None:
        return 0.0
    imp = (
        0.0
        if ev.energy_import_wh is None or session.import_wh_at_start is None
        else max(0.0, ev.energy_import_wh - session.import_wh_at_start)
    )
    exp = (
        0.0
        if ev.energy_export_wh is None or session.export_wh_at_start is None
        else max(0.0, ev.energy_export_wh - session.export_wh_at_start)
    )
    return max(0.0, (imp * eta_c - exp / max(eta_d, 1e-6)) / 1000.0)


def worst_case_vehicle(
    vehicle_id: str,
    capacity_kwh: float,
    max_percent: float,
    max_charge_w: float,
    delivered: float,
    eta_c: float,
    eta_d: float,
) -> PlanVehicle:
    """A car of unknown SoC as the plan sees it: empty but for what it took in this session,
    no reserve to defend (it is never discharged), never discharged."""
    cap = capacity_kwh
    return PlanVehicle(
        vehicle_id=vehicle_id,
        capacity_kwh=cap,
        soc_kwh=min(delivered, cap * max_percent / 100.0),
        reserve_kwh=0.0,
        max_kwh=cap * max_percent / 100.0,
        max_charge_kw=max_charge_w / 1000.0,
        max_discharge_kw=0.0,
        eta_c=eta_c,
        eta_d=eta_d,
        can_discharge=False,
    )


def unknown_soc_note(need_kwh: float) -> str:
    return f"SoC unknown: charging by price for {need_kwh:.0f} kWh"
