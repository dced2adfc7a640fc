"""OCPP-J framing and schema checks done before any handler sees a frame.

The ocpp library drops unparsable frames silently and maps schema errors loosely; a charger (or
anything on the LAN) must instead get the CALLERROR the 2.0.1 RPC framework names, and the
session must survive it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fastjsonschema
from ocpp.messages import get_validator

CALL, CALLRESULT, CALLERROR = 2, 3, 4
_ACTION = re.compile(r"^[A-Za-z0-9]{1,64}$")
_MAX_ID = 36
_DESCRIPTION_MAX = 255


class FrameError(Exception):
    """A frame that earns a CALLERROR; `unique_id` is '-1' when it could not be read."""

    def __init__(
        self, code: str, description: str, unique_id: str = "-1", reply: bool = True
    ) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description[:_DESCRIPTION_MAX]
        self.unique_id = unique_id
        self.reply = reply  # False for broken CALLRESULT/CALLERROR: the spec forbids answering


@dataclass(frozen=True, slots=True)
class Call:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Result:
    unique_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Error:
    unique_id: str
    code: str
    description: str
    details: dict[str, Any] = field(default_factory=dict)


Frame = Call | Result | Error


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def parse_frame(raw: str | bytes) -> Frame:
    """Decode one websocket message into a Call, Result or Error, or raise FrameError."""
    if isinstance(raw, bytes):
        raise FrameError("RpcFrameworkError", "binary frames are not OCPP-J; send text frames")
    try:
        msg = json.loads(raw, parse_constant=_no_constants, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        raise FrameError("RpcFrameworkError", f"frame is not valid JSON: {exc}") from None
    if not isinstance(msg, list) or len(msg) < 3:
        answerable = not (isinstance(msg, list) and msg and msg[0] in (CALLRESULT, CALLERROR))
        raise FrameError(
            "RpcFrameworkError", "frame must be a JSON array [type, id, ...]", reply=answerable
        )
    type_id, unique_id = msg[0], msg[1]
    if not isinstance(unique_id, str) or not 0 < len(unique_id) <= _MAX_ID:
        raise FrameError("RpcFrameworkError", "messageId must be a string of 1-36 characters")
    if type_id == CALL:
        if len(msg) != 4:
            raise FrameError("RpcFrameworkError", "CALL must have 4 elements", unique_id)
        action, payload = msg[2], msg[3]
        if not isinstance(action, str) or not _ACTION.match(action):
            raise FrameError("NotImplemented", f"unknown action {str(action)[:64]!r}", unique_id)
        if not isinstance(payload, dict):
            raise FrameError("FormatViolation", "CALL payload must be a JSON object", unique_id)
        return Call(unique_id, action, payload)
    if type_id == CALLRESULT:
        if len(msg) != 3 or not isinstance(msg[2], dict):
            raise FrameError("FormatViolation", "malformed CALLRESULT", unique_id, reply=False)
        return Result(unique_id, msg[2])
    if type_id == CALLERROR:
        if len(msg) not in (4, 5) or not isinstance(msg[2], str):
            raise FrameError("FormatViolation", "malformed CALLERROR", unique_id, reply=False)
        details = msg[4] if len(msg) == 5 and isinstance(msg[4], dict) else {}
        return Error(unique_id, msg[2], str(msg[3]), details)
    raise FrameError(
        "MessageTypeNotSupported", f"message type {type_id!r} is not 2, 3 or 4", unique_id
    )


_SCHEMA_CODES = {
    "required": "OccurrenceConstraintViolation",
    "minItems": "OccurrenceConstraintViolation",
    "minProperties": "OccurrenceConstraintViolation",
    "maxItems": "OccurrenceConstraintViolation",
    "type": "TypeConstraintViolation",
    "additionalProperties": "FormatViolation",
    "enum": "PropertyConstraintViolation",
    "maxLength": "PropertyConstraintViolation",
    "minLength": "PropertyConstraintViolation",
    "minimum": "PropertyConstraintViolation",
    "maximum": "PropertyConstraintViolation",
    "exclusiveMinimum": "PropertyConstraintViolation",
    "exclusiveMaximum": "PropertyConstraintViolation",
    "pattern": "PropertyConstraintViolation",
}


_validators: dict[tuple[int, str, str], Callable[[Any], Any]] = {}
# The OCPP versions a session may speak (csms/versions.py picks one per connection).
V201, V21 = "2.0.1", "2.1"


def _validator(type_id: int, action: str, version: str = V201) -> Callable[[Any], Any]:
    """The official schema of `version` (2.0.1 or 2.1, as the ocpp library ships them)
    compiled to Python (fastjsonschema: ~10x jsonschema's speed).

    Raises OSError when the action has no schema. Formats are not checked, as in the ocpp
    library; timestamps are parsed (and refused) where they are used.
    """
    key = (type_id, action, version)
    compiled = _validators.get(key)
    if compiled is None:
        schema = get_validator(type_id, action, version).schema
        compiled = fastjsonschema.compile(schema, use_formats=False)
        _validators[key] = compiled
    return compiled


validator = _validator  # for leniency.py, which repairs what the schema refuses


def _problem(
    action: str, payload: Any, type_id: int = CALL, version: str = V201
) -> tuple[str, str] | None:
    """(OCPP error code, description) for a payload that breaks its schema, else None."""
    try:
        _validator(type_id, action, version)(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        code = _SCHEMA_CODES.get(str(exc.rule), "FormatViolation")
        where = str(exc.name).removeprefix("data").lstrip(".") or "payload"
        return code, f"{action}: {where}: {exc.message.removeprefix(str(exc.name) + ' ')}"
    return None


def schema_exists(action: str, request: bool = True, version: str = V201) -> bool:
    try:
        _validator(CALL if request else CALLRESULT, action, version)
    except OSError:
        return False
    return True


def validate_request(call: Call, version: str = V201) -> None:
    """Check a charger's CALL against the official schema; raise the matching FrameError."""
    problem = _problem(call.action, call.payload, CALL, version)
    if problem is not None:
        raise FrameError(problem[0], problem[1], call.unique_id)
    where = _wide_integer(call.payload)
    if where is not None:
        raise FrameError(
            "PropertyConstraintViolation",
            f"{call.action}: {where}: integer outside the 32-bit range OCPP allows",
            call.unique_id,
        )


_INT32 = 2**31


def _wide_integer(node: Any, path: str = "payload") -> str | None:
    """Where an integer beyond 32 bits hides (the schemas say 'integer' but mean int32)."""
    if isinstance(node, dict):
        for k, v in node.items():
            found = _wide_integer(v, f"{path}/{k}")
            if found:
                return found
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found = _wide_integer(v, f"{path}/{i}")
            if found:
                return found
    elif isinstance(node, int) and not isinstance(node, bool) and not -_INT32 <= node < _INT32:
        return path
    return None


def schema_problem(
    type_id: int, action: str, payload: dict[str, Any], version: str = V201
) -> str | None:
    """Why a payload breaks the `version` schema of `action`, or None (for our own frames)."""
    try:
        problem = _problem(action, payload, type_id, version)
    except OSError:
        return f"no {version} schema for {action}"
    return None if problem is None else problem[1]


def call_result(unique_id: str, payload: dict[str, Any]) -> str:
    return json.dumps([CALLRESULT, unique_id, payload], separators=(",", ":"))


def call_error(unique_id: str, code: str, description: str) -> str:
    frame = [CALLERROR, unique_id, code, description[:_DESCRIPTION_MAX], {}]
    return json.dumps(frame, separators=(",", ":"))
