"""Connecting: passwords, TLS with client certificates, 3.1.1 and 5, restarts, last will, shutdown."""

from __future__ import annotations

import asyncio
import signal
import ssl
from pathlib import Path

import aiomqtt
import pytest
from mqtt_helpers import BASE, T0, WAIT_S, Broker, Rig, eventually, make_rig, watching
from structlog.testing import capture_logs

from v2g_gateway.bus import Changed
from v2g_gateway.errors import ConfigError
from v2g_gateway.model import MeterSample, Notification


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_password_from_file_and_both_protocols(
    password_broker: Broker, tmp_path: Path, protocol: str
) -> None:
    pw = tmp_path / "mqtt-password"
    pw.write_text("s3cret-pw\n")
    r = make_rig(
        password_broker,
        tmp_path,
        mqtt={"username": "gateway", "password_file": str(pw), "protocol": protocol},
    )
    await r.start()
    try:
        kw = {"username": "viewer", "password": "v-pw"}
        async with watching(password_broker, f"{BASE}/#", **kw) as w:
            assert (await w.wait_for(f"{BASE}/availability")).payload == b"online"
            await w.wait_for(f"{BASE}/vehicle/car")
    finally:
        await r.stop()
        r.store.close()


async def test_password_from_systemd_credential(
    password_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt").write_text("s3cret-pw")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    r = make_rig(password_broker, tmp_path, mqtt={"username": "gateway", "credential": "mqtt"})
    await r.start()
    assert r.bridge.connected.is_set()
    await r.stop()
    r.store.close()


async def test_unreadable_password_file_is_a_config_error(broker: Broker, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[mqtt\]: password: .*missing does not exist"):
        make_rig(
            broker, tmp_path, mqtt={"username": "u", "password_file": str(tmp_path / "missing")}
        )


async def test_wrong_password_logs_once_and_keeps_trying(
    password_broker: Broker, tmp_path: Path
) -> None:
    r = make_rig(password_broker, tmp_path, mqtt={"username": "gateway", "password": "wrong"})
    with capture_logs() as logs:
        task = asyncio.create_task(r.bridge.run())
        async with asyncio.timeout(WAIT_S):
            await _attempts(r, 4)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    unreachable = [e for e in logs if "unreachable" in e["event"]]
    assert len(unreachable) == 1
    assert unreachable[0]["event"] == (
        f"MQTT broker at 127.0.0.1:{password_broker.port} unreachable; retrying"
    )
    assert "authori" in unreachable[0]["error"].lower()
    assert not r.bridge.connected.is_set()
    r.store.close()


async def _attempts(r: Rig, n: int) -> None:
    """Wait until the bridge has tried to connect n more times (it counts its attempts)."""
    target = r.bridge.attempts + n
    await eventually(lambda: r.bridge.attempts >= target)


async def test_tls_with_ca_and_client_certificate(tls_broker: Broker, tmp_path: Path) -> None:
    tls = tls_broker.tls
    assert tls is not None
    r = make_rig(
        tls_broker,
        tmp_path,
        mqtt={
            "tls": True,
            "ca_file": str(tls.ca_file),
            "cert_file": str(tls.client_cert),
            "key_file": str(tls.client_key),
        },
    )
    await r.start()
    try:
        params = aiomqtt.TLSParameters(
            ca_certs=str(tls.ca_file),
            certfile=str(tls.client_cert),
            keyfile=str(tls.client_key),
            cert_reqs=ssl.CERT_REQUIRED,
        )
        async with watching(tls_broker, f"{BASE}/#", tls_params=params) as w:
            assert (await w.wait_for(f"{BASE}/availability")).payload == b"online"
            await w.wait_for(f"{BASE}/charger/garage")
    finally:
        await r.stop()
        r.store.close()


async def test_tls_without_client_certificate_is_refused(
    tls_broker: Broker, tmp_path: Path
) -> None:
    tls = tls_broker.tls
    assert tls is not None
    r = make_rig(
        tls_broker, tmp_path, mqtt={"tls": True, "ca_file": str(tls.ca_file)}, timeout_s=1.0
    )
    with capture_logs() as logs:
        task = asyncio.create_task(r.bridge.run())
        async with asyncio.timeout(WAIT_S):
            await _attempts(r, 2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert r.bridge.connections == 0
    assert len([e for e in logs if "unreachable" in e["event"]]) == 1
    r.store.close()


async def test_cancel_publishes_offline_and_the_will_covers_a_crash(
    broker: Broker, tmp_path: Path
) -> None:
    r = make_rig(broker, tmp_path)
    await r.start()
    async with watching(broker, f"{BASE}/availability") as w:
        await w.wait_for(f"{BASE}/availability", lambda m: m.payload == b"online")
        mark = w.mark()
        await r.stop()
        off = await w.wait_for(f"{BASE}/availability", after=mark)
        assert off.payload == b"offline"
    async with watching(broker, f"{BASE}/availability") as late:
        retained = await late.wait_for(f"{BASE}/availability")
        assert retained.payload == b"offline" and retained.retain
    r.store.close()


async def test_broker_restart_redelivers_state_and_nothing_crashes(
    broker: Broker, tmp_path: Path
) -> None:
    r = make_rig(broker, tmp_path)
    heard: list[bytes] = []
    got = asyncio.Event()

    def on_grid(topic: str, payload: bytes) -> None:
        heard.append(payload)
        got.set()

    r.bridge.add_listener("home/grid", on_grid)
    await r.start()
    first = r.bridge.connections
    broker.stop()  # persistence off: the broker forgets every retained message
    await eventually(lambda: not r.bridge.connected.is_set())  # it notices the lost socket
    # While the broker is down the store keeps changing; nothing blocks.
    r.store.apply(MeterSample("garage", 1, T0, power_w=7200.0, energy_import_wh=5000.0))
    r.store.record_mqtt_soc("car", 71.0)
    r.store.changes.publish(Changed("grid"))
    broker.start()
    async with asyncio.timeout(WAIT_S):
        await r.bridge.connected.wait()
    assert r.bridge.connections == first + 1
    assert r.task is not None and not r.task.done()
    async with watching(broker, f"{BASE}/#", "home/#", "homeassistant/#") as w:
        ch = await w.wait_for(f"{BASE}/charger/garage")
        assert ch.json()["power_w"] == 7200.0 and ch.json()["energy_import_wh"] == 5000.0
        car = await w.wait_for(f"{BASE}/vehicle/car")
        assert car.json()["soc_percent"] == 71.0
        assert (await w.wait_for(f"{BASE}/availability")).payload == b"online"
        await w.wait_for("homeassistant/sensor/v2g_home_vehicle_car_soc/config")
        # The listener was subscribed again after the reconnect.
        await w.client.publish("home/grid", b"offline", qos=1)
        await w.wait_for("home/grid")
    async with asyncio.timeout(WAIT_S):
        await got.wait()
    assert heard == [b"offline"]
    async with watching(broker, f"{BASE}/vehicle/car") as late:
        retained = await late.wait_for(f"{BASE}/vehicle/car")
        assert retained.retain and retained.json()["soc_percent"] == 71.0
    await r.stop()
    r.store.close()


async def test_events_raised_while_down_arrive_after_reconnect(
    broker: Broker, tmp_path: Path
) -> None:
    gate = asyncio.Event()

    async def retry_wait(delay: float) -> None:
        await gate.wait()  # reconnect only once the test's subscriber is listening

    r = make_rig(broker, tmp_path, retry_wait=retry_wait)
    await r.start()
    broker.stop()
    await eventually(lambda: not r.bridge.connected.is_set())  # it notices the lost socket
    r.store.notify(Notification(kind="while_down", message="said while the broker was down", at=T0))
    broker.start()
    async with watching(broker, f"{BASE}/events") as w:
        gate.set()
        ev = await w.wait_for(f"{BASE}/events", lambda m: m.json()["kind"] == "while_down")
        assert ev.json()["message"] == "said while the broker was down"
    await r.stop()
    r.store.close()


async def test_stop_is_bounded_when_the_broker_hangs(broker: Broker, tmp_path: Path) -> None:
    """A frozen broker never acknowledges the disconnect: the bridge must still stop (and with
    it the gateway), after the offline publish and the disconnect have each had a few seconds."""
    r = make_rig(broker, tmp_path)
    await r.start()
    assert broker.process is not None
    broker.process.send_signal(signal.SIGSTOP)
    try:
        async with asyncio.timeout(WAIT_S * 3):  # a hang here is the bug, not a slow machine
            await r.stop()
        assert r.task is None and not r.bridge.connected.is_set()
    finally:
        broker.process.send_signal(signal.SIGCONT)
        r.store.close()
