"""Hypothesis strategies for OCPP 2.0.1 frames: schema-valid payloads with hostile values, and junk.

Payloads are drawn from the official JSON schemas shipped with the ocpp library, so every
charger-to-CSMS action is covered and a schema change is followed automatically. Values lean on
the edges the schemas leave open: unbounded integers and numbers, any unicode up to maxLength,
date-times from year 1 to 9999 or not date-times at all.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import ocpp.v201
from hypothesis import strategies as st

SCHEMAS = Path(ocpp.v201.__file__).parent / "schemas"

# Every action a charger may send to a CSMS (OCPP 2.0.1 part 2, "charging station -> CSMS").
CHARGER_ACTIONS = (
    "Authorize",
    "BootNotification",
    "ClearedChargingLimit",
    "DataTransfer",
    "FirmwareStatusNotification",
    "Get15118EVCertificate",
    "GetCertificateStatus",
    "Heartbeat",
    "LogStatusNotification",
    "MeterValues",
    "NotifyChargingLimit",
    "NotifyCustomerInformation",
    "NotifyDisplayMessages",
    "NotifyEVChargingNeeds",
    "NotifyEVChargingSchedule",
    "NotifyEvent",
    "NotifyMonitoringReport",
    "NotifyReport",
    "PublishFirmwareStatusNotification",
    "ReportChargingProfiles",
    "ReservationStatusUpdate",
    "SecurityEventNotification",
    "SignCertificate",
    "StatusNotification",
    "TransactionEvent",
)

EDGE_INTS = (0, -1, 1, 2**31 - 1, -(2**31), 2**53 + 1, 2**63, -(2**63), 10**30)
EDGE_FLOATS = (0.0, -0.0, 1e-320, 1e308, -1e308, 5e-324, 100.0000001, -100.0, 1e20)
ODD_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
) | st.sampled_from(
    ["", "\u0000", "\u202e", "ǅ", "𝔘𝔫𝔦", "\ufeff", "../../etc/passwd", "'; DROP TABLE x;--", "%s%n"]
)
TIMESTAMPS = st.sampled_from(
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "2025-03-30T02:30:00+01:00",
        "2025-13-45T99:99:99Z",
        "1970-01-01T00:00:00",
        "now",
        "",
        "2025-01-15T12:00:00+14:00",
        "2025-01-15T12:00:00.123456789Z",
    ]
) | st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.timezones(),
).map(lambda d: d.isoformat())


@cache
def schema(action: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SCHEMAS / f"{action}Request.json").read_text())
    return doc


def from_schema(
    node: dict[str, Any], root: dict[str, Any], depth: int = 0
) -> st.SearchStrategy[Any]:
    """A strategy for values valid under `node` (the subset of draft-06 the OCPP schemas use)."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: from_schema(root["definitions"][name], root, depth + 1))
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object":
        props: dict[str, Any] = node.get("properties", {})
        required = [k for k in node.get("required", ()) if k in props]
        optional = [k for k in props if k not in required and k != "customData"]
        if depth > 6:
            optional = []
        req = st.fixed_dictionaries({k: from_schema(props[k], root, depth + 1) for k in required})
        opt = st.fixed_dictionaries(
            {}, optional={k: from_schema(props[k], root, depth + 1) for k in optional}
        )
        return st.tuples(req, opt).map(lambda t: {**t[1], **t[0]})
    if kind == "array":
        lo = int(node.get("minItems", 0))
        hi = min(int(node.get("maxItems", lo + 3)), lo + 3)
        return st.lists(from_schema(node["items"], root, depth + 1), min_size=lo, max_size=hi)
    if kind == "integer":
        lo, hi = node.get("minimum"), node.get("maximum")
        edge = st.sampled_from([i for i in EDGE_INTS if _within(i, lo, hi)] or [lo or 0])
        return edge | st.integers(min_value=lo, max_value=hi)
    if kind == "number":
        lo, hi = node.get("minimum"), node.get("maximum")
        edge = st.sampled_from([f for f in EDGE_FLOATS if _within(f, lo, hi)] or [lo or 0.0])
        return edge | st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        if node.get("format") == "date-time":
            return TIMESTAMPS
        limit = int(node.get("maxLength", 64))
        return ODD_TEXT.map(lambda s: s[:limit]) | st.just("x" * limit)
    return st.none()


def _within(v: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or v >= lo) and (hi is None or v <= hi)


def valid_call(action: str) -> st.SearchStrategy[str]:
    root = schema(action)
    return from_schema(root, root).map(lambda p: json.dumps([2, "fz", action, p]))


VALID_CALLS: st.SearchStrategy[str] = st.sampled_from(CHARGER_ACTIONS).flatmap(valid_call)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ODD_TEXT,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(ODD_TEXT, kids, max_size=4),
    max_leaves=20,
)

INVALID_FRAMES: st.SearchStrategy[str | bytes] = st.one_of(
    ODD_TEXT,
    st.binary(max_size=64),
    JSON_VALUES.map(json.dumps),
    st.integers(1, 20000).map(lambda n: "[" * n + "]" * n),  # deep nesting
    st.integers(1, 20000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.tuples(st.sampled_from([2, 3, 4, 5, "2", None]), JSON_VALUES, JSON_VALUES, JSON_VALUES).map(
        lambda t: json.dumps(list(t))
    ),
    st.sampled_from((*CHARGER_ACTIONS, "SetChargingProfile", "Nope", "")).map(
        lambda a: json.dumps([2, "fz", a, {"unexpected": True}])
    ),
    st.sampled_from(
        [
            '[2, "fz", "Heartbeat", {"x": NaN}]',
            '[2, "fz", "MeterValues", {"evseId": 1e400, "meterValue": []}]',
            '[2, "fz", "Heartbeat", {}, "extra"]',
            '[2, "fz", "Heartbeat"',
            '[3, "never-asked", {}]',
            '[4, "never-asked", "InternalError", "", {}]',
            '[2, "' + "i" * 5000 + '", "Heartbeat", {}]',
            '[2, "fz", "Heartbeat", {"a": 1, "a": 2}]',
        ]
    ),
)
