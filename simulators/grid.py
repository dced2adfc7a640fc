"""The house and the grid connection: a daily home load on MQTT, and outages with restoration.

An outage is told two ways, as in a real home: a grid meter publishes on an MQTT topic, and
every charger's voltage measurand drops to 0. A missing broker is logged once and retried, so a
demo without one still runs.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import aiomqtt
import structlog

from v2g_gateway.clock import Clock
from v2g_gateway.tasks import raise_if_cancelled

log = structlog.get_logger("simulators.grid")


class VoltageSink(Protocol):
    def set_grid_voltage(self, volts: float) -> None: ...


# (hour of peak, width in hours, height in W): a family home, about 12 kWh a day.
_BUMPS = ((7.25, 0.8, 900.0), (12.5, 1.2, 300.0), (19.0, 1.4, 1500.0), (21.5, 1.0, 400.0))
_BASE_W = 200.0


def home_load_w(local: datetime, *, seed: int = 0) -> float:
    """House consumption (W) at a local time: base load, morning and evening peaks, jitter.

    Deterministic: the same seed and time give the same value, so tests and demos repeat.
    """
    h = local.hour + local.minute / 60.0 + local.second / 3600.0
    load = _BASE_W
    for peak, width, height in _BUMPS:
        d = min(abs(h - peak), 24 - abs(h - peak))
        load += height * math.exp(-0.5 * (d / width) ** 2)
    slot = local.toordinal() * 96 + int(h * 4)  # one jitter value per 15 minutes
    jitter = random.Random(seed * 1_000_003 + slot).uniform(-0.15, 0.15)
    return round(load * (1.0 + jitter), 1)


class GridSimulator:
    """Publishes home power and grid state; `outage()` / `restore()` drive chargers' voltage."""

    def __init__(
        self,
        clock: Clock,
        *,
        timezone: str | ZoneInfo = "Europe/Berlin",
        mqtt_host: str = "127.0.0.1",
        mqtt_port: int = 1883,
        home_power_topic: str = "home/power",
        grid_topic: str = "home/grid",
        grid_json: bool = False,
        payload_outage: str = "offline",
        payload_normal: str = "online",
        dr_topic: str = "home/demand_response",
        chargers: Iterable[VoltageSink] = (),
        seed: int = 0,
        publish_interval_s: float = 60.0,
        nominal_voltage: float = 230.0,
        mqtt_enabled: bool = True,
    ) -> None:
        self.clock = clock
        self.tz = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
        self.mqtt_host = mqtt_host
        self.mqtt_port = mqtt_port
        self.home_power_topic = home_power_topic
        self.grid_topic = grid_topic
        self.grid_json = grid_json
        self.payload_outage = payload_outage
        self.payload_normal = payload_normal
        self.dr_topic = dr_topic
        self.seed = seed
        self.publish_interval_s = publish_interval_s
        self.nominal_voltage = nominal_voltage
        self.mqtt_enabled = mqtt_enabled
        self.chargers: list[VoltageSink] = list(chargers)
        self.grid_up = True
        self.published: list[tuple[str, str]] = []  # (topic, payload) sent to the broker
        self._changes: asyncio.Queue[tuple[str, str, bool]] = asyncio.Queue()
        self._warned = False
        self.broker_up = asyncio.Event()
        self.broker_down = asyncio.Event()

    def home_w(self, at: datetime | None = None) -> float:
        return home_load_w((at or self.clock.now()).astimezone(self.tz), seed=self.seed)

    def add_charger(self, charger: VoltageSink) -> None:
        self.chargers.append(charger)
        charger.set_grid_voltage(self.nominal_voltage if self.grid_up else 0.0)

    def outage(self) -> None:
        """The grid fails: chargers see 0 V and the grid topic says so."""
        self._set(False)

    def restore(self) -> None:
        self._set(True)

    def demand_response(self, start: datetime, end: datetime, power_w: float) -> None:
        """Announce a demand-response event (the utility asks the home to export power_w)."""
        body = {"start": start.isoformat(), "end": end.isoformat(), "power_w": power_w}
        self._changes.put_nowait((self.dr_topic, json.dumps(body), False))

    def grid_payload(self) -> str:
        state = self.payload_normal if self.grid_up else self.payload_outage
        if not self.grid_json:
            return state
        voltage = self.nominal_voltage if self.grid_up else 0.0
        return json.dumps({"state": state, "voltage": voltage})

    def _set(self, up: bool) -> None:
        if up == self.grid_up:
            return
        self.grid_up = up
        volts = self.nominal_voltage if up else 0.0
        for charger in self.chargers:
            charger.set_grid_voltage(volts)
        log.info("sim_grid", state="restored" if up else "outage")
        self._changes.put_nowait((self.grid_topic, self.grid_payload(), True))

    async def run(self) -> None:
        """Publish until cancelled; reconnect to the broker quietly when it is away."""
        if not self.mqtt_enabled:
            await asyncio.Event().wait()
        delay = 1.0
        while True:
            try:
                async with aiomqtt.Client(
                    self.mqtt_host, self.mqtt_port, identifier=f"v2g-sim-grid-{self.seed}"
                ) as client:
                    delay = 1.0
                    self.broker_down.clear()
                    self.broker_up.set()
                    if self._warned:
                        log.info("sim_grid_mqtt_connected", host=self.mqtt_host)
                    self._warned = False
                    await self._publish(client, self.grid_topic, self.grid_payload(), True)
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._power_loop(client))
                        tg.create_task(self._change_loop(client))
            except* aiomqtt.MqttError as group:
                self.broker_up.clear()
                self.broker_down.set()
                if not self._warned:
                    log.warning(
                        "sim_grid_mqtt_unavailable",
                        host=self.mqtt_host,
                        port=self.mqtt_port,
                        error=str(group.exceptions[0]),
                    )
                    self._warned = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _power_loop(self, client: aiomqtt.Client) -> None:
        while True:
            await self._publish(client, self.home_power_topic, f"{self.home_w():.1f}", False)
            await self.clock.sleep(self.publish_interval_s)

    async def _change_loop(self, client: aiomqtt.Client) -> None:
        while True:
            topic, payload, retain = await self._changes.get()
            if topic == self.grid_topic:
                payload = self.grid_payload()  # the latest state wins
            await self._publish(client, topic, payload, retain)

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: str, retain: bool
    ) -> None:
        await client.publish(topic, payload, qos=1, retain=retain)
        self.published.append((topic, payload))
        raise_if_cancelled()  # Python 3.11 can lose a cancel that races the PUBACK
