"""The plan chart's data: prices over the window, the plan's power and SoC path with the reserve
and target lines, and a reason in words for every slot.

`pv_kw` and `house_load_kw` are the chart's places for the home's PV and load (issue 16): null
today; a list of numbers per slot once the planner knows them, and the page draws them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from v2g_gateway.dispatch.replanner import next_departure
from v2g_gateway.model import VehicleState
from v2g_gateway.web import words
from v2g_gateway.web.views import Sources, in_words, slot_action

WINDOW = timedelta(hours=36)
MIN_WINDOW = timedelta(hours=12)
MAX_SLOTS = 200


def _f(x: Any) -> float:
    return float(x or 0.0)


def plan_view(src: Sources, vehicle_id: str) -> dict[str, Any] | None:
    cfg = src.cfg
    vcfg = cfg.vehicle(vehicle_id)
    if vcfg is None:
        return None
    now = src.clock.now()
    tz = cfg.gateway.tz
    cur = cfg.prices.currency
    plan = src.store.load_plan(vehicle_id) or {}
    cap = vcfg.battery_kwh
    slots = []
    for s in plan.get("slots", [])[: MAX_SLOTS * 2]:
        try:
            start, end = datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"])
        except (KeyError, TypeError, ValueError):
            continue
        if end <= now:
            continue
        power_kw = round(_f(s.get("charge_kw")) - _f(s.get("discharge_kw")), 3)
        action = slot_action(s)
        reason = s.get("reason") or "plan"
        slots.append(
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "label": f"{words.local(start, tz, now)}–{end.astimezone(tz):%H:%M}",
                "import_per_kwh": s.get("import_per_kwh"),
                "export_per_kwh": s.get("export_per_kwh"),
                "power_kw": power_kw,
                "soc_start_percent": round(100.0 * _f(s.get("soc_start_kwh")) / cap, 1),
                "soc_end_percent": round(100.0 * _f(s.get("soc_end_kwh")) / cap, 1),
                "action": action,
                "reason": reason,
                "text": in_words(
                    action + (f" {words.power(power_kw * 1000)}" if action != "waiting" else ""),
                    reason,
                ),
            }
        )
        if len(slots) >= MAX_SLOTS:
            break
    snap_v = src.store.vehicle_view(vehicle_id) or VehicleState(vehicle_id=vehicle_id)
    dep = next_departure(cfg, src.policy, vcfg, snap_v, now)
    # The chart ends a little after the departure the plan works towards, or after a day.
    start = now.replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=24)
    if dep is not None and slots:
        end = max(start + MIN_WINDOW, dep[0] + timedelta(hours=2))
    end = min(end, start + WINDOW)
    slots = [s for s in slots if datetime.fromisoformat(s["start"]) < end]
    try:
        prices = list(src.prices.user_prices(start, end))
    except Exception:  # a price source problem shows as an empty chart, not an error page
        prices = []
    return {
        "vehicle_id": vehicle_id,
        "currency": cur,
        "now": now.isoformat(),
        "timezone": cfg.gateway.timezone,
        "created_at": plan.get("created_at"),
        "break_even_per_kwh": plan.get("break_even_per_kwh"),
        "target_at_risk": plan.get("target_at_risk"),
        "notes": plan.get("notes", []),
        "reserve_soc_percent": src.policy.reserve_percent(vehicle_id),
        "target": None if dep is None else {"at": dep[0].isoformat(), "soc_percent": dep[1]},
        "soc_percent": snap_v.soc_percent,
        "prices": [
            {
                "start": p.start.isoformat(),
                "end": p.end.isoformat(),
                "import_per_kwh": round(p.import_per_kwh, 4),
                "export_per_kwh": round(p.export_per_kwh, 4),
            }
            for p in prices[: MAX_SLOTS * 2]
        ],
        "slots": slots,
        "pv_kw": None,
        "house_load_kw": None,
    }
