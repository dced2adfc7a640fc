"""The one broker link: retained state out, commands and listened topics in.

The bridge only reads the store and calls the policy, so a broker that is down or slow can never
hold up dispatch: changes are folded into a set of dirty topics while disconnected and the latest
state goes out after the reconnect. Retained topics are rate-limited per topic
(`min_publish_interval_s`), which turns a storm of meter values into one message per charger per
interval while still delivering the last value.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
import structlog
from paho.mqtt.properties import Properties

from v2g_gateway.bus import Changed
from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.dispatch.policy import Policy, PolicyError
from v2g_gateway.errors import StoreError
from v2g_gateway.model import Notification, Snapshot
from v2g_gateway.mqtt import inbound
from v2g_gateway.mqtt.announce import announce
from v2g_gateway.mqtt.bodies import Bodies
from v2g_gateway.mqtt.commands import ChargingControl, CommandError, Commands
from v2g_gateway.mqtt.connection import Backoff, client_options
from v2g_gateway.mqtt.discovery import Discovery
from v2g_gateway.mqtt.payloads import encode, event_body, last_command_body
from v2g_gateway.mqtt.soc_input import take_report
from v2g_gateway.mqtt.topics import Topics
from v2g_gateway.store import Store
from v2g_gateway.tasks import raise_if_cancelled

log = structlog.get_logger(__name__)

Handler = Callable[[str, bytes], None]
View = Callable[[], dict[str, Any]]
# Kept while the broker is away; older events are dropped first (state is never dropped).
EVENT_BUFFER = 200


class MqttBridge:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        policy: Policy,
        clock: Clock,
        *,
        prices_view: View | None = None,
        health_view: View | None = None,
        charging_control: ChargingControl | None = None,
        backoff: Backoff | None = None,
        gateway_refresh_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        retry_wait: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timeout_s: float = 10.0,
    ) -> None:
        self._cfg = cfg
        self._store = store
        self._policy = policy
        self._clock = clock
        self._prices_view = prices_view
        self._health_view = health_view
        self._backoff = backoff or Backoff()
        self._gateway_refresh_s = gateway_refresh_s
        self._mono = monotonic
        self._retry_wait = retry_wait
        self.topics = Topics.from_config(cfg)
        self._options = {**client_options(cfg, self.topics), "timeout": timeout_s}
        self._commands = Commands(cfg, store, policy, clock, charging_control)
        self._discovery = Discovery(cfg, self.topics)
        self._listeners: list[tuple[str, Handler]] = []
        # A vehicle's SoC topic needs the message's retain flag and expiry, not only its payload.
        self._soc_topics = [(v.soc_topic, v.id) for v in cfg.vehicles if v.soc_topic]
        self.connected = asyncio.Event()
        self._wake = asyncio.Event()
        self._dirty: dict[str, tuple[str, str | None]] = {}
        self._sent: dict[str, bytes] = {}
        self._last_at: dict[str, float] = {}
        self._outbox: deque[tuple[str, bytes, Properties | None]] = deque(maxlen=EVENT_BUFFER)
        self._tasks: set[asyncio.Task[None]] = set()
        # Odometer/range from a vehicle's own topic: shown, never used for decisions.
        self._vehicle_extra: dict[str, dict[str, float]] = {}
        self._too_large: set[str] = set()  # topics already logged for an oversized payload
        self._last_command: dict[str, Any] | None = None
        started = monotonic()
        self._bodies = Bodies(
            cfg,
            store,
            policy,
            self._discovery,
            prices_view=prices_view,
            health_view=health_view,
            vehicle_extra=self._vehicle_extra,
            last_command=lambda: self._last_command,
            uptime_s=lambda: round(self._mono() - started),
        )
        self.published = 0  # state messages sent (the benchmark reads it)
        self.connections = 0  # successful connections so far
        self.attempts = 0

    # ------------------------------------------------------------------ public

    def add_listener(self, topic_filter: str, handler: Handler) -> None:
        """Read `topic_filter` through this connection; re-subscribed after every reconnect."""
        self._listeners.append((topic_filter, handler))

    async def run(self) -> None:
        """Until cancelled; then 'offline' (retained) and a clean disconnect."""
        changes = self._store.changes.subscribe()
        notes = self._store.notifications.subscribe()
        tasks = [
            asyncio.create_task(self._follow_changes(changes), name="mqtt-changes"),
            asyncio.create_task(self._follow_notifications(notes), name="mqtt-events"),
            asyncio.create_task(self._refresh_gateway(), name="mqtt-gateway-refresh"),
        ]
        try:
            await self._connect_forever()
        finally:
            for t in [*tasks, *self._tasks]:
                t.cancel()
            await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)
            self._store.changes.unsubscribe(changes)
            self._store.notifications.unsubscribe(notes)

    # ------------------------------------------------------------------ connection

    async def _connect_forever(self) -> None:
        failures = 0
        reported = False
        where = f"{self._cfg.mqtt.host}:{self._cfg.mqtt.port}"
        while True:
            before = self.connections
            try:
                await self._session()
            except (aiomqtt.MqttError, OSError, ssl.SSLError) as exc:
                if self.connections != before:
                    failures, reported = 0, False
                    log.warning("mqtt.connection_lost", broker=where, error=str(exc))
                elif not reported:
                    reported = True
                    log.warning(f"MQTT broker at {where} unreachable; retrying", error=str(exc))
            except Exception as exc:  # a bridge bug must cost MQTT only, never the gateway
                log.exception("mqtt.session_failed", broker=where, error=repr(exc))
            failures += 1
            await self._retry_wait(self._backoff.delay(failures))

    async def _session(self) -> None:
        self.attempts += 1
        client = aiomqtt.Client(**self._options)
        client.pending_calls_threshold = 500  # discovery sends ~20 configs per device at once
        async with client:
            self.connections += 1
            await client.publish(self.topics.availability, b"online", qos=1, retain=True)
            await client.subscribe(self.topics.set_filter, qos=1)
            for topic_filter in [t for t, _ in self._listeners] + [t for t, _ in self._soc_topics]:
                await client.subscribe(topic_filter, qos=1)
            await self._announce(client)
            raise_if_cancelled()  # the publishes above can lose a cancel (v2g_gateway.tasks)
            self._sent.clear()
            self._last_at.clear()
            self._mark_everything()
            log.info("mqtt.connected", broker=f"{self._cfg.mqtt.host}:{self._cfg.mqtt.port}")
            reader = asyncio.create_task(self._read(client), name="mqtt-read")
            writer = asyncio.create_task(self._write(client), name="mqtt-write")
            self.connected.set()
            try:
                done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    t.result()
                raise aiomqtt.MqttError("MQTT session ended")
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        client.publish(self.topics.availability, b"offline", qos=1, retain=True),
                        2.0,
                    )
                raise
            finally:
                self.connected.clear()
                for t in (reader, writer):
                    t.cancel()
                await asyncio.gather(reader, writer, return_exceptions=True)

    async def _announce(self, client: aiomqtt.Client) -> None:
        snap = self._store.snapshot(self._clock.now())
        await announce(client, self._cfg, self._store, self._discovery, self.topics, snap)

    # ------------------------------------------------------------------ outgoing state

    def _mark(self, topic: str, kind: str, key: str | None = None) -> None:
        self._dirty[topic] = (kind, key)
        self._wake.set()

    def _mark_everything(self) -> None:
        t = self.topics
        self._mark(t.gateway, "gateway")
        self._mark(t.plan, "plans")
        if self._prices_view is not None:
            self._mark(t.prices, "prices")
        for cid in sorted(c.id for c in self._cfg.chargers):
            self._mark(t.charger(cid), "charger", cid)
        for v in self._cfg.vehicles:
            self._mark(t.vehicle(v.id), "vehicle", v.id)
            self._mark(t.vehicle_plan(v.id), "plan", v.id)

    def on_change(self, c: Changed) -> None:
        """Which retained topics a store change makes stale."""
        t = self.topics
        if c.kind in ("charger", "meter", "boot") and c.key:
            self._mark(t.charger(c.key), "charger", c.key)
        elif c.kind in ("vehicle", "override", "dispatch_vehicle") and c.key:
            self._mark(t.vehicle(c.key), "vehicle", c.key)
        elif c.kind == "dispatch_charger" and c.key:
            self._mark(t.charger(c.key), "charger", c.key)
        elif c.kind == "plan" and c.key:
            self._mark(t.vehicle_plan(c.key), "plan", c.key)
            self._mark(t.plan, "plans")
            self._mark(t.vehicle(c.key), "vehicle", c.key)
        elif c.kind == "prices" and self._prices_view is not None:
            self._mark(t.prices, "prices")
        elif c.kind == "preferences":
            self._mark(t.gateway, "gateway")
            for v in self._cfg.vehicles:
                self._mark(t.vehicle(v.id), "vehicle", v.id)
        elif c.kind == "grid":
            self._mark(t.gateway, "gateway")
            for cid in {c.id for c in self._cfg.chargers}:
                self._mark(t.charger(cid), "charger", cid)
        if c.kind == "boot" and c.key and self._cfg.mqtt.homeassistant_discovery:
            # The device now has the vendor, model, serial and firmware the charger reported.
            for topic in self._discovery.charger_topics(c.key):
                self._mark(topic, "discovery", topic)

    async def _follow_changes(self, q: asyncio.Queue[Changed]) -> None:
        while True:
            self.on_change(await q.get())

    async def _follow_notifications(self, q: asyncio.Queue[Notification]) -> None:
        while True:
            n = await q.get()
            self._outbox.append((self.topics.events, encode(event_body(n)), None))
            self._wake.set()

    async def _refresh_gateway(self) -> None:
        """Uptime and health change without a store change: refresh them now and then."""
        while True:
            await asyncio.sleep(self._gateway_refresh_s)
            self._mark(self.topics.gateway, "gateway")

    def _due(self) -> tuple[list[tuple[str, tuple[str, str | None]]], float | None]:
        """Dirty topics whose interval has passed, and how long until the next one is."""
        now = self._mono()
        interval = self._cfg.mqtt.min_publish_interval_s
        ready: list[tuple[str, tuple[str, str | None]]] = []
        wait: float | None = None
        for topic, what in list(self._dirty.items()):
            last = self._last_at.get(topic)
            if last is not None and now - last < interval:
                left = interval - (now - last)
                wait = left if wait is None else min(wait, left)
                continue
            del self._dirty[topic]
            ready.append((topic, what))
        return ready, wait

    async def _write(self, client: aiomqtt.Client) -> None:
        while True:
            raise_if_cancelled()  # a cancel during a publish can be lost (v2g_gateway.tasks)
            self._wake.clear()
            ready, wait = self._due()
            snap = self._store.snapshot(self._clock.now()) if ready else None
            sends: list[tuple[str, bytes]] = []
            for topic, (kind, key) in ready:
                assert snap is not None
                payload = self._render(kind, key, snap)
                if payload is not None and self._sent.get(topic) != payload:
                    sends.append((topic, payload))
            if sends:
                await asyncio.gather(*(client.publish(t, p, qos=1, retain=True) for t, p in sends))
                now = self._mono()
                for t, p in sends:
                    self._sent[t] = p
                    self._last_at[t] = now
                self.published += len(sends)
            while self._outbox:
                topic, payload, props = self._outbox[0]
                await client.publish(topic, payload, qos=1, retain=False, properties=props)
                self._outbox.popleft()
                raise_if_cancelled()
            if self._wake.is_set():
                continue
            if wait is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()

    def _render(self, kind: str, key: str | None, snap: Snapshot) -> bytes | None:
        try:
            body = self.render(kind, key, snap)
        except Exception as exc:  # a broken view must not stop the other topics
            log.error("mqtt.render_failed", kind=kind, key=key, error=repr(exc))
            return None
        return None if body is None else encode(body)

    def render(self, kind: str, key: str | None, snap: Snapshot) -> dict[str, Any] | None:
        """The JSON body of one retained topic."""
        return self._bodies.render(kind, key, snap)

    # ------------------------------------------------------------------ incoming

    async def _read(self, client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            topic = msg.topic.value
            payload = msg.payload if isinstance(msg.payload, bytes) else str(msg.payload).encode()
            if topic.startswith(self.topics.set_prefix):
                if msg.retain:
                    continue  # a stale retained command must not replay on every connect
                task = asyncio.create_task(self._command(topic, payload, msg.properties))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                continue
            if len(payload) > self._cfg.mqtt.max_payload_bytes:
                if topic not in self._too_large:  # once per topic, not once per message
                    self._too_large.add(topic)
                    log.warning(
                        "mqtt.payload_too_large",
                        topic=topic,
                        bytes=len(payload),
                        limit=self._cfg.mqtt.max_payload_bytes,
                    )
                continue
            for topic_filter, vehicle_id in self._soc_topics:
                if msg.topic.matches(topic_filter):
                    expiry = getattr(msg.properties, "MessageExpiryInterval", None)
                    self._on_soc(
                        vehicle_id,
                        topic,
                        payload,
                        retained=bool(msg.retain),
                        expiry_s=float(expiry) if isinstance(expiry, int | float) else None,
                    )
            for topic_filter, handler in self._listeners:
                if msg.topic.matches(topic_filter):
                    try:
                        handler(topic, payload)
                    except Exception as exc:  # one listener's bug must not end the session
                        log.error("mqtt.listener_failed", topic=topic, error=repr(exc))

    async def _command(self, topic: str, payload: bytes, props: Properties | None) -> None:
        command = topic[len(self.topics.set_prefix) :]
        request_id = inbound.request_id_of(payload, self._cfg.mqtt.max_payload_bytes)
        try:
            refused = inbound.refusal(self._cfg, payload, props)
            if refused is not None:
                raise CommandError(refused)
            result = await self._commands.handle(command, payload)
            kind, level, message, data = "command_accepted", "info", f"set/{command} done", result
        except (CommandError, PolicyError, StoreError) as exc:
            kind, level, message, data = "command_rejected", "error", f"set/{command}: {exc}", {}
        except Exception as exc:  # a bug in one command must not kill its task silently
            log.exception("mqtt.command_failed", topic=command)
            kind, level = "command_rejected", "error"
            message, data = f"set/{command}: internal error ({type(exc).__name__})", {}
        answer_on, not_used = inbound.response_topic(self.topics, props)
        if not_used is not None:
            message = f"{message} ({not_used})"
        log.info("mqtt.command", topic=command, outcome=kind, message=message)
        event = inbound.result_event(
            f"set/{command}", kind, level, message, data, request_id, self._clock.now()
        )
        out = encode(event)
        self._last_command = last_command_body(event)
        self._mark(self.topics.last_command, "last_command")
        reply = inbound.reply_properties(props)
        self._outbox.append((self.topics.events, out, reply))
        if answer_on is not None:
            self._outbox.append((answer_on, out, reply))
        self._wake.set()

    def _on_soc(
        self,
        vehicle_id: str,
        topic: str,
        payload: bytes,
        *,
        retained: bool = False,
        expiry_s: float | None = None,
    ) -> None:
        now = self._clock.now()
        report = take_report(
            self._store, vehicle_id, topic, payload, now, retained=retained, expiry_s=expiry_s
        )
        if report is None:
            return
        if report.extra:
            extra = self._vehicle_extra.get(vehicle_id, {})
            self._vehicle_extra[vehicle_id] = {**extra, **report.extra}
        if report.extra or report.soc_percent is not None:
            self._mark(self.topics.vehicle(vehicle_id), "vehicle", vehicle_id)
