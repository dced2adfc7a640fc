"""JSON bodies of the retained state topics, built from one snapshot.

Field names carry their unit (soc_percent, power_w, energy_wh) and times are ISO 8601, so a
dashboard author never has to guess; docs/mqtt.md shows each body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from v2g_gateway.config import WEEKDAYS, Config, parse_hhmm
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.model import (
    ChargerState,
    Notification,
    Override,
    OverrideKind,
    Snapshot,
    VehicleState,
)
from v2g_gateway.soc import PlugSession, SocReading

# Plan slots below this power count as idle (solver noise, not an action).
_IDLE_KW = 0.05


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=str, allow_nan=False).encode()


def soc_body(
    r: SocReading | None, snap: Snapshot, max_age: timedelta, session: str | None
) -> dict[str, Any]:
    """A SoC with its provenance: where from, how old (by the gateway's clock), whether usable."""
    if r is None:
        return {"soc_percent": None, "soc_source": None, "soc_age_s": None, "soc_state": "unknown"}
    age = r.age_s(snap.taken_mono)
    if r.usable(snap.taken_mono, max_age, session):
        state = "fresh"
    elif not r.age_known:
        state = "age unknown"
    elif session is None:
        state = "not plugged in"
    elif r.session_id != session:
        state = "not this plug-in"
    else:
        state = "stale"
    return {
        "soc_percent": r.percent,
        "soc_source": r.source.value,
        "soc_age_s": round(age) if r.age_known else None,
        "soc_state": state,
    }


def session_body(
    s: PlugSession | None, snap: Snapshot, max_age: timedelta
) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "session_id": s.session_id,
        "vehicle_id": s.vehicle_id,
        "guest": s.guest,
        "identified_by": s.identified_by,
        "started_at": iso(s.started_at),
        **soc_body(s.soc, snap, max_age, s.session_id),
    }


def charger_body(
    cfg: Config, ch: ChargerState, grid_outage: bool, snap: Snapshot | None = None
) -> dict[str, Any]:
    ccfg = cfg.charger(ch.charger_id)
    max_age = timedelta(minutes=cfg.preferences.soc_max_age_minutes)
    snap = snap or Snapshot(datetime.now(UTC), {}, {})
    evses = [
        {
            "evse_id": ev.evse_id,
            "status": None if ev.status is None else ev.status.value,
            "plugged": ev.plugged,
            "transaction_id": ev.transaction_id,
            "charging_state": ev.charging_state,
            "power_w": ev.power_w,
            "energy_import_wh": ev.energy_import_wh,
            "energy_export_wh": ev.energy_export_wh,
            "voltage_v": ev.voltage_v,
            "updated_at": iso(ev.updated_at),
            "session": session_body(ev.session, snap, max_age),
            "dispatch": snap.dispatch.get((ch.charger_id, ev.evse_id)),
        }
        for ev in sorted(ch.evses.values(), key=lambda e: e.evse_id)
    ]
    evs = list(ch.evses.values())
    powers = [e.power_w for e in evs if e.power_w is not None]
    power = sum(powers) if powers else None
    imports = [e.energy_import_wh for e in evs if e.energy_import_wh is not None]
    exports = [e.energy_export_wh for e in evs if e.energy_export_wh is not None]
    statuses = [e.status.value for e in evs if e.status is not None]
    return {
        "charger_id": ch.charger_id,
        "online": ch.online,
        "status": statuses[0] if len(statuses) == 1 else ("Multiple" if statuses else None),
        "last_seen": iso(ch.last_seen),
        "booted_at": iso(ch.booted_at),
        "vendor": ch.vendor,
        "model": ch.model,
        "serial": ch.serial,
        "firmware": ch.firmware,
        "supports_discharge": ch.supports_discharge,
        "discharge_capability": ch.discharge.to_json(),
        "capabilities": ch.capabilities,
        "plugged": any(e.plugged for e in evs),
        "charging": power is not None and power > 0,
        "discharging": power is not None and power < 0,
        "power_w": power,
        "energy_import_wh": sum(imports) if imports else None,
        "energy_export_wh": sum(exports) if exports else None,
        "max_charge_w": None if ccfg is None else ccfg.max_charge_w,
        "max_discharge_w": None if ccfg is None else ccfg.max_discharge_w,
        "grid_outage": grid_outage,
        "evses": evses,
    }


def _slot_action(slot: dict[str, Any]) -> str:
    if float(slot.get("discharge_kw") or 0) > _IDLE_KW:
        return "discharge"
    if float(slot.get("charge_kw") or 0) > _IDLE_KW:
        return "charge"
    return "idle"


_OVERRIDE_ACTION = {
    OverrideKind.CHARGE_NOW: "charge",
    OverrideKind.DISCHARGE_NOW: "discharge",
    OverrideKind.HOLD: "hold",
    OverrideKind.RELEASE: "release",
}


@dataclass(frozen=True, slots=True)
class Live:
    """What is true right now, which a plan made earlier may not know."""

    plugged: bool = True
    power_w: float | None = None
    override: Override | None = None
    grid_outage: bool = False


def _action(action: str, at: datetime | None, power_w: float | None, reason: str) -> dict[str, Any]:
    return {
        "action": action,
        "at": iso(at),
        "power_w": 0.0 if power_w is None else round(power_w, 1),
        "reason": reason,
    }


def next_action(
    plan: dict[str, Any] | None, now: datetime, live: Live | None = None
) -> dict[str, Any]:
    """What the car does now or next: the live state first (unplugged, a grid outage, a user
    override), then the plan's current or next non-idle slot."""
    if live is not None:
        if not live.plugged:
            return _action("unplugged", None, 0.0, "not plugged in")
        if live.grid_outage:
            return _action("backup", now, live.power_w, "grid outage: powering the home")
        o = live.override
        if o is not None and o.active(now):
            word = o.kind.value.replace("_", " ")
            power = live.power_w
            if power is None and o.power_w is not None:
                power = -o.power_w if o.kind == OverrideKind.DISCHARGE_NOW else o.power_w
            return _action(
                _OVERRIDE_ACTION[o.kind], now, power, f"{word} until {o.expires_at.isoformat()}"
            )
    idle = {"action": "idle", "at": None, "power_w": 0.0, "reason": None}
    for slot in (plan or {}).get("slots", []):
        try:
            end = datetime.fromisoformat(slot["end"])
            start = datetime.fromisoformat(slot["start"])
        except (KeyError, TypeError, ValueError):
            continue
        if end <= now:
            continue
        action = _slot_action(slot)
        if action != "idle":
            kw = float(slot.get("charge_kw") or 0) - float(slot.get("discharge_kw") or 0)
            return {
                "action": action,
                "at": max(start, now).isoformat(),
                "power_w": round(kw * 1000.0, 1),
                "reason": slot.get("reason"),
            }
    return idle


def _soc_path(
    plan: dict[str, Any] | None, battery_kwh: float
) -> list[tuple[datetime, datetime, float | None, float]]:
    """(start, end, SoC at start % or None when unknown, SoC at end %) of each readable slot."""
    out: list[tuple[datetime, datetime, float | None, float]] = []
    prev: float | None = None
    for slot in (plan or {}).get("slots", []):
        try:
            start = datetime.fromisoformat(slot["start"])
            end = datetime.fromisoformat(slot["end"])
            soc_end = 100.0 * float(slot["soc_end_kwh"]) / battery_kwh
            raw = slot.get("soc_start_kwh")
            soc_start = 100.0 * float(raw) / battery_kwh if raw is not None else prev
        except (KeyError, TypeError, ValueError):
            continue
        out.append((start, end, soc_start, soc_end))
        prev = soc_end
    return out


def minutes_to_target(
    plan: dict[str, Any] | None,
    soc: float | None,
    target: float | None,
    battery_kwh: float,
    now: datetime,
    live: Live | None = None,
    charge_efficiency: float = 0.95,
) -> float | None:
    """When the car reaches its target, from its SoC now: the plan's path moved to where the car
    really is, else the power it charges at right now; None when unknown or not in sight."""
    if target is None or soc is None or (live is not None and not live.plugged):
        return None
    if soc >= target:
        return 0.0
    path = [p for p in _soc_path(plan, battery_kwh) if p[1] > now]
    if path:
        start, end, first, b = path[0]
        offset = 0.0  # how far the car is from where the plan thought it would be now
        if first is not None:
            frac = 0.0 if end <= start or now <= start else (now - start) / (end - start)
            offset = soc - (first + (b - first) * frac)
        a = soc
        for start, end, s0, s1 in path:
            a = a if s0 is None else s0 + offset
            b = s1 + offset
            if b >= target - 0.5:
                share = 1.0 if b <= a else min(1.0, max(0.0, (target - a) / (b - a)))
                at = max(start + (end - start) * share, now)
                return round((at - now).total_seconds() / 60.0, 1)
            a = b
    if live is not None and live.power_w is not None and live.power_w > 0:
        kwh = (target - soc) / 100.0 * battery_kwh
        return round(kwh / (live.power_w / 1000.0 * charge_efficiency) * 60.0, 1)
    return None


def vehicle_body(
    cfg: Config,
    policy: Policy,
    v: VehicleState,
    snap: Snapshot,
    plan: dict[str, Any] | None,
) -> dict[str, Any]:
    now = snap.taken_at
    vcfg = cfg.vehicle(v.vehicle_id)
    override = next((o for o in snap.overrides if o.vehicle_id == v.vehicle_id), None)
    target = policy.preference("target_soc_percent", v.vehicle_id)
    if target is None:
        deps = [d for d in cfg.preferences.departures if d.vehicle in (None, v.vehicle_id)]
        target = deps[0].target_soc_percent if deps else None
    power = v.power_w if v.plugged else None
    state = "unplugged"
    if v.plugged:
        state = "idle"
        if power is not None and power > 0:
            state = "charging"
        elif power is not None and power < 0:
            state = "discharging"
    battery_kwh = vcfg.battery_kwh if vcfg else (v.capacity_wh or 0) / 1000.0 or 1.0
    live = Live(
        plugged=v.plugged,
        power_w=power,
        override=override,
        grid_outage=snap.grid_outage,
    )
    max_age = timedelta(minutes=cfg.preferences.soc_max_age_minutes)
    sid = None if v.session is None else v.session.session_id
    dispatch = (
        snap.dispatch.get((v.charger_id, v.evse_id))
        if v.charger_id is not None and v.evse_id is not None
        else None
    )
    return {
        "vehicle_id": v.vehicle_id,
        "make": vcfg.make if vcfg else None,
        "model": vcfg.model if vcfg else None,
        "year": vcfg.year if vcfg else None,
        "battery_kwh": battery_kwh,
        **soc_body(v.shown_soc, snap, max_age, sid),
        "soc_at": iso(v.soc_at),
        "session_id": sid,
        "identified_by": None if v.session is None else v.session.identified_by,
        "dispatch": dispatch,
        "plugged": v.plugged,
        "charger_id": v.charger_id,
        "state": state,
        "charging": state == "charging",
        "discharging": state == "discharging",
        "power_w": power,
        "mode": "auto" if override is None else override.kind.value,
        "override": None
        if override is None
        else {
            "override_id": override.override_id,
            "kind": override.kind.value,
            "expires_at": iso(override.expires_at),
            "soc_percent": override.target_soc_percent,
            "power_w": override.power_w,
        },
        "reserve_soc_percent": policy.reserve_percent(v.vehicle_id) if vcfg else None,
        "target_soc_percent": target,
        "departure_time": departure_hhmm(cfg, policy, v.vehicle_id, now),
        "departure_at": iso(v.departure_time),
        "energy_request_wh": v.energy_request_wh,
        "next_action": next_action(plan, now, live),
        "minutes_to_target": minutes_to_target(
            plan,
            v.soc_percent,
            target,
            battery_kwh,
            now,
            live,
            vcfg.charge_efficiency if vcfg else 0.95,
        ),
    }


def departure_hhmm(cfg: Config, policy: Policy, vehicle_id: str, now: datetime) -> str | None:
    """The departure the user set (Home Assistant's text entity) or else the configured one that
    comes next, as local HH:MM."""
    pref = policy.preference("departure_time", vehicle_id)
    if isinstance(pref, str):
        return pref
    local = now.astimezone(cfg.gateway.tz)
    best: tuple[datetime, str] | None = None
    for d in cfg.preferences.departures:
        if d.vehicle not in (None, vehicle_id):
            continue
        for ahead in range(8):
            day = local.date() + timedelta(days=ahead)
            if WEEKDAYS[day.weekday()] not in d.days:
                continue
            at = datetime.combine(day, parse_hhmm(d.time), tzinfo=cfg.gateway.tz)
            if at > now:
                if best is None or at < best[0]:
                    best = (at, d.time)
                break
    return None if best is None else best[1]


def event_body(n: Notification, **extra: Any) -> dict[str, Any]:
    return {
        "kind": n.kind,
        "message": n.message,
        "level": n.level,
        "at": n.at.isoformat(),
        "charger_id": n.charger_id,
        "vehicle_id": n.vehicle_id,
        "data": n.data,
        **extra,
    }


def last_command_body(event: dict[str, Any]) -> dict[str, Any]:
    """The retained `last_command` topic: the latest command result, kept for dashboards."""
    ok = bool(event.get("ok"))
    return {
        "command": event.get("command"),
        "ok": ok,
        "outcome": "accepted" if ok else "refused",
        "message": event.get("message"),
        "at": event.get("at"),
        "request_id": event.get("request_id"),
        "vehicle_id": event.get("vehicle_id"),
        "charger_id": event.get("charger_id"),
    }
