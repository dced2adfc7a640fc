"""What the user wants, as changes to stored overrides and preferences.

MQTT commands and the CLI call these; dispatch reads the result from the store. Validation happens
here so every entry point gets the same rules and the same error sentences.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from v2g_gateway.clock import Clock
from v2g_gateway.config import WEEKDAYS, Config, parse_hhmm
from v2g_gateway.model import Notification, Override, OverrideKind
from v2g_gateway.store import Store

MAX_OVERRIDE = timedelta(days=7)
DEFAULT_OVERRIDE = timedelta(hours=4)


class PolicyError(ValueError):
    """A user request that cannot be honoured; the message says why."""


# Preference keys a user may change at run time, with their validators.
def _number(v: Any) -> bool:
    """A real, finite JSON number (not a bool, not inf or NaN)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer beyond any float
        return False


def _percent(v: Any) -> float:
    if not _number(v) or not 0 <= v <= 100:
        raise PolicyError(f"expected a percentage 0..100, got {v!r}")
    return float(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise PolicyError(f"expected true or false, got {v!r}")
    return v


def _price_or_none(v: Any) -> float | None:
    if v is None:
        return None
    if not _number(v) or not -10 <= v <= 100:
        raise PolicyError(f"expected a price per kWh (or null), got {v!r}")
    return float(v)


def _positive(v: Any) -> float:
    if not _number(v) or v <= 0 or v > 1e6:
        raise PolicyError(f"expected a positive number, got {v!r}")
    return float(v)


def _hhmm_or_none(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise PolicyError(f"expected a time HH:MM, got {v!r:.40}")
    try:
        parse_hhmm(v)
    except ValueError as exc:
        raise PolicyError(str(exc)) from None
    return str(v)


def _charge_mode(v: Any) -> str:
    from v2g_gateway.dispatch.site_types import ChargeMode

    try:
        return ChargeMode.parse(str(v)).value
    except ValueError:
        known = [m.value for m in ChargeMode]
        raise PolicyError(f"unknown charge mode {v!r} (known: {known})") from None


def _weekly_or_none(v: Any) -> list[dict[str, Any]] | None:
    """A weekly departure plan: [{"days": ["mon", ...], "time": "07:30", "target_soc_percent":
    80}, ...], at most 14 entries; null goes back to the config's."""
    if v is None:
        return None
    if not isinstance(v, list) or len(v) > 14:
        raise PolicyError(f"expected a list of at most 14 departures (or null), got {v!r:.80}")
    out: list[dict[str, Any]] = []
    for i, d in enumerate(v):
        if not isinstance(d, dict) or set(d) - {"days", "time", "target_soc_percent"}:
            raise PolicyError(f"departure {i}: expected days, time and target_soc_percent")
        days = d.get("days", list(WEEKDAYS))
        if not isinstance(days, list) or not days or any(x not in WEEKDAYS for x in days):
            raise PolicyError(f"departure {i}: days must be a list of {list(WEEKDAYS)}")
        time = _hhmm_or_none(d.get("time"))
        if time is None:
            raise PolicyError(f"departure {i}: time is required (HH:MM)")
        target = _percent(d.get("target_soc_percent", 80))
        out.append(
            {
                "days": sorted(set(days), key=WEEKDAYS.index),
                "time": time,
                "target_soc_percent": target,
            }
        )
    return out


PREFERENCE_KEYS: dict[str, Callable[[Any], Any]] = {
    "reserve_soc_percent": _percent,
    "target_soc_percent": _percent,
    "departure_time": _hhmm_or_none,
    "departures": _weekly_or_none,
    "discharge_above_per_kwh": _price_or_none,
    "v2g_enabled": _bool,
    "v2h_only": _bool,
    "max_cycles_per_day": _positive,
    "charge_mode": _charge_mode,
}
PER_VEHICLE = {
    "reserve_soc_percent",
    "target_soc_percent",
    "departure_time",
    "departures",
    "charge_mode",
}


class Policy:
    def __init__(self, cfg: Config, store: Store, clock: Clock) -> None:
        self._cfg = cfg
        self._store = store
        self._clock = clock

    def _vehicle(self, vehicle_id: str | None) -> str:
        ids = [v.id for v in self._cfg.vehicles]
        if vehicle_id is None:
            if len(ids) == 1:
                return ids[0]
            raise PolicyError(f"say which vehicle (known: {ids})")
        if vehicle_id not in ids:
            raise PolicyError(f"unknown vehicle {vehicle_id!r} (known: {ids})")
        return vehicle_id

    def _until(self, until: datetime | None, minutes: float | None) -> datetime:
        now = self._clock.now()
        if until is not None and minutes is not None:
            raise PolicyError("give either until or minutes, not both")
        if minutes is not None:
            if not _number(minutes) or minutes <= 0:
                raise PolicyError(f"minutes must be positive, got {minutes}")
            if minutes > MAX_OVERRIDE.total_seconds() / 60:
                raise PolicyError("an override may last at most 7 days")
            until = now + timedelta(minutes=minutes)
        if until is None:
            until = now + DEFAULT_OVERRIDE
        if until.tzinfo is None:
            raise PolicyError("until needs a time zone (ISO 8601 with offset)")
        if until <= now:
            raise PolicyError(f"until {until.isoformat()} is in the past")
        if until - now > MAX_OVERRIDE:
            raise PolicyError("an override may last at most 7 days")
        return until

    def override(
        self,
        kind: OverrideKind,
        vehicle_id: str | None = None,
        *,
        soc_percent: float | None = None,
        power_w: float | None = None,
        until: datetime | None = None,
        minutes: float | None = None,
    ) -> Override:
        """Charge now / discharge now / hold / release: wins over the plan until it expires."""
        vid = self._vehicle(vehicle_id)
        vcfg = self._cfg.vehicle(vid)
        assert vcfg is not None
        if soc_percent is not None:
            soc_percent = _percent(soc_percent)
        if power_w is not None and kind in (OverrideKind.HOLD, OverrideKind.RELEASE):
            raise PolicyError(f"{kind.value} takes no power_w (it is 0 W, or the charger's own)")
        if power_w is not None and (not _number(power_w) or power_w <= 0):
            # The kind says the direction; the number is a magnitude (W into or out of the car).
            raise PolicyError(f"power_w must be positive (a magnitude in W), got {power_w!r}")
        if kind == OverrideKind.DISCHARGE_NOW:
            floor = max(vcfg.min_soc_percent, self.reserve_percent(vid))
            if soc_percent is None:
                soc_percent = floor
            elif soc_percent < floor:
                raise PolicyError(
                    f"cannot discharge below the reserve of {floor:g} % (asked {soc_percent:g} %)"
                )
        if kind == OverrideKind.CHARGE_NOW and soc_percent is None:
            soc_percent = vcfg.max_soc_percent
        now = self._clock.now()
        o = Override(
            override_id=uuid.uuid4().hex[:12],
            vehicle_id=vid,
            kind=kind,
            created_at=now,
            expires_at=self._until(until, minutes),
            target_soc_percent=soc_percent,
            power_w=power_w,
        )
        self._store.cancel_overrides(vid, now)
        self._store.put_override(o)
        self._store.notify(
            Notification(
                kind="override_accepted",
                message=f"{kind.value.replace('_', ' ')} for {vid} until "
                f"{o.expires_at.astimezone(self._cfg.gateway.tz):%a %H:%M}",
                at=now,
                vehicle_id=vid,
                data={
                    "override_id": o.override_id,
                    "kind": kind.value,
                    "expires_at": o.expires_at.isoformat(),
                    "soc_percent": soc_percent,
                },
            )
        )
        return o

    def reset_discharge(self, charger_id: str) -> None:
        """Forget that a charger refused to discharge: it is asked again at the next chance."""
        if self._cfg.charger(charger_id) is None:
            known = [c.id for c in self._cfg.chargers]
            raise PolicyError(f"unknown charger {charger_id!r} (known: {known})")
        state = self._store.charger_state(charger_id)
        now = self._clock.now()
        before = None if state is None else state.discharge
        if state is not None:
            self._store.set_discharge_capability(charger_id, state.discharge.reset())
        self._store.notify(
            Notification(
                kind="discharge_capability_reset",
                message=f"charger {charger_id}: discharging will be tried again"
                + ("" if before is None or before.reason is None else f" (was: {before.reason})"),
                at=now,
                charger_id=charger_id,
            )
        )

    def cancel(self, vehicle_id: str | None = None) -> int:
        vid = self._vehicle(vehicle_id)
        now = self._clock.now()
        gone = self._store.cancel_overrides(vid, now)
        self._store.notify(
            Notification(
                kind="override_cancelled",
                message=f"automation resumed for {vid}"
                if gone
                else f"no override was active for {vid}",
                at=now,
                vehicle_id=vid,
                data={"cancelled": [o.override_id for o in gone]},
            )
        )
        return len(gone)

    def set_preference(self, key: str, value: Any, vehicle_id: str | None = None) -> Any:
        if key not in PREFERENCE_KEYS:
            raise PolicyError(f"unknown preference {key!r} (known: {sorted(PREFERENCE_KEYS)})")
        clean = PREFERENCE_KEYS[key](value)
        stored_key = key
        if key in PER_VEHICLE:
            vid = self._vehicle(vehicle_id)
            vcfg = self._cfg.vehicle(vid)
            assert vcfg is not None
            if (
                key == "reserve_soc_percent"
                and isinstance(clean, float)
                and not vcfg.min_soc_percent <= clean <= vcfg.max_soc_percent
            ):
                raise PolicyError(
                    f"reserve must be between {vcfg.min_soc_percent:g} and "
                    f"{vcfg.max_soc_percent:g} %, got {clean:g}"
                )
            stored_key = f"{vid}.{key}"
        now = self._clock.now()
        lowered = None
        if key == "reserve_soc_percent" and isinstance(clean, float):
            before = self.reserve_percent(vid)
            lowered = (before, vid) if clean < before else None
        self._store.set_preference(stored_key, clean, now)
        if lowered is not None:
            self._tell_lowered(lowered[1], lowered[0], clean, now)
        self._store.notify(
            Notification(
                kind="preference_changed",
                message=f"{stored_key} set to {clean}",
                at=now,
                vehicle_id=vehicle_id,
                data={"key": key, "value": clean},
            )
        )
        return clean

    def _tell_lowered(self, vid: str, before: float, after: float, now: datetime) -> None:
        """A lower floor lets V2G take more of the car: say so loudly, whoever asked."""
        vcfg = self._cfg.vehicle(vid)
        minimum = vcfg.min_soc_percent if vcfg else 0.0
        self._store.notify(
            Notification(
                kind="reserve_lowered",
                message=f"reserve of {vid} lowered from {before:g} % to {after:g} %: "
                f"discharging may now go down to {after:g} % (the car's own minimum is "
                f"{minimum:g} %)",
                at=now,
                level="warning",
                vehicle_id=vid,
                data={
                    "before_percent": before,
                    "after_percent": after,
                    "min_soc_percent": minimum,
                },
            )
        )

    # ------------------------------------------------------------ effective values

    def preference(self, key: str, vehicle_id: str | None = None) -> Any:
        """The user's run-time value if set, else the config's."""
        prefs = self._store.preferences()
        if key in PER_VEHICLE and vehicle_id is not None and f"{vehicle_id}.{key}" in prefs:
            return prefs[f"{vehicle_id}.{key}"]
        if key in prefs and key not in PER_VEHICLE:
            return prefs[key]
        if key == "reserve_soc_percent" and vehicle_id is not None:
            v = self._cfg.vehicle(vehicle_id)
            return None if v is None else v.reserve_soc_percent
        if key == "charge_mode" and vehicle_id is not None:
            v = self._cfg.vehicle(vehicle_id)
            return "smart" if v is None else v.charge_mode
        return getattr(self._cfg.preferences, key, None)

    def reserve_percent(self, vehicle_id: str) -> float:
        value = self.preference("reserve_soc_percent", vehicle_id)
        assert isinstance(value, int | float)
        return float(value)
