"""What the web app shows, as JSON-ready dicts built from one snapshot: the /api/ answers and the
server-rendered page read the same dicts, so the words are phrased once, here.

The vehicle view is the one place that reads VehicleState; when SoC provenance lands (source,
plug session), `soc_view` is what changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from v2g_gateway import __version__
from v2g_gateway.clock import Clock
from v2g_gateway.config import Config, VehicleSection
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.dispatch.replanner import next_departure
from v2g_gateway.model import (
    Notification,
    Override,
    OverrideKind,
    Snapshot,
    UserPriceSlot,
    VehicleState,
)
from v2g_gateway.store import Store
from v2g_gateway.web import words

# Below this the charger is holding, not charging or discharging (meter noise).
IDLE_W = 50.0
FEED_LENGTH = 30


class PriceView(Protocol):
    def user_prices(self, start: datetime, end: datetime) -> Sequence[UserPriceSlot]: ...


@dataclass(frozen=True, slots=True)
class Sources:
    """What the web app reads from the running gateway (app.py builds it)."""

    cfg: Config
    store: Store
    policy: Policy
    clock: Clock
    prices: PriceView
    grid_status: Callable[[], dict[str, Any]]
    prices_status: Callable[[], dict[str, Any]]
    ocpp_port: Callable[[], int | None]
    connected: Callable[[], set[str]]


SOURCE_WORDS = {"charger": "charger", "ev": "the car (ISO 15118)", "mqtt": "MQTT topic"}


def soc_view(
    v: VehicleState, vcfg: VehicleSection | None, cfg: Config, now: datetime, mono: float
) -> dict[str, Any]:
    """SoC with where it came from, how old it is (by the gateway's clock) and whether dispatch
    may act on it, or 'unknown'."""
    max_age = timedelta(minutes=cfg.preferences.soc_max_age_minutes)
    r = v.shown_soc
    source = None if r is None else SOURCE_WORDS.get(r.source.value, r.source.value)
    fresh = v.usable_soc(mono, max_age) is not None
    age_s = None if r is None or not r.age_known else round(r.age_s(mono))
    if r is None:
        text = "unknown"
    else:
        text = f"{r.percent:.0f} %"
        ago = None if age_s is None else words.age(now - timedelta(seconds=age_s), now)
        text += f" ({source}, {ago})" if ago else f" ({source}, age unknown)"
        if not fresh:
            if not r.age_known:
                text += ": of unknown age, not used to discharge"
            elif v.session is None or r.session_id != v.session.session_id:
                text += ": from before this plug-in"
            else:
                text += ": too old to discharge on"
    return {
        "percent": None if r is None else r.percent,
        "at": None if r is None else r.received_at.isoformat(),
        "age_s": age_s,
        "source": source,
        "fresh": fresh,
        "percent_text": "?" if r is None else f"{r.percent:.0f} %",
        "text": text,
    }


def override_text(o: Override, cfg: Config, now: datetime) -> str:
    until = words.local(o.expires_at, cfg.gateway.tz, now)
    t = o.target_soc_percent
    if o.kind == OverrideKind.CHARGE_NOW:
        what = "Charge now" + (f" to {t:g} %" if t is not None else "")
    elif o.kind == OverrideKind.DISCHARGE_NOW:
        what = "Discharge now" + (f" down to {t:g} %" if t is not None else "")
    elif o.kind == OverrideKind.HOLD:
        what = "Hold at 0 W"
    else:
        what = "Released to the charger"
    return f"{what} until {until}"


def _power_state(v: VehicleState, override: Override | None) -> tuple[str, str]:
    if not v.plugged:
        return "unplugged", "not plugged in"
    p = v.power_w
    if p is not None and p > IDLE_W:
        return "charging", f"charging at {words.power(p)}"
    if p is not None and p < -IDLE_W:
        return "discharging", f"discharging at {words.power(p)}"
    if override is not None and override.kind == OverrideKind.HOLD:
        return "holding", "holding at 0 W"
    return "idle", "plugged in, idle" if p is not None else "plugged in, power unknown"


def slot_action(slot: dict[str, Any]) -> str:
    if float(slot.get("discharge_kw") or 0) * 1000 > IDLE_W:
        return "discharging"
    if float(slot.get("charge_kw") or 0) * 1000 > IDLE_W:
        return "charging"
    return "waiting"


def weekly_text(plan: list[dict[str, Any]]) -> str:
    """[{days, time, target}] as the weekly field reads it: 'mon-fri 07:30 80; sat 10:00 60'."""
    order = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    parts = []
    for d in plan:
        days = [x for x in order if x in d.get("days", [])]
        idx = [order.index(x) for x in days]
        run = len(days) > 2 and idx == list(range(idx[0], idx[-1] + 1))
        names = f"{days[0]}-{days[-1]}" if run else ",".join(days)
        parts.append(f"{names} {d['time']} {float(d['target_soc_percent']):g}")
    return "; ".join(parts)


def in_words(action: str, reason: str) -> str:
    """'discharging: peak 0.38 EUR/kWh above break-even 0.21'; no 'waiting: waiting for ...'."""
    return reason if reason.startswith(action[:5]) else f"{action}: {reason}"


def plan_slot_at(plan: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    for s in (plan or {}).get("slots", []):
        try:
            if datetime.fromisoformat(s["start"]) <= now < datetime.fromisoformat(s["end"]):
                return dict(s)
        except (KeyError, TypeError, ValueError):
            continue
    return None


def last_command(src: Sources, vehicle_id: str, log: list[dict[str, Any]]) -> dict[str, Any] | None:
    row = next((r for r in log if r.get("vehicle_id") == vehicle_id), None)
    if row is None:
        return None
    tz = src.cfg.gateway.tz
    at = datetime.fromisoformat(row["at"])
    limit = row.get("limit_w")
    what = "handed to the charger" if row["action"] == "clear" else f"limit {limit:+.0f} W"
    return {
        "at": row["at"],
        "action": row["action"],
        "limit_w": limit,
        "reason": row["reason"],
        "result": row["result"],
        "text": f"{words.local(at, tz, src.clock.now())}: {what} ({row['reason']}): {row['result']}",
    }


def vehicle_view(
    src: Sources, vcfg: VehicleSection, snap: Snapshot, log: list[dict[str, Any]]
) -> dict[str, Any]:
    cfg, policy, now = src.cfg, src.policy, snap.taken_at
    v = snap.vehicles.get(vcfg.id) or VehicleState(vehicle_id=vcfg.id)
    override = next((o for o in snap.overrides if o.vehicle_id == vcfg.id), None)
    state, state_text = _power_state(v, override)
    plan = src.store.load_plan(vcfg.id)
    dep = next_departure(cfg, policy, vcfg, v, now)
    own = policy.preference("departures", vcfg.id)  # the user's weekly plan, if set
    weekly = (
        list(own)
        if isinstance(own, list)
        else [
            {"days": list(d.days), "time": d.time, "target_soc_percent": d.target_soc_percent}
            for d in cfg.preferences.departures
            if d.vehicle in (None, vcfg.id)
        ]
    )
    slot = plan_slot_at(plan, now) if v.plugged else None
    live = (
        snap.dispatch.get((v.charger_id, v.evse_id))
        if v.plugged and v.charger_id is not None and v.evse_id is not None
        else None
    )
    if override is not None:
        reason = override_text(override, cfg, now)
    elif live is not None and live.get("reason"):
        # What the gateway does now, after its safety gate (which may hold what the plan says).
        action = {"discharge": "discharging", "backup": "discharging", "charge": "charging"}
        reason = in_words(action.get(str(live.get("mode")), "holding"), str(live["reason"]))
    elif snap.grid_outage:
        reason = "grid outage: the car backs up the home down to the outage floor"
    elif slot is not None:
        reason = in_words(slot_action(slot), str(slot.get("reason") or "plan"))
    else:
        reason = "not plugged in" if not v.plugged else "no plan yet"
    name = " ".join(str(x) for x in (vcfg.make, vcfg.model) if x) or vcfg.id
    return {
        "vehicle_id": vcfg.id,
        "name": name,
        "battery_kwh": vcfg.battery_kwh,
        "soc": soc_view(v, vcfg, cfg, now, snap.taken_mono),
        "plugged": v.plugged,
        "charger_id": v.charger_id,
        "state": state,
        "power_w": v.power_w,
        "state_text": state_text,
        "mode": "automatic" if override is None else override.kind.value,
        "mode_text": "Automatic: following the plan"
        if override is None
        else override_text(override, cfg, now),
        "override": None
        if override is None
        else {
            "override_id": override.override_id,
            "kind": override.kind.value,
            "expires_at": override.expires_at.isoformat(),
            "soc_percent": override.target_soc_percent,
            "power_w": override.power_w,
        },
        "reserve_soc_percent": policy.reserve_percent(vcfg.id),
        "reserve_text": f"{policy.reserve_percent(vcfg.id):g} % (never discharged below it)",
        "min_soc_percent": vcfg.min_soc_percent,
        "max_soc_percent": vcfg.max_soc_percent,
        "target_soc_percent": None if dep is None else dep[1],
        "departure_at": None if dep is None else dep[0].isoformat(),
        "departure_text": "none planned"
        if dep is None
        else f"{words.local(dep[0], cfg.gateway.tz, now)}, {dep[1]:g} %",
        "departure_time": policy.preference("departure_time", vcfg.id),
        "charge_mode": str(policy.preference("charge_mode", vcfg.id) or "smart"),
        "weekly_departures": weekly,
        "weekly_text": weekly_text(weekly) if isinstance(own, list) else "",
        "reason_now": reason,
        "last_command": last_command(src, vcfg.id, log),
        "plan_created_at": None if plan is None else plan.get("created_at"),
        "target_at_risk": bool(plan and plan.get("target_at_risk")),
    }


def grid_view(src: Sources) -> dict[str, Any]:
    g = src.grid_status()
    oc = src.cfg.outage
    state = g.get("state", "unknown")
    since = g.get("since")
    since_txt = (
        words.local(datetime.fromisoformat(since), src.cfg.gateway.tz, src.clock.now())
        if since
        else None
    )
    if not oc.enabled:
        text = "outage backup is off ([outage] enabled = false)"
    elif state == "outage":
        text = (
            f"grid outage since {since_txt}: the car powers the home at "
            f"{words.power(g.get('backup_w'))}, down to {oc.floor_soc_percent:g} %"
        )
    elif state == "unknown":
        text = "grid state unknown: " + ", ".join(g.get("unknown_sources") or []) + " silent"
    else:
        text = f"grid normal; backup ready down to {oc.floor_soc_percent:g} %"
    return {
        "state": state,
        "outage": bool(g.get("outage")),
        "since": since,
        "backup_w": g.get("backup_w"),
        "home_w": g.get("home_w"),
        "backup_enabled": oc.enabled,
        "floor_soc_percent": oc.floor_soc_percent,
        "text": text,
    }


def notifications_view(src: Sources, limit: int = FEED_LENGTH) -> list[dict[str, Any]]:
    tz, now = src.cfg.gateway.tz, src.clock.now()
    return [
        {
            "at": n["at"],
            "when": words.local(datetime.fromisoformat(n["at"]), tz, now),
            "kind": n["kind"],
            "level": n["level"],
            "message": n["message"],
        }
        for n in src.store.recent_notifications(limit)
    ]


def note_view(src: Sources, n: Notification) -> dict[str, Any]:
    return {
        "at": n.at.isoformat(),
        "when": words.local(n.at, src.cfg.gateway.tz, src.clock.now()),
        "kind": n.kind,
        "level": n.level,
        "message": n.message,
    }


def preferences_view(src: Sources) -> dict[str, Any]:
    p = src.policy
    return {
        "v2g_enabled": bool(p.preference("v2g_enabled")),
        "v2h_only": bool(p.preference("v2h_only")),
        "discharge_above_per_kwh": p.preference("discharge_above_per_kwh"),
    }


def status_view(src: Sources, money: dict[str, Any]) -> dict[str, Any]:
    now = src.clock.now()
    snap = src.store.snapshot(now)
    log = src.store.dispatch_log(max(20, 3 * len(src.cfg.vehicles)))
    return {
        "gateway_id": src.cfg.gateway.id,
        "version": __version__,
        "now": now.isoformat(),
        "now_text": words.local(now, src.cfg.gateway.tz),
        "currency": src.cfg.prices.currency,
        "vehicles": [vehicle_view(src, v, snap, log) for v in src.cfg.vehicles],
        "preferences": preferences_view(src),
        "grid": grid_view(src),
        "prices": src.prices_status(),
        "chargers_online": len(src.connected()),
        "chargers": len(src.cfg.chargers),
        "money": money,
    }
