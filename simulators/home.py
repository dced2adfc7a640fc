"""A simulated home on MQTT: a grid meter (signed W, + import), PV power and the house load.

The grid meter is what a real one measures: the house load minus PV plus what every simulated
charger takes (or minus what it gives). The load follows the daily family curve of grid.py unless
a test sets it; PV follows a clear day for `pv_kwp` unless set. A change is published at once;
otherwise every `publish_interval_s`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import aiomqtt
import structlog

from simulators.grid import home_load_w
from v2g_gateway.clock import Clock
from v2g_gateway.tasks import raise_if_cancelled

log = structlog.get_logger("simulators.home")


class Metered(Protocol):
    def power_w(self, evse_id: int = 1) -> float: ...


def clear_day_pv_w(local: datetime, kwp: float) -> float:
    """A clear day's PV (W) at a local time: sunrise 6:00, sunset 20:00, 80 % of kWp at noon."""
    h = local.hour + local.minute / 60.0 + local.second / 3600.0
    if not 6.0 < h < 20.0:
        return 0.0
    return round(kwp * 1000.0 * 0.8 * math.sin(math.pi * (h - 6.0) / 14.0), 1)


class HomeSimulator:
    def __init__(
        self,
        clock: Clock,
        *,
        mqtt_host: str = "127.0.0.1",
        mqtt_port: int = 1883,
        chargers: Iterable[Metered] = (),
        timezone: str = "Europe/Berlin",
        pv_kwp: float = 8.0,
        grid_topic: str = "home/meter/power",
        pv_topic: str = "home/pv/power",
        load_topic: str | None = None,
        publish_interval_s: float = 5.0,
        seed: int = 0,
    ) -> None:
        self.clock = clock
        self.tz = ZoneInfo(timezone)
        self.mqtt_host, self.mqtt_port = mqtt_host, mqtt_port
        self.chargers = list(chargers)
        self.pv_kwp = pv_kwp
        self.grid_topic, self.pv_topic, self.load_topic = grid_topic, pv_topic, load_topic
        self.publish_interval_s = publish_interval_s
        self.seed = seed
        self.load_override_w: float | None = None
        self.pv_override_w: float | None = None
        self.silent = False  # the meter stops talking (a test of "silence is unknown")
        self.published: list[tuple[str, str]] = []
        self.connected = asyncio.Event()
        self._kick = asyncio.Event()
        self._warned = False

    def load_w(self) -> float:
        if self.load_override_w is not None:
            return self.load_override_w
        return home_load_w(self.clock.now().astimezone(self.tz), seed=self.seed)

    def pv_w(self) -> float:
        if self.pv_override_w is not None:
            return self.pv_override_w
        return clear_day_pv_w(self.clock.now().astimezone(self.tz), self.pv_kwp)

    def cars_w(self) -> float:
        return sum(c.power_w() for c in self.chargers)

    def grid_w(self) -> float:
        return self.load_w() - self.pv_w() + self.cars_w()

    def set_load(self, watts: float | None) -> None:
        """The house load jumps (an oven, a heat pump): published at once."""
        self.load_override_w = watts
        self._kick.set()

    def set_pv(self, watts: float | None) -> None:
        self.pv_override_w = watts
        self._kick.set()

    def publish_now(self) -> None:
        self._kick.set()

    async def run(self) -> None:
        delay = 1.0
        while True:
            try:
                async with aiomqtt.Client(
                    self.mqtt_host, self.mqtt_port, identifier=f"v2g-sim-home-{self.seed}"
                ) as client:
                    delay = 1.0
                    self.connected.set()
                    while True:
                        if not self.silent:
                            await self._publish_all(client)
                        self._kick.clear()
                        tick = asyncio.ensure_future(self.clock.sleep(self.publish_interval_s))
                        kick = asyncio.ensure_future(self._kick.wait())
                        try:
                            await asyncio.wait({tick, kick}, return_when=asyncio.FIRST_COMPLETED)
                        finally:
                            tick.cancel()
                            kick.cancel()
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                if not self._warned:  # once: a demo without a broker goes on
                    self._warned = True
                    log.warning("sim_home_mqtt_unavailable", error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _publish_all(self, client: aiomqtt.Client) -> None:
        out = [(self.grid_topic, f"{self.grid_w():.1f}"), (self.pv_topic, f"{self.pv_w():.1f}")]
        if self.load_topic:
            out.append((self.load_topic, f"{self.load_w():.1f}"))
        for topic, payload in out:
            await client.publish(topic, payload, qos=0)
            self.published.append((topic, payload))
            raise_if_cancelled()
