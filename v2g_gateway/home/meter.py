"""The home's measurements over MQTT: grid power (signed, + import), PV power and house load.

Each is a topic with an optional JSON path (like the outage meter). A reading older than
`silence_timeout_s` is unknown, never zero: the controller then does not follow the house, and
the connection limit falls back to the plan's own. Without a house-load topic the load is
derived: grid + PV - what the cars take (from the chargers' meters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from v2g_gateway import json_limits
from v2g_gateway.clock import Clock
from v2g_gateway.grid.payload import GridPayloadError, read_path
from v2g_gateway.home.config import HomeSection

log = structlog.get_logger(__name__)

Kind = Literal["grid", "pv", "load"]
MessageHandler = Callable[[str, bytes], None]


@dataclass(frozen=True, slots=True)
class HomeNow:
    """What the home measures now; None = unknown (silent, never heard, or unreadable)."""

    grid_w: float | None
    pv_w: float | None
    load_w: float | None
    cars_w: float | None
    grid_mono: float | None = None  # when the grid reading was received (monotonic)

    @property
    def surplus_w(self) -> float | None:
        """PV the house does not use (before the cars)."""
        if self.pv_w is None or self.load_w is None:
            return None
        return max(0.0, self.pv_w - self.load_w)

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x)

        return {
            "grid_w": r(self.grid_w),
            "pv_w": r(self.pv_w),
            "house_load_w": r(self.load_w),
            "cars_w": r(self.cars_w),
        }


def parse_power(payload: bytes, json_path: str | None) -> float:
    """Watts from a bare number or a JSON document at `json_path`."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise GridPayloadError("payload is not UTF-8 text") from None
    value: Any = text
    if json_path is not None:
        try:
            value = read_path(json_limits.loads(text), json_path)
        except ValueError:
            raise GridPayloadError(f"payload is not JSON: {text[:60]!r}") from None
    if isinstance(value, bool):
        raise GridPayloadError(f"power is not a number: {value!r}")
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise GridPayloadError(f"power is not a number: {str(value)[:40]!r}") from None
    if w != w or abs(w) > 1e7:
        raise GridPayloadError(f"power {w!r} W is out of range")
    return w


@dataclass(slots=True)
class _Reading:
    w: float
    mono: float


class HomeMeter:
    def __init__(
        self,
        cfg: HomeSection,
        clock: Clock,
        cars_w: Callable[[], float | None],
        *,
        on_reading: Callable[[Kind, float], None] | None = None,
    ) -> None:
        self._cfg = cfg
        self._clock = clock
        self._cars_w = cars_w
        self._on_reading = on_reading
        self._last: dict[Kind, _Reading] = {}
        self._bad: set[str] = set()

    def listeners(self) -> list[tuple[str, MessageHandler]]:
        c = self._cfg
        out: list[tuple[str, MessageHandler]] = []
        for kind, topic in (
            ("grid", c.grid_power_topic),
            ("pv", c.pv_power_topic),
            ("load", c.house_load_topic),
        ):
            if c.enabled and topic:
                out.append((topic, self._handler(kind)))  # type: ignore[arg-type]
        return out

    def _handler(self, kind: Kind) -> MessageHandler:
        def handle(topic: str, payload: bytes) -> None:
            self.handle(kind, topic, payload)

        return handle

    def handle(self, kind: Kind, topic: str, payload: bytes) -> None:
        c = self._cfg
        path = {
            "grid": c.grid_power_json_path,
            "pv": c.pv_power_json_path,
            "load": c.house_load_json_path,
        }[kind]
        try:
            w = parse_power(payload, path)
        except GridPayloadError as exc:
            if topic not in self._bad:
                self._bad.add(topic)
                log.warning("home.bad_payload", topic=topic, kind=kind, error=str(exc))
            return  # unreadable: the last reading ages into unknown, it is never zero
        self._bad.discard(topic)
        if kind == "grid" and c.grid_power_invert:
            w = -w
        if kind != "grid":
            w = max(0.0, w)
        self._last[kind] = _Reading(w, self._clock.monotonic())
        if self._on_reading is not None:
            self._on_reading(kind, w)

    def _fresh(self, kind: Kind) -> float | None:
        r = self._last.get(kind)
        if r is None or self._clock.monotonic() - r.mono > self._cfg.silence_timeout_s:
            return None
        return r.w

    def now(self) -> HomeNow:
        c = self._cfg
        grid = self._fresh("grid")
        pv = self._fresh("pv") if c.pv_power_topic else (None if c.pv else 0.0)
        cars = self._cars_w()
        load = self._fresh("load") if c.house_load_topic else None
        if not c.house_load_topic and grid is not None and pv is not None and cars is not None:
            load = max(0.0, grid + pv - cars)
        r = self._last.get("grid")
        return HomeNow(grid, pv, load, cars, None if grid is None or r is None else r.mono)

    def age_s(self, kind: Kind) -> float | None:
        r = self._last.get(kind)
        return None if r is None else self._clock.monotonic() - r.mono

    def status(self) -> dict[str, Any]:
        kinds: tuple[Kind, ...] = ("grid", "pv", "load")
        ages = {k: self.age_s(k) for k in kinds}
        return {
            **self.now().to_json(),
            "ages_s": {k: round(a, 1) for k, a in ages.items() if a is not None},
        }
