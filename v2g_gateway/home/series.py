"""A PV forecast the user's own system provides: a CSV file (`start,pv_w`, any slot length) or
a JSON series on MQTT (`[{"start": ISO, "end": ISO?, "pv_w": W}, ...]`, an entry without `end`
lasting until the next start). Strict: aware times, watts that are numbers."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from v2g_gateway import json_limits
from v2g_gateway.errors import HomeError
from v2g_gateway.home.pv import PowerSlot


def _time(v: Any, where: str) -> datetime:
    if not isinstance(v, str):
        raise HomeError(f"{where}: start must be an ISO 8601 time, got {v!r}")
    try:
        t = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
    except ValueError:
        raise HomeError(f"{where}: {v!r} is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise HomeError(f"{where}: {v!r} has no offset")
    return t


def _watts(v: Any, where: str) -> float:
    try:
        w = float(v) if not isinstance(v, bool) else float("nan")
    except (TypeError, ValueError):
        raise HomeError(f"{where}: pv_w {v!r} is not a number") from None
    if not 0.0 <= w < 1e7:
        raise HomeError(f"{where}: pv_w {v!r} out of range")
    return w


def slots_of(items: list[tuple[datetime, datetime | None, float]], where: str) -> list[PowerSlot]:
    items.sort(key=lambda x: x[0])
    out: list[PowerSlot] = []
    for i, (start, end, w) in enumerate(items):
        if end is None:
            if i + 1 == len(items):
                raise HomeError(f"{where}: the last entry needs an end")
            end = items[i + 1][0]
        if end <= start:
            raise HomeError(f"{where}: entry at {start.isoformat()} ends before it starts")
        out.append(PowerSlot(start, end, w / 1000.0))
    return out


def parse_series(payload: bytes | str, where: str = "PV forecast") -> list[PowerSlot]:
    try:
        doc = json_limits.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise HomeError(f"{where}: not JSON") from None
    if isinstance(doc, dict):
        doc = doc.get("forecast")
    if not isinstance(doc, list) or not doc:
        raise HomeError(f'{where}: expected a list of {{"start", "end"?, "pv_w"}}')
    items: list[tuple[datetime, datetime | None, float]] = []
    for n, e in enumerate(doc):
        if not isinstance(e, dict):
            raise HomeError(f"{where}: entry {n} is not an object")
        end = None if e.get("end") is None else _time(e["end"], f"{where} entry {n}")
        items.append(
            (_time(e.get("start"), f"{where} entry {n}"), end, _watts(e.get("pv_w"), where))
        )
    return slots_of(items, where)


def parse_csv(text: str, where: str) -> list[PowerSlot]:
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or "start" not in rows[0] or "pv_w" not in rows[0]:
        raise HomeError(f"{where}: expected the columns start,pv_w")
    items: list[tuple[datetime, datetime | None, float]] = [
        (_time(r["start"], f"{where} line {n}"), None, _watts(r["pv_w"], f"{where} line {n}"))
        for n, r in enumerate(rows, start=2)
    ]
    last = items[-1]
    if len(items) > 1:
        items[-1] = (last[0], last[0] + (last[0] - items[-2][0]), last[2])
    return slots_of(items, where)


class CsvForecast:
    name = "csv"

    def __init__(self, path: Path) -> None:
        self._path = path

    async def fetch(self, http: httpx.AsyncClient, now: datetime) -> list[PowerSlot]:
        try:
            text = self._path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise HomeError(f"PV forecast {self._path}: {exc.strerror or exc}") from None
        return parse_csv(text, str(self._path))


class PushedForecast:
    """Holds the last series published on the MQTT topic."""

    name = "mqtt"

    def __init__(self) -> None:
        self.slots: list[PowerSlot] = []

    def accept(self, payload: bytes) -> None:
        self.slots = parse_series(payload, "PV forecast on MQTT")

    async def fetch(self, http: httpx.AsyncClient, now: datetime) -> list[PowerSlot]:
        return list(self.slots)
