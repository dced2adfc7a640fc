"""Lenient reading of charger frames: what field firmware sends that the 2.0.1 schema refuses.

Real chargers add vendor properties, send numbers as strings, report vendor measurands and
reasons outside the enums, and mix in OCPP 2.1 fields. Refusing those frames stops a working
charger; so each schema failure of a known kind is repaired (or the value kept aside while the
rest is checked) and the frame checked again, until it passes or a failure no rule covers is left
(that one still gets its CALLERROR). Values dispatch relies on stay strict: SoC, timestamps and
energy registers are checked where they are read (meter.py, timestamps.py), and a string that is
not a number stays an error.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fastjsonschema

from v2g_gateway.csms import frames
from v2g_gateway.csms.frames import Call, FrameError

_MAX_PASSES = 64
# Enum-valued keys whose unknown values are kept (handlers treat an unknown value as "other").
_REASONS = {"triggerReason", "stoppedReason", "reason"}
_VENDOR_ENUMS = {"context", "location", "phase"}
_V21_VALUES = {"requestedEnergyTransfer"}
# Properties of OCPP 2.1 that a 2.0.1 session may carry; kept for the handler (not validated).
_V21_KEPT = {"v2xChargingParameters"}
_V21_FIELDS = _V21_KEPT | {
    "derChargingParameters",
    "evEnergyOffer",
    "availableEnergyTransfer",
    "controlMode",
    "mobilityNeedsMode",
    "tariffId",
    "costDetails",
    "transactionLimit",
    "operationMode",
    "preconditioningRequest",
    "numberOfPhasesUsed",
    "evseSleep",
}
# OCPP 1.6 connector states some 2.0.1 firmware still reports.
_V16_STATUS = {
    "Preparing": "Occupied",
    "Charging": "Occupied",
    "SuspendedEV": "Occupied",
    "SuspendedEVSE": "Occupied",
    "Finishing": "Occupied",
}
# Strings never shortened: an id cut short could merge two different ids.
_NO_TRUNCATE = {"idToken", "transactionId", "remoteStartId", "evccid"}
_BOOT_DEFAULTS: dict[str, Any] = {
    "chargingStation": {},
    "model": "unknown",
    "vendorName": "unknown",
    "reason": "Unknown",
}


@dataclass(slots=True)
class Lenient:
    """The payload handlers get, and each (kind, where) that needed leniency."""

    payload: dict[str, Any]
    quirks: list[tuple[str, str]] = field(default_factory=list)


Path = tuple[str | int, ...]


def _concrete(payload: Any, names: list[str]) -> Path | None:
    """fastjsonschema's path names (after 'data') as keys and list indices, or None."""
    out: list[str | int] = []
    node = payload
    for name in names:
        if isinstance(node, list) and name.isdigit() and int(name) < len(node):
            out.append(int(name))
            node = node[int(name)]
        elif isinstance(node, dict) and name in node:
            out.append(name)
            node = node[name]
        else:
            return None
    return tuple(out)


def _like(node: Any, pattern: Path, prefix: Path = ()) -> Iterator[Path]:
    """Every path with the shape of `pattern` (list indices as wildcards): sibling entries
    broken the same way are repaired in one pass."""
    if not pattern:
        yield prefix
        return
    head, rest = pattern[0], pattern[1:]
    if isinstance(head, int):
        if isinstance(node, list):
            for i, item in enumerate(node):
                yield from _like(item, rest, (*prefix, i))
    elif isinstance(node, dict) and head in node:
        yield from _like(node[head], rest, (*prefix, head))


def _get(payload: Any, path: Path) -> Any:
    for part in path:
        payload = payload[part]
    return payload


def _parent(payload: Any, path: Path) -> tuple[Any, str | int]:
    return _get(payload, path[:-1]), path[-1]


def _where(action: str, path: Path) -> str:
    return f"{action}: " + ("/".join(str(p) for p in path) or "payload")


def _number(text: str, integer: bool) -> float | int | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    if integer:
        return int(value) if value.is_integer() else None
    return int(value) if value.is_integer() and "." not in text else value


class _Repair:
    """One frame's repairs; `kept` holds values set aside to put back once the frame passes.
    In an answer (`answer`), overlong strings are kept whole: they are only read, never stored."""

    def __init__(self, action: str, payload: dict[str, Any], answer: bool = False) -> None:
        self.action = action
        self.answer = answer
        self.payload = payload
        self.kept: list[tuple[Path, Any]] = []
        self.quirks: list[tuple[str, str]] = []

    def fix(self, exc: fastjsonschema.JsonSchemaValueException) -> bool:
        path = _concrete(self.payload, [n for n in exc.path[1:]])
        if path is None:
            return False
        definition = exc.definition if isinstance(exc.definition, dict) else {}
        rule = str(exc.rule)
        done = False
        for p in _like(self.payload, path):
            done = self._one(rule, p, definition) or done
        return done

    def _note(self, kind: str, path: Path) -> None:
        self.quirks.append((kind, _where(self.action, path)))

    def _one(self, rule: str, path: Path, definition: dict[str, Any]) -> bool:
        value = _get(self.payload, path)
        key = path[-1] if path else ""
        if rule == "additionalProperties" and isinstance(value, dict):
            allowed = set(definition.get("properties", {}))
            extra = [k for k in value if k not in allowed]
            for k in extra:
                kind = "OCPP 2.1 field" if k in _V21_FIELDS else "unknown property"
                self._note(kind, (*path, k))
                if k in _V21_KEPT:
                    self.kept.append(((*path, k), value[k]))
                del value[k]
            return bool(extra)
        if rule == "type":
            return self._retype(path, value, str(definition.get("type")))
        if rule == "enum" and isinstance(value, str) and isinstance(key, str):
            return self._enum(path, key, value, definition)
        if (
            rule == "maxLength"
            and isinstance(value, str)
            and key not in _NO_TRUNCATE
            and len(value) > int(definition["maxLength"])
        ):
            parent, k = _parent(self.payload, path)
            if self.answer:
                self.kept.append((path, value))
            parent[k] = value[: int(definition["maxLength"])]
            self._note("string too long", path)
            return True
        if rule == "required" and self.action == "BootNotification" and isinstance(value, dict):
            missing = [k for k in definition.get("required", ()) if k not in value]
            for k in missing:
                value[k] = copy.deepcopy(_BOOT_DEFAULTS.get(k, "unknown"))
                self._note("missing boot field", (*path, k))
            return bool(missing)
        return False

    def _retype(self, path: Path, value: Any, want: str) -> bool:
        parent, k = _parent(self.payload, path) if path else (None, "")
        if parent is None:
            return False
        if value is None and isinstance(parent, dict):
            del parent[k]  # null for an absent optional field; if required, that error follows
            self._note("null for an absent field", path)
            return True
        if want in ("number", "integer") and isinstance(value, str):
            number = _number(value, want == "integer")
            if number is None:
                return False
            parent[k] = number
            self._note("number as string", path)
            return True
        if want == "integer" and isinstance(value, float) and value.is_integer():
            parent[k] = int(value)
            self._note("decimal for an integer", path)
            return True
        if want == "string" and isinstance(value, int | float) and not isinstance(value, bool):
            parent[k] = str(value)
            self._note("number for a string", path)
            return True
        if want == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
            parent[k] = value.lower() == "true"
            self._note("boolean as string", path)
            return True
        return False

    def _enum(self, path: Path, key: str, value: str, definition: dict[str, Any]) -> bool:
        parent, k = _parent(self.payload, path)
        options = definition.get("enum") or ()
        if not options or value in options:
            return False
        if key == "connectorStatus" and value in _V16_STATUS:
            parent[k] = _V16_STATUS[value]
            self._note("OCPP 1.6 connector status", path)
            return True
        if key == "chargingState":
            del parent[k]  # unknown state: as if not reported
            self._note("unknown charging state", path)
            return True
        if key == "measurand":
            kind = "vendor measurand"
        elif key in _REASONS:
            kind = "out-of-enum reason"
        elif key in _VENDOR_ENUMS:
            kind = "vendor enum value"
        elif key in _V21_VALUES:
            kind = "OCPP 2.1 value"
        else:
            return False
        self.kept.append((path, value))
        parent[k] = options[0]  # a placeholder while the rest is checked
        self._note(kind, path)
        return True


def accept_answer(
    action: str, payload: dict[str, Any], strict: bool, version: str = frames.V201
) -> Lenient:
    """A CALLRESULT payload read leniently; FrameError for what no leniency covers."""
    problem = frames.schema_problem(frames.CALLRESULT, action, payload, version)
    if problem is None:
        return Lenient(payload)
    if strict:
        raise FrameError("FormatViolation", problem)
    repair = _Repair(action, copy.deepcopy(payload), answer=True)
    validator = frames.validator(frames.CALLRESULT, action, version)
    for _ in range(_MAX_PASSES):
        try:
            validator(repair.payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            if not repair.fix(exc):
                break
            continue
        for path, value in repair.kept:
            parent, k = _parent(repair.payload, path)
            parent[k] = value
        return Lenient(repair.payload, repair.quirks)
    raise FrameError("FormatViolation", problem)


def accept(call: Call, strict: bool, version: str = frames.V201) -> Lenient:
    """The payload to handle, or FrameError for what no leniency covers (or anything in strict
    mode)."""
    try:
        frames.validate_request(call, version)
        return Lenient(call.payload)
    except FrameError:
        if strict:
            raise
    repair = _Repair(call.action, copy.deepcopy(call.payload))
    validator = frames.validator(frames.CALL, call.action, version)
    for _ in range(_MAX_PASSES):
        try:
            validator(repair.payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            if not repair.fix(exc):
                break
            continue
        frames.validate_request(Call(call.unique_id, call.action, repair.payload), version)
        for path, value in repair.kept:
            parent, k = _parent(repair.payload, path)
            parent[k] = value
        return Lenient(repair.payload, repair.quirks)
    frames.validate_request(Call(call.unique_id, call.action, repair.payload), version)
    raise FrameError("FormatViolation", f"{call.action}: could not be read", call.unique_id)


def v2x_powers(params: Any) -> dict[str, float]:
    """maxChargePower / maxDischargePower (W) of an OCPP 2.1 v2xChargingParameters object,
    read only where they are plain non-negative numbers (it is not schema-checked)."""
    out: dict[str, float] = {}
    if not isinstance(params, dict):
        return out
    for key in ("maxChargePower", "maxDischargePower"):
        value = params.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e6:
            out[key] = float(value)
    return out
