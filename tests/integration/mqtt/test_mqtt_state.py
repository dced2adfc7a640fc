"""Retained state, events and SoC topics against a real mosquitto, a real SQLite store and Policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from mqtt_helpers import BASE, T0, Broker, Rig, make_rig, watching

from v2g_gateway.bus import Changed
from v2g_gateway.model import (
    ChargerBooted,
    ConnectorStatus,
    ConnectorStatusChanged,
    MeterSample,
    Notification,
)


async def test_availability_gateway_and_empty_state_are_retained(rig: Rig) -> None:
    broker_w = rig.bridge.topics
    async with watching(rig.broker, f"{BASE}/#") as w:
        avail = await w.wait_for(broker_w.availability)
        assert avail.payload == b"online" and avail.retain
        gw = (await w.wait_for(f"{BASE}/gateway")).json()
        assert gw["gateway_id"] == "home"
        assert gw["vehicles"] == ["car", "van"] and gw["grid_outage"] is False
        assert "version" in gw and isinstance(gw["uptime_s"], int)
        car = (await w.wait_for(f"{BASE}/vehicle/car")).json()
        assert car["soc_percent"] is None and car["plugged"] is False
        assert car["make"] == "Nissan" and car["reserve_soc_percent"] == 40
        assert car["mode"] == "auto" and car["next_action"]["action"] == "unplugged"
        plan = (await w.wait_for(f"{BASE}/plan")).json()
        assert plan == {"gateway_id": "home", "vehicles": {"car": None, "van": None}}
        charger = (await w.wait_for(f"{BASE}/charger/garage")).json()
        assert charger["online"] is False and charger["max_charge_w"] == 11000


async def test_charger_and_vehicle_follow_store_events(rig: Rig) -> None:
    s = rig.store
    async with watching(rig.broker, f"{BASE}/#") as w:
        s.apply(ChargerBooted("garage", T0, vendor="Acme", model="Bidi 11", firmware="1.2"))
        s.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.OCCUPIED, T0))
        s.apply(
            MeterSample(
                "garage",
                1,
                T0,
                soc_percent=62.5,
                power_w=-3500.0,
                energy_import_wh=1000.0,
                energy_export_wh=250.0,
                voltage_v=230.0,
            )
        )
        ch = (
            await w.wait_for(f"{BASE}/charger/garage", lambda m: m.json()["power_w"] == -3500.0)
        ).json()
        assert ch["vendor"] == "Acme" and ch["model"] == "Bidi 11" and ch["firmware"] == "1.2"
        assert ch["online"] is True and ch["plugged"] is True and ch["discharging"] is True
        assert ch["status"] == "Occupied" and ch["energy_export_wh"] == 250.0
        assert ch["last_seen"] == T0.isoformat()
        assert ch["evses"][0]["voltage_v"] == 230.0
        car = (
            await w.wait_for(f"{BASE}/vehicle/car", lambda m: m.json()["soc_percent"] == 62.5)
        ).json()
        assert car["plugged"] is True and car["state"] == "discharging"
        assert car["power_w"] == -3500.0 and car["charger_id"] == "garage"


async def test_plan_topics_carry_the_stored_plan_and_next_action(rig: Rig) -> None:
    plan = {
        "created_at": T0.isoformat(),
        "vehicle_id": "car",
        "revenue": 1.25,
        "slots": [
            _slot(0, 0.0, 0.0, 30.0),
            _slot(1, 0.0, 5.0, 25.0),
            _slot(2, 7.0, 0.0, 32.0),
        ],
    }
    async with watching(rig.broker, f"{BASE}/#") as w:
        s = rig.store
        s.apply(ChargerBooted("garage", T0, vendor="Acme", model="Bidi 11", firmware="1.2"))
        s.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.OCCUPIED, T0))
        s.apply(MeterSample("garage", 1, T0, soc_percent=50.0, power_w=0.0))
        rig.store.save_plan("car", T0, plan)
        got = (await w.wait_for(f"{BASE}/plan/car", lambda m: m.json().get("slots"))).json()
        assert got == plan
        agg = (await w.wait_for(f"{BASE}/plan", lambda m: m.json()["vehicles"]["car"])).json()
        assert agg["vehicles"]["car"]["revenue"] == 1.25
        car = (
            await w.wait_for(
                f"{BASE}/vehicle/car", lambda m: m.json()["next_action"]["action"] == "discharge"
            )
        ).json()
        assert car["next_action"] == {
            "action": "discharge",
            "at": (T0 + timedelta(hours=1)).isoformat(),
            "power_w": -5000.0,
            "reason": "test",
        }


async def test_notifications_go_to_events_not_retained(rig: Rig) -> None:
    async with watching(rig.broker, f"{BASE}/events") as w:
        rig.store.notify(
            Notification(
                kind="discharge_stopped",
                message="stopped at the reserve of 40 %",
                at=T0,
                level="warning",
                charger_id="garage",
                vehicle_id="car",
                data={"soc_percent": 40},
            )
        )
        ev = await w.wait_for(f"{BASE}/events", lambda m: m.json()["kind"] == "discharge_stopped")
        assert not ev.retain
        assert ev.json() == {
            "kind": "discharge_stopped",
            "message": "stopped at the reserve of 40 %",
            "level": "warning",
            "at": T0.isoformat(),
            "charger_id": "garage",
            "vehicle_id": "car",
            "data": {"soc_percent": 40},
        }
    async with watching(rig.broker, f"{BASE}/events") as late:
        # A late subscriber gets nothing retained on events: a marker proves delivery works.
        rig.store.notify(Notification(kind="marker", message="m", at=T0))
        await late.wait_for(f"{BASE}/events", lambda m: m.json()["kind"] == "marker")
        assert [m.json()["kind"] for m in late.on(f"{BASE}/events")] == ["marker"]


async def test_prices_and_gateway_health_views(broker: Broker, tmp_path: Path) -> None:
    view = {"status": "ok", "currency": "EUR", "current": {"import_price_per_kwh": 0.31}}
    r = make_rig(
        broker,
        tmp_path,
        prices_view=lambda: view,
        health_view=lambda: {"uptime_s": 42, "store": "ok"},
    )
    await r.start()
    try:
        async with watching(broker, f"{BASE}/#") as w:
            prices = (await w.wait_for(f"{BASE}/prices")).json()
            assert prices["current"]["import_price_per_kwh"] == 0.31 and "updated_at" in prices
            gw = (await w.wait_for(f"{BASE}/gateway")).json()
            assert gw["uptime_s"] == 42 and gw["health"] == {"uptime_s": 42, "store": "ok"}
            view["current"] = {"import_price_per_kwh": 0.12}
            mark = w.mark()
            r.store.changes.publish(Changed("prices", "tariff"))
            again = await w.wait_for(f"{BASE}/prices", after=mark)
            assert again.json()["current"]["import_price_per_kwh"] == 0.12
            r.store.set_grid_outage(True)
            gw = await w.wait_for(f"{BASE}/gateway", lambda m: m.json()["grid_outage"])
            ch = await w.wait_for(f"{BASE}/charger/garage", lambda m: m.json()["grid_outage"])
            assert gw.json()["health"]["store"] == "ok"
            assert ch.json()["grid_outage"] is True
    finally:
        await r.stop()
        r.store.close()


async def test_soc_topic_number_and_json_are_recorded_bad_ones_rejected(rig: Rig) -> None:
    b = rig.broker
    async with watching(b, f"{BASE}/#") as w:
        await w.client.publish("cars/car/soc", b"55.5", qos=1)
        await w.wait_for(f"{BASE}/vehicle/car", lambda m: m.json()["soc_percent"] == 55.5)
        await w.client.publish("cars/car/soc", b'{"soc_percent": 57}', qos=1)
        await w.wait_for(f"{BASE}/vehicle/car", lambda m: m.json()["soc_percent"] == 57)
        for bad, why in (
            (b"lots", "expected a number"),
            (b"140", "outside 0..100"),
            (b'{"soc": 5}', "without 'soc_percent'"),
            (b"true", "must be a number"),
        ):
            mark = w.mark()
            await w.client.publish("cars/car/soc", bad, qos=1)
            ev = await w.wait_for(
                f"{BASE}/events",
                lambda m, why=why: (
                    m.json()["kind"] == "soc_rejected" and why in m.json()["message"]
                ),
                after=mark,
            )
            assert ev.json()["vehicle_id"] == "car" and ev.json()["level"] == "warning"
        assert rig.store.snapshot(T0).vehicles["car"].soc_percent == 57


def _slot(h: int, charge_kw: float, discharge_kw: float, soc_end_kwh: float) -> dict[str, object]:
    return {
        "start": (T0 + timedelta(hours=h)).isoformat(),
        "end": (T0 + timedelta(hours=h + 1)).isoformat(),
        "charge_kw": charge_kw,
        "discharge_kw": discharge_kw,
        "soc_start_kwh": 30.0,
        "soc_end_kwh": soc_end_kwh,
        "import_per_kwh": 0.3,
        "export_per_kwh": 0.2,
        "reason": "test",
    }


async def test_soc_topic_may_carry_odometer_and_range(rig: Rig) -> None:
    async with watching(rig.broker, f"{BASE}/vehicle/car") as w:
        await w.client.publish(
            "cars/car/soc", b'{"soc_percent": 60, "odometer_km": 12345, "range_km": 210}', qos=1
        )
        car = await w.wait_for(f"{BASE}/vehicle/car", lambda m: m.json()["soc_percent"] == 60)
        assert car.json()["odometer_km"] == 12345 and car.json()["range_km"] == 210
        await w.client.publish("cars/car/soc", b'{"range_km": 190}', qos=1)
        car = await w.wait_for(f"{BASE}/vehicle/car", lambda m: m.json()["range_km"] == 190)
        assert car.json()["soc_percent"] == 60 and car.json()["odometer_km"] == 12345


async def test_broken_views_and_listeners_cost_only_their_own_topic(
    broker: Broker, tmp_path: Path
) -> None:
    def broken_health() -> dict[str, object]:
        raise RuntimeError("health is broken")

    def broken_listener(topic: str, payload: bytes) -> None:
        raise RuntimeError("listener is broken")

    r = make_rig(broker, tmp_path, health_view=broken_health)
    r.bridge.add_listener("home/grid", broken_listener)
    await r.start()
    try:
        async with watching(broker, f"{BASE}/#") as w:
            await w.client.publish("home/grid", b"offline", qos=1)
            await w.client.publish("cars/car/soc", b"33", qos=1)
            await w.wait_for(f"{BASE}/vehicle/car", lambda m: m.json()["soc_percent"] == 33)
            assert w.on(f"{BASE}/gateway") == []
            assert r.bridge.connected.is_set() and r.bridge.connections == 1
    finally:
        await r.stop()
        r.store.close()
