"""A storm of meter values becomes one retained message per topic per interval, and the last
value is always delivered."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from mqtt_helpers import BASE, T0, Broker, make_rig, watching

from v2g_gateway.bus import Changed
from v2g_gateway.model import MeterSample, Notification


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_meter_storm_is_rate_limited_and_the_latest_value_wins(
    broker: Broker, tmp_path: Path
) -> None:
    mono = FakeMonotonic()
    r = make_rig(broker, tmp_path, mqtt={"min_publish_interval_s": 10}, monotonic=mono)
    topic = f"{BASE}/charger/garage"
    async with watching(broker, topic, f"{BASE}/events") as w:
        await r.start()
        await w.wait_for(topic)  # the state sent on connect
        for i in range(200):
            r.store.apply(MeterSample("garage", 1, T0 + timedelta(seconds=i), power_w=float(i)))
        # Events are sent after the state of the same round: once the marker is here, every
        # charger message the storm could cause within the interval has been sent.
        r.store.notify(Notification(kind="marker", message="m", at=T0))
        await w.wait_for(f"{BASE}/events", lambda m: m.json()["kind"] == "marker")
        assert len(w.on(topic)) == 1
        mono.now += 10.0
        r.bridge.on_change(Changed("preferences", "wake"))  # any change wakes the writer
        last = await w.wait_for(topic, lambda m: m.json()["power_w"] == 199.0)
        assert last.json()["last_seen"] == (T0 + timedelta(seconds=199)).isoformat()
        assert len(w.on(topic)) == 2
    assert r.bridge.published < 20
    await r.stop()
    r.store.close()


async def test_unchanged_state_is_not_republished(broker: Broker, tmp_path: Path) -> None:
    r = make_rig(broker, tmp_path)
    topic = f"{BASE}/vehicle/van"
    async with watching(broker, topic, f"{BASE}/events") as w:
        await r.start()
        await w.wait_for(topic)
        for _ in range(20):
            r.bridge.on_change(Changed("vehicle", "van"))
        r.store.notify(Notification(kind="marker", message="m", at=T0))
        await w.wait_for(f"{BASE}/events", lambda m: m.json()["kind"] == "marker")
        assert len(w.on(topic)) == 1
    await r.stop()
    r.store.close()
