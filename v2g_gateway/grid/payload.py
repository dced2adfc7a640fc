"""Grid-meter and home-power payloads -> verdicts and watts.

Meters speak many dialects (a plain "offline", `true`, a bare voltage, a Shelly `Shelly.GetStatus`
document, a P1 reader's JSON); one reader handles them all so a new meter needs config, not code.
Thresholds carry hysteresis: a reading between the trip point and the restore point says nothing,
so a sagging grid cannot chatter between outage and normal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from v2g_gateway import json_limits
from v2g_gateway.config import OutageSection
from v2g_gateway.errors import GatewayError

Verdict = Literal["outage", "normal"]
_INDEX = re.compile(r"\[(\d+)\]")
_TRUE = {"true", "on", "yes", "1"}
_FALSE = {"false", "off", "no", "0"}


class GridPayloadError(GatewayError):
    """A grid or home-power message that does not say what the config expects."""


@dataclass(frozen=True, slots=True)
class GridReading:
    verdict: Verdict | None  # None: inside the hysteresis band, no change
    value: float | None = None  # the number read (V or Hz), if any
    measured: bool = False  # a periodic measurement (subject to the silence timeout)


def path_parts(path: str) -> list[str]:
    """'emeters.0.voltage', 'emeters[0].voltage' and 'em:0.a_voltage' all work."""
    parts: list[str] = []
    for chunk in path.split("."):
        head = _INDEX.split(chunk)
        if head[0]:
            parts.append(head[0])
        parts.extend(p for p in head[1:] if p)
    if not parts:
        raise GridPayloadError(f"empty JSON path {path!r}")
    return parts


def read_path(doc: Any, path: str) -> Any:
    """The value at a dotted path; list indexes as numbers. Raises GridPayloadError naming the step."""
    cur = doc
    for part in path_parts(path):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise GridPayloadError(f"JSON path {path!r}: no {part!r} in the payload")
    return cur


def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise GridPayloadError("payload is not UTF-8 text") from None


def _json(text: str) -> Any:
    try:
        return json_limits.loads(text)
    except ValueError:
        raise GridPayloadError(f"payload is not JSON: {text[:60]!r}") from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return out if math.isfinite(out) else None


def _voltage(cfg: OutageSection, volts: float) -> Verdict | None:
    if cfg.voltage_below_v is None:
        raise GridPayloadError(f"got a voltage ({volts:g}) but [outage] voltage_below_v is not set")
    if volts < cfg.voltage_below_v:
        return "outage"
    if volts >= cfg.voltage_below_v + cfg.voltage_hysteresis_v:
        return "normal"
    return None


def _frequency(cfg: OutageSection, hz: float) -> Verdict | None:
    lo, hi, h = cfg.frequency_below_hz, cfg.frequency_above_hz, cfg.frequency_hysteresis_hz
    if lo is None and hi is None:
        raise GridPayloadError(
            f"got a frequency ({hz:g}) but neither frequency_below_hz nor frequency_above_hz is set"
        )
    if (lo is not None and hz < lo) or (hi is not None and hz > hi):
        return "outage"
    if (lo is None or hz >= lo + h) and (hi is None or hz <= hi - h):
        return "normal"
    return None


def _word(cfg: OutageSection, value: Any) -> Verdict:
    """A state word or boolean; anything else is a bad payload."""
    if isinstance(value, bool):
        word = "true" if value else "false"
    elif isinstance(value, str):
        word = value.strip()
    else:
        raise GridPayloadError(f"expected a state word or a number, got {value!r}")
    low = word.lower()
    if low == cfg.payload_outage.lower():
        return "outage"
    if low == cfg.payload_normal.lower():
        return "normal"
    if low in _TRUE or low in _FALSE:
        is_true = low in _TRUE
        return (
            ("outage" if is_true else "normal")
            if cfg.true_means == "outage"
            else ("normal" if is_true else "outage")
        )
    raise GridPayloadError(
        f"unknown state {word[:40]!r} (expected {cfg.payload_outage!r} or {cfg.payload_normal!r})"
    )


def _flag(cfg: OutageSection, num: float) -> bool:
    """1 and 0 are a boolean unless a voltage threshold makes them volts."""
    return cfg.voltage_below_v is None and num in (0.0, 1.0)


def _combine(verdicts: list[Verdict | None]) -> Verdict | None:
    if "outage" in verdicts:
        return "outage"
    if verdicts and all(v == "normal" for v in verdicts):
        return "normal"
    return None


def _judge_value(cfg: OutageSection, value: Any, kind: Literal["V", "Hz"]) -> GridReading:
    num = _number(value)
    if num is None or (kind == "V" and _flag(cfg, num)):
        return GridReading(_word(cfg, value if num is None else str(int(num))))
    verdict = _voltage(cfg, num) if kind == "V" else _frequency(cfg, num)
    return GridReading(verdict, num, measured=True)


def parse_grid(cfg: OutageSection, payload: bytes) -> GridReading:
    """One grid-meter message -> a verdict. Raises GridPayloadError for anything unreadable."""
    text = _text(payload)
    if not text:
        raise GridPayloadError("empty payload")
    if cfg.json_path is None and cfg.frequency_json_path is None:
        num = _number(text)
        if num is not None and not _flag(cfg, num):
            return GridReading(_voltage(cfg, num), num, measured=True)
        if text.startswith(("{", "[")):
            raise GridPayloadError("payload is JSON but [outage] json_path is not set")
        return GridReading(_word(cfg, text.strip('"')))
    doc = _json(text)
    readings: list[GridReading] = []
    if cfg.json_path is not None:
        # Several paths (one per phase): the grid is out only when every phase is.
        paths = [p.strip() for p in cfg.json_path.split(",") if p.strip()]
        phases = [_judge_value(cfg, read_path(doc, p), "V") for p in paths]
        if any(r.value is not None for r in phases):
            best = max(phases, key=lambda r: r.value if r.value is not None else -1.0)
            readings.append(best)
        else:
            readings.extend(phases)
    if cfg.frequency_json_path is not None:
        readings.append(_judge_value(cfg, read_path(doc, cfg.frequency_json_path), "Hz"))
    values = [r.value for r in readings if r.value is not None]
    return GridReading(
        _combine([r.verdict for r in readings]),
        values[0] if values else None,
        measured=any(r.measured for r in readings),
    )


def parse_home_power(cfg: OutageSection, payload: bytes) -> float:
    """The home's load in W (never negative: a home that exports needs no backup)."""
    text = _text(payload)
    value: Any = text
    if cfg.home_power_json_path is not None:
        value = read_path(_json(text), cfg.home_power_json_path)
    num = _number(value)
    if num is None:
        raise GridPayloadError(f"home power is not a number: {str(value)[:40]!r}")
    return max(0.0, num)
