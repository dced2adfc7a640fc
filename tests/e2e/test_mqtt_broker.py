"""The shipped broker config (config/mosquitto/) with the real gateway: who may do what.

issue 19: three anonymous publishes could set the reserve and a 7-day discharge, and a spoofed
"offline" lowered the floor. With the shipped users and ACL the gateway connects with its own
client certificate, Home Assistant commands, a dashboard only reads, and only the meter's user
can report an outage.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from e2e_helpers import TZ, running, skeleton_config
from mosquitto import SHIPPED, ShippedBroker, start_shipped_broker

from v2g_gateway.app import Gateway
from v2g_gateway.clock import AcceleratedClock

USERS = {"homeassistant": "ha-secret-pw", "dashboard": "dash-secret-pw", "meter": "meter-pw"}
BASE = "v2g/e2e"
WAIT_S = 15.0
NOON = datetime(2026, 1, 15, 12, 0, tzinfo=TZ)


@pytest.fixture
def shipped(tmp_path: Path) -> Iterator[ShippedBroker]:
    b = start_shipped_broker(tmp_path / "broker", USERS)
    yield b
    b.stop()


def tls(b: ShippedBroker, cert: tuple[Path, Path] | None = None) -> aiomqtt.TLSParameters:
    return aiomqtt.TLSParameters(
        ca_certs=str(b.ca.pair.cert),
        certfile=None if cert is None else str(cert[0]),
        keyfile=None if cert is None else str(cert[1]),
        cert_reqs=ssl.CERT_REQUIRED,
    )


class Inbox:
    """What one client receives, with a wait on a condition (no sleeps)."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seen: list[tuple[str, bytes]] = []
        self._cond = asyncio.Condition()

    async def pump(self) -> None:
        async for m in self.client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            async with self._cond:
                self.seen.append((m.topic.value, payload))
                self._cond.notify_all()

    async def wait(self, pred: Callable[[str, bytes], bool]) -> bytes:
        def found() -> bytes | None:
            return next((p for t, p in self.seen if pred(t, p)), None)

        async with asyncio.timeout(WAIT_S), self._cond:
            await self._cond.wait_for(lambda: found() is not None)
        got = found()
        assert got is not None
        return got

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p in self.seen if t == f"{BASE}/events"]


@asynccontextmanager
async def client(b: ShippedBroker, user: str, *subs: str) -> AsyncIterator[Inbox]:
    async with aiomqtt.Client(
        "localhost",
        b.port(8883),
        username=user,
        password=USERS[user],
        tls_params=tls(b),
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as c:
        for s in subs:
            await c.subscribe(s, qos=1)
        inbox = Inbox(c)
        task = asyncio.create_task(inbox.pump())
        try:
            yield inbox
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def result(request_id: str) -> Callable[[str, bytes], bool]:
    return lambda t, p: t == f"{BASE}/events" and json.loads(p).get("request_id") == request_id


async def test_shipped_acl_with_the_gateway_on_its_client_certificate(
    tmp_path: Path, shipped: ShippedBroker
) -> None:
    cert, key = shipped.client_cert("v2g-gateway")
    cfg = skeleton_config(
        tmp_path / "state",
        shipped.port(8884),
        mqtt={
            "host": "localhost",
            "port": shipped.port(8884),
            "tls": True,
            "ca_file": str(shipped.ca.pair.cert),
            "cert_file": str(cert),
            "key_file": str(key),
            "min_publish_interval_s": 0.0,
        },
        outage={"mqtt_topic": "home/grid", "debounce_s": 0, "restore_holdoff_s": 0},
    )
    clock = AcceleratedClock(NOON, speed=1)
    async with (
        running(Gateway(cfg, clock)) as gw,
        client(shipped, "homeassistant", f"{BASE}/#", "homeassistant/#") as ha,
        client(shipped, "dashboard", f"{BASE}/#") as dash,
        client(shipped, "meter") as meter,
    ):
        # The gateway got in with its certificate (no password): its state reaches both readers,
        # and its discovery configs reach Home Assistant.
        await ha.wait(lambda t, p: t == f"{BASE}/availability" and p == b"online")
        await dash.wait(lambda t, p: t == f"{BASE}/vehicle/car")
        await ha.wait(lambda t, p: t.startswith("homeassistant/") and t.endswith("/config"))

        # Home Assistant commands; the answer comes back on the events topic.
        body = {"key": "reserve_soc_percent", "vehicle": "car", "value": 55, "request_id": "ha-1"}
        await ha.client.publish(f"{BASE}/set/preference", json.dumps(body), qos=1)
        assert json.loads(await ha.wait(result("ha-1")))["ok"] is True
        assert gw.policy.reserve_percent("car") == 55
        # Lowering a floor is a warning, and bounded by the car's own minimum (10 %).
        body = {"key": "reserve_soc_percent", "vehicle": "car", "value": 15, "request_id": "ha-l"}
        await ha.client.publish(f"{BASE}/set/preference", json.dumps(body), qos=1)
        warned = json.loads(
            await ha.wait(
                lambda t, p: t == f"{BASE}/events" and json.loads(p)["kind"] == "reserve_lowered"
            )
        )
        assert warned["level"] == "warning" and "from 55 % to 15 %" in warned["message"]
        body = {"key": "reserve_soc_percent", "vehicle": "car", "value": 5, "request_id": "ha-m"}
        await ha.client.publish(f"{BASE}/set/preference", json.dumps(body), qos=1)
        refused = json.loads(await ha.wait(result("ha-m")))
        assert not refused["ok"] and "reserve must be between 10 and 100 %" in refused["message"]
        assert gw.policy.reserve_percent("car") == 15

        # The dashboard's command is dropped by the broker: it never reaches the gateway. Home
        # Assistant's next command is answered, and the dashboard's never was.
        body = {"action": "discharge_now", "vehicle": "car", "minutes": 10080, "request_id": "d-1"}
        await dash.client.publish(f"{BASE}/set/override", json.dumps(body), qos=1)
        body = {"key": "v2g_enabled", "value": True, "request_id": "ha-2"}
        await ha.client.publish(f"{BASE}/set/preference", json.dumps(body), qos=1)
        await ha.wait(result("ha-2"))
        assert not [e for e in ha.events() if e.get("request_id") == "d-1"]
        assert not gw.store.snapshot(clock.now()).overrides
        # ... nor does the dashboard read others' commands.
        assert not [t for t, _ in dash.seen if "/set/" in t]

        # Only the meter's user can report an outage: Home Assistant's "offline" is refused by
        # the broker; the meter's "online" then shows the gateway heard the topic, and no outage.
        await ha.client.publish("home/grid", b"offline", qos=1)
        await meter.client.publish("home/grid", b"online", qos=1)
        async with asyncio.timeout(WAIT_S):
            while "mqtt:home/grid" not in gw.grid.status()["sources"]:  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # the detector has no event to wait on
        assert not gw.store.snapshot(clock.now()).grid_outage
        assert "grid_outage" not in [n["kind"] for n in gw.store.recent_notifications(50)]
        await meter.client.publish("home/grid", b"offline", qos=1)
        got = await ha.wait(
            lambda t, p: t == f"{BASE}/events" and json.loads(p)["kind"] == "grid_outage"
        )
        assert json.loads(got)["data"]["sources"] == ["mqtt:home/grid"]
        status = gw.health()["grid"]
        assert status["floor_sources"] == ["mqtt:home/grid", "charger:garage", "event:garage"]
        assert status["outage_evidence"] == ["mqtt:home/grid"]


async def test_shipped_config_refuses_anonymous_and_wrong_passwords(
    shipped: ShippedBroker,
) -> None:
    for port, kw in (
        (shipped.port(1883), {}),
        (shipped.port(8883), {"tls_params": tls(shipped)}),
        (
            shipped.port(8883),
            {"tls_params": tls(shipped), "username": "dashboard", "password": "x"},
        ),
    ):
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("localhost", port, timeout=5, **kw):
                pass
    # The certificate listener takes no certificate-less client, even with a right password.
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            "localhost",
            shipped.port(8884),
            username="homeassistant",
            password=USERS["homeassistant"],
            tls_params=tls(shipped),
            timeout=1,  # TLS 1.3: the broker's "certificate required" alert comes after the
        ):  # handshake, and the client then waits for a CONNACK that never comes
            pass


def test_docs_give_the_shipped_broker_config_verbatim() -> None:
    docs = (SHIPPED.parents[1] / "docs" / "mqtt.md").read_text()
    for name in ("v2g-gateway.conf", "acl"):
        assert (SHIPPED / name).read_text() in docs, f"docs/mqtt.md lacks config/mosquitto/{name}"
