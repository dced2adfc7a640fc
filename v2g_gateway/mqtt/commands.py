"""Commands under `{prefix}/{gateway}/set/...`, validated before anything changes.

Each handler either returns a result dict (what was done) or raises CommandError with a sentence
naming the field and what is wrong; PolicyError from the policy is passed through the same way.
Plain-payload topics (`set/vehicle/{id}/mode`, ...) exist so Home Assistant select, number, text
and button entities can command the gateway without templates.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from v2g_gateway import json_limits
from v2g_gateway.bus import Changed
from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.dispatch.policy import PER_VEHICLE, PREFERENCE_KEYS, Policy, PolicyError
from v2g_gateway.errors import GatewayError
from v2g_gateway.model import CommandResult, Notification, OverrideKind
from v2g_gateway.store import Store

ChargingControl = Callable[[str, bool], Awaitable[CommandResult]]

# "pause" is accepted as the everyday word for hold (0 W); "release" hands the car to the charger.
OVERRIDE_ACTIONS = ("charge_now", "discharge_now", "hold", "pause", "release", "cancel")
MODES = ("auto", "charge_now", "discharge_now", "hold", "pause", "release")
# Lasting modes of the site plan (docs/home.md): they end any override and stay until changed.
PLAN_MODES = {"smart": "smart", "pv_only": "pv_only", "pv": "pv_only", "min_pv": "min_pv",
              "min_+_pv": "min_pv", "min+pv": "min_pv", "minpv": "min_pv"}  # fmt: skip
MAX_DR_LENGTH = timedelta(hours=48)
MAX_DR_AHEAD = timedelta(days=14)  # an event starting later than this is refused
MAX_DR_EVENTS = 32  # active (not yet ended) events kept at once
MAX_DR_POWER_W = 1_000_000.0  # above any home connection, below any overflow
MAX_EVENT_ID = 100
MIN_YEAR, MAX_YEAR = 2000, 2200


class CommandError(GatewayError):
    """A command that was refused; the message says which field is wrong and why."""


def parse_json_object(payload: bytes) -> dict[str, Any]:
    try:
        body = json_limits.loads(payload)
    except json_limits.JsonTooDeep as exc:
        raise CommandError(f"payload {exc}") from None
    except ValueError as exc:  # not UTF-8 or not JSON
        raise CommandError(f"payload is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise CommandError(f"payload must be a JSON object, got {type(body).__name__}")
    return body


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed - {"request_id"})
    if extra:
        raise CommandError(f"unknown field {extra[0]!r} (allowed: {sorted(allowed)})")


def _str(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    v = body.get(key)
    if v is None:
        if required:
            raise CommandError(f"{key!r} is required")
        return None
    if not isinstance(v, str) or not v:
        raise CommandError(f"{key!r} must be a non-empty string, got {v!r}")
    return v


def _num(body: dict[str, Any], key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise CommandError(f"{key!r} must be a number, got {v!r}")
    try:
        x = float(v)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise CommandError(f"{key!r} must be a finite number, got {str(v)[:40]}")
    return x


def _time(body: dict[str, Any], key: str, *, required: bool = False) -> datetime | None:
    v = _str(body, key, required=required)
    if v is None:
        return None
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        raise CommandError(f"{key!r} must be an ISO 8601 time, got {v!r}") from None
    if t.tzinfo is None:
        raise CommandError(f"{key!r} needs a time zone offset, got {v!r}")
    try:
        utc = t.astimezone(UTC)  # year 1 or 9999 with an offset leaves the calendar
    except OverflowError:
        utc = None
    if utc is None or not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise CommandError(f"{key!r} is out of range ({MIN_YEAR}..{MAX_YEAR}), got {v!r:.60}")
    return t


def plain_value(payload: bytes) -> Any:
    """A plain payload as Home Assistant sends it: a number, ON/OFF, a word, or JSON."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError("payload is not UTF-8 text") from None
    low = text.lower()
    if low in ("on", "true"):
        return True
    if low in ("off", "false"):
        return False
    if low in ("", "none", "null"):
        return None
    try:
        return json_limits.loads(text)
    except json_limits.JsonTooDeep as exc:
        raise CommandError(f"payload {exc}") from None
    except ValueError:
        return text


class Commands:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        policy: Policy,
        clock: Clock,
        charging_control: ChargingControl | None = None,
    ) -> None:
        self._cfg = cfg
        self._store = store
        self._policy = policy
        self._clock = clock
        self._charging = charging_control

    async def handle(self, command: str, payload: bytes) -> dict[str, Any]:
        """Run the command named by the topic below `set/`; raise CommandError/PolicyError."""
        parts = command.split("/")
        if parts == ["override"]:
            return self.override(parse_json_object(payload))
        if parts == ["preference"]:
            return self.preference(parse_json_object(payload))
        if len(parts) == 2 and parts[0] == "preference":
            if parts[1] in PER_VEHICLE:
                raise CommandError(f"{parts[1]!r} is per vehicle: use set/vehicle/<id>/{parts[1]}")
            return self._set_pref(parts[1], plain_value(payload), None)
        if len(parts) == 3 and parts[0] == "vehicle":
            return self.vehicle(parts[1], parts[2], payload)
        if parts == ["charging"]:
            body = parse_json_object(payload)
            _only(body, {"charger", "action"})
            return await self.charging(_str(body, "charger"), _str(body, "action", required=True))
        if len(parts) == 3 and parts[0] == "charger" and parts[2] == "discharge":
            word = plain_value(payload)
            if word != "reset":
                raise CommandError(f"set/charger/<id>/discharge takes 'reset', got {word!r}")
            self._policy.reset_discharge(parts[1])
            return {"charger": parts[1], "discharge": "reset"}
        if len(parts) == 3 and parts[0] == "charger" and parts[2] == "charging":
            value = plain_value(payload)
            return await self.charging(parts[1], value if isinstance(value, str) else str(value))
        if parts == ["demand_response"]:
            return self.demand_response(parse_json_object(payload))
        raise CommandError(
            f"unknown command topic set/{command} (known: override, preference, "
            "preference/<key>, vehicle/<id>/<mode|reserve_soc_percent|target_soc_percent|"
            "departure_time>, charging, charger/<id>/charging, charger/<id>/discharge, "
            "demand_response)"
        )

    # ------------------------------------------------------------------ overrides

    def override(self, body: dict[str, Any]) -> dict[str, Any]:
        _only(body, {"action", "vehicle", "soc_percent", "power_w", "until", "minutes"})
        action = _str(body, "action", required=True)
        if action not in OVERRIDE_ACTIONS:
            raise CommandError(f"unknown action {action!r} (known: {list(OVERRIDE_ACTIONS)})")
        vehicle = _str(body, "vehicle")
        if action == "cancel":
            n = self._policy.cancel(vehicle)
            return {"action": "cancel", "cancelled": n}
        o = self._policy.override(
            OverrideKind.parse(action),
            vehicle,
            soc_percent=_num(body, "soc_percent"),
            power_w=_num(body, "power_w"),
            until=_time(body, "until"),
            minutes=_num(body, "minutes"),
        )
        return {
            "action": o.kind.value,
            "vehicle": o.vehicle_id,
            "override_id": o.override_id,
            "expires_at": o.expires_at.isoformat(),
            "soc_percent": o.target_soc_percent,
        }

    def vehicle(self, vehicle_id: str, field: str, payload: bytes) -> dict[str, Any]:
        if self._cfg.vehicle(vehicle_id) is None:
            known = [v.id for v in self._cfg.vehicles]
            raise CommandError(f"unknown vehicle {vehicle_id!r} (known: {known})")
        value = plain_value(payload)
        if field == "mode":
            mode = str(value).strip().lower().replace(" ", "_")
            if mode == "resume":
                mode = "auto"
            if mode in PLAN_MODES:
                done = self.override({"action": "cancel", "vehicle": vehicle_id})
                self._set_pref("charge_mode", PLAN_MODES[mode], vehicle_id)
                return {**done, "mode": PLAN_MODES[mode]}
            if mode not in MODES:
                known = [*MODES[:1], "smart", "pv_only", "min_pv", *MODES[1:]]
                raise CommandError(f"unknown mode {value!r} (known: {known} or resume)")
            if mode == "auto":
                return self.override({"action": "cancel", "vehicle": vehicle_id})
            return self.override({"action": mode, "vehicle": vehicle_id})
        if field not in PER_VEHICLE:
            raise CommandError(
                f"unknown vehicle setting {field!r} (known: mode, {', '.join(sorted(PER_VEHICLE))})"
            )
        if field == "departure_time" and value is not None and not isinstance(value, str):
            value = str(value)
        return self._set_pref(field, value, vehicle_id)

    # ------------------------------------------------------------------ preferences

    def preference(self, body: dict[str, Any]) -> dict[str, Any]:
        _only(body, {"key", "value", "vehicle"})
        key = _str(body, "key", required=True)
        assert key is not None
        if "value" not in body:
            raise CommandError("'value' is required (null clears where allowed)")
        return self._set_pref(key, body["value"], _str(body, "vehicle"))

    def _set_pref(self, key: str, value: Any, vehicle: str | None) -> dict[str, Any]:
        if key not in PREFERENCE_KEYS:
            raise CommandError(f"unknown preference {key!r} (known: {sorted(PREFERENCE_KEYS)})")
        clean = self._policy.set_preference(key, value, vehicle)
        return {"key": key, "value": clean, "vehicle": vehicle}

    # ------------------------------------------------------------------ charging

    async def charging(self, charger: str | None, action: str | None) -> dict[str, Any]:
        ids = [c.id for c in self._cfg.chargers]
        if charger is None:
            if len(ids) != 1:
                raise CommandError(f"say which charger (known: {ids})")
            charger = ids[0]
        if charger not in ids:
            raise CommandError(f"unknown charger {charger!r} (known: {ids})")
        if action not in ("start", "stop"):
            raise CommandError(f"unknown action {action!r} (known: ['start', 'stop'])")
        if self._charging is None:
            raise CommandError("starting and stopping charging is not available in this gateway")
        result = await self._charging(charger, action == "start")
        if not result.ok:
            detail = f": {result.detail}" if result.detail else ""
            raise CommandError(
                f"{action} charging on {charger} failed ({result.status.value}){detail}"
            )
        return {"charger": charger, "action": action, "status": result.status.value}

    # ------------------------------------------------------------------ demand response

    def demand_response(self, body: dict[str, Any]) -> dict[str, Any]:
        _only(body, {"event_id", "start", "end", "power_w", "price_bonus_per_kwh", "cancel"})
        drc = self._cfg.preferences.demand_response
        event_id = _str(body, "event_id", required=True)
        assert event_id is not None
        if len(event_id) > MAX_EVENT_ID:
            raise CommandError(f"'event_id' may have at most {MAX_EVENT_ID} characters")
        cancel = body.get("cancel", False)
        if not isinstance(cancel, bool):
            raise CommandError(f"'cancel' must be true or false, got {cancel!r}")
        now = self._clock.now()
        events = [
            e
            for e in self._stored_events()
            if e.get("event_id") != event_id and _ends_after(e, now)
        ]
        if cancel:
            self._save_events(events)
            self._store.notify(
                Notification(
                    kind="demand_response_cancelled",
                    message=f"demand-response event {event_id} cancelled",
                    at=now,
                    data={"event_id": event_id},
                )
            )
            return {"event_id": event_id, "cancelled": True}
        if not drc.enabled:
            raise CommandError(
                "demand response is disabled ([preferences.demand_response] enabled)"
            )
        start = _time(body, "start", required=True)
        end = _time(body, "end", required=True)
        assert start is not None and end is not None
        if end <= start:
            raise CommandError(f"'end' {end.isoformat()} must be after 'start' {start.isoformat()}")
        if end <= now:
            raise CommandError(f"'end' {end.isoformat()} is in the past")
        if end - start > MAX_DR_LENGTH:
            raise CommandError("a demand-response event may last at most 48 hours")
        if start - now > MAX_DR_AHEAD:
            raise CommandError(
                f"'start' {start.isoformat()} is more than {MAX_DR_AHEAD.days} days ahead"
            )
        if len(events) >= MAX_DR_EVENTS:
            raise CommandError(
                f"already {len(events)} active demand-response events (at most "
                f"{MAX_DR_EVENTS}): cancel one first"
            )
        power = _num(body, "power_w")
        bonus = _num(body, "price_bonus_per_kwh")
        if power is None and bonus is None:
            raise CommandError("give 'power_w' or 'price_bonus_per_kwh' (or both)")
        if power is not None and not 0 < power <= MAX_DR_POWER_W:
            raise CommandError(
                f"'power_w' must be positive (discharge power, at most {MAX_DR_POWER_W:g} W), "
                f"got {power:g}"
            )
        if power is not None and drc.max_power_w is not None and power > drc.max_power_w:
            raise CommandError(
                f"'power_w' {power:g} exceeds the allowed {drc.max_power_w:g} W "
                "([preferences.demand_response] max_power_w)"
            )
        if bonus is not None and not -10 <= bonus <= 100:
            raise CommandError(f"'price_bonus_per_kwh' out of range -10..100, got {bonus:g}")
        event = {
            "event_id": event_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "power_w": power,
            "price_bonus_per_kwh": bonus,
            "received_at": now.isoformat(),
        }
        what = f"{power:g} W" if power is not None else f"a bonus of {bonus:g} per kWh"
        # Everything that can fail is done before the event is stored: refused means not kept.
        note = Notification(
            kind="demand_response_accepted",
            message=f"demand-response event {event_id} accepted: {what} from "
            f"{start.astimezone(self._cfg.gateway.tz):%a %H:%M} to "
            f"{end.astimezone(self._cfg.gateway.tz):%H:%M}",
            at=now,
            data=event,
        )
        self._save_events([*events, event])
        self._store.notify(note)
        return event

    def _stored_events(self) -> list[dict[str, Any]]:
        raw = self._store.kv_get("demand_response")
        return [e for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []

    def _save_events(self, events: list[dict[str, Any]]) -> None:
        self._store.kv_set("demand_response", events)
        # The replanner reads kv "demand_response"; a preferences change wakes dispatch.
        self._store.changes.publish(Changed("preferences", "demand_response"))


def _ends_after(event: dict[str, Any], now: datetime) -> bool:
    try:
        return datetime.fromisoformat(str(event["end"])) > now
    except (KeyError, ValueError):
        return False


__all__ = ["ChargingControl", "CommandError", "Commands", "PolicyError", "plain_value"]
