"""What the safety rules look like from MQTT: a SoC's provenance on the vehicle topic, guests on
the charger topic, and the reset of a learnt "discharge refused" (MQTT command and CLI)."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

import tomli_w
from mqtt_helpers import BASE, T0, Broker, make_rig, watching

from v2g_gateway.model import (
    ChargerBooted,
    ConnectorStatus,
    ConnectorStatusChanged,
    MeterSample,
    TransactionChanged,
    TransactionEventType,
)

EVENTS = f"{BASE}/events"
CLI = [sys.executable, "-m", "v2g_gateway.cli"]


async def test_vehicle_topic_says_where_the_soc_comes_from_and_whether_it_counts(
    broker: Broker, tmp_path: Path
) -> None:
    rig = make_rig(broker, tmp_path)
    await rig.start()
    try:
        s = rig.store
        s.apply(ChargerBooted("garage", T0, vendor="Acme", model="BiDi"))
        s.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.OCCUPIED, T0))
        async with watching(broker, f"{BASE}/#") as w:
            await rig.clock.advance(1)
            s.record_mqtt_soc("car", 70.0, retained=True)
            car = (
                await w.wait_for(f"{BASE}/vehicle/car", lambda m: m.json()["soc_percent"] == 70.0)
            ).json()
            assert (car["soc_source"], car["soc_state"], car["soc_age_s"]) == (
                "mqtt",
                "age unknown",
                None,
            )
            assert car["plugged"] is True and car["identified_by"] == "default"
            s.apply(MeterSample("garage", 1, T0 + timedelta(hours=2), soc_percent=64.0))
            car = (
                await w.wait_for(f"{BASE}/vehicle/car", lambda m: m.json()["soc_percent"] == 64.0)
            ).json()
            assert (car["soc_source"], car["soc_state"]) == ("charger", "fresh")
            # Unplugged and plugged again: a new session, which has no SoC until a reading.
            s.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.AVAILABLE, T0))
            s.apply(ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.OCCUPIED, T0))
            s.apply(
                TransactionChanged(
                    "garage", 1, "t2", TransactionEventType.STARTED, T0, 0, "Authorized"
                )
            )
            ch = (
                await w.wait_for(
                    f"{BASE}/charger/garage",
                    lambda m: (
                        bool(m.json()["evses"])
                        and (m.json()["evses"][0].get("session") or {}).get("soc_state")
                        == "unknown"
                    ),
                )
            ).json()
            assert ch["evses"][0]["session"]["vehicle_id"] == "car"
            assert ch["evses"][0]["session"]["soc_percent"] is None  # a new plug-in: no SoC yet
    finally:
        await rig.stop()


async def test_reset_of_a_refused_discharge_over_mqtt_and_from_the_cli(
    broker: Broker, tmp_path: Path
) -> None:
    rig = make_rig(broker, tmp_path)
    await rig.start()
    try:
        from v2g_gateway.capability import DischargeCapability, DischargeState

        refused = DischargeCapability().refused(T0, None, "refused a negative limit: NoV2G")
        rig.store.set_discharge_capability("garage", refused)
        async with watching(broker, EVENTS) as w:
            await w.client.publish(f"{BASE}/set/charger/garage/discharge", b"reset", qos=1)
            ev = (
                await w.wait_for(EVENTS, lambda m: m.json()["kind"] == "discharge_capability_reset")
            ).json()
            assert "NoV2G" in ev["message"]
            ch = rig.store.charger_state("garage")
            assert ch is not None and ch.discharge.state == DischargeState.UNKNOWN
            await w.client.publish(f"{BASE}/set/charger/garage/discharge", b"forget it", qos=1)
            bad = (
                await w.wait_for(
                    EVENTS,
                    lambda m: (
                        m.json().get("command") == "set/charger/garage/discharge"
                        and not m.json()["ok"]
                    ),
                )
            ).json()
            assert "takes 'reset'" in bad["message"]

            # The CLI asks the running gateway the same way, and prints its answer.
            rig.store.set_discharge_capability("garage", refused)
            raw = {
                "gateway": {
                    "id": "home",
                    "state_dir": str(tmp_path / "state"),
                    "timezone": "Europe/Berlin",
                },
                "chargers": [{"id": "garage", "password": "a-long-random-secret"}],
                "vehicles": [{"id": "car", "battery_kwh": 60}],
                "mqtt": {"host": broker.host, "port": broker.port},
            }
            path = tmp_path / "gateway.toml"
            path.write_text(tomli_w.dumps(raw))
            proc = await asyncio.create_subprocess_exec(
                *CLI,
                "charger",
                "reset-discharge",
                "garage",
                "--config",
                str(path),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err
            assert b"done" in out
            ch = rig.store.charger_state("garage")
            assert ch is not None and ch.discharge.state == DischargeState.UNKNOWN
            proc = await asyncio.create_subprocess_exec(
                *CLI,
                "charger",
                "reset-discharge",
                "shed",
                "--config",
                str(path),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 2 and b"unknown charger 'shed'" in err
            assert err.count(b"\n") == 1  # one line, no traceback
    finally:
        await rig.stop()
