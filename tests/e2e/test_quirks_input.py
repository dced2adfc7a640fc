"""Quirky chargers, input side: what field firmware sends, against the real gateway.

Off-schema frames, strictness per charger, tokens, a long offline queue, skewed clocks and a
charger that cannot sample every measurand: each with the gateway's answer and the notification
a user sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import charger, follow, running, simulating, skeleton_config, step_until
from quirk_helpers import PEAK, caps, car, kinds, notice

from simulators.quirks import Quirks
from v2g_gateway.app import STATE_FILE, Gateway
from v2g_gateway.clock import AcceleratedClock, ManualClock

QUIRKY_INPUT = Quirks(
    extra_properties=True,
    numbers_as_strings=True,
    vendor_measurands=True,
    odd_reasons=True,
    ocpp21_fields=True,
)


def _clock() -> AcceleratedClock:
    return AcceleratedClock(PEAK, speed=360)


async def test_off_schema_frames_are_read_and_the_car_is_served(
    tmp_path: Path, mosquitto: Any
) -> None:
    clock = _clock()
    cfg = skeleton_config(tmp_path / "state", mosquitto.port)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, quirks=QUIRKY_INPUT, dc=True)) as sim,
    ):
        assert sim.link.boot_answers == ["Accepted"]  # boot reason "ColdStart": still accepted
        await sim.plug_in(car(60.0))
        await step_until(sim, lambda: sim.power_w() < -1000, "never discharged", 3600)
        v = gw.store.snapshot(clock.now()).vehicles["car"]
        # Strings read as numbers (the charger charges on its own until the first profile).
        assert v.soc_percent is not None and 50 < v.soc_percent <= 62
        found = set(caps(gw)["input_quirks"])
        assert {
            "number as string",
            "unknown property",
            "vendor measurand",
            "out-of-enum reason",
            "OCPP 2.1 value",
            "OCPP 2.1 field",
        } <= found
        assert kinds(gw).count("charger_lenient_input") == 1
        assert "outside the OCPP 2.0.1 schema" in notice(gw, "charger_lenient_input")["message"]


async def test_strict_charger_is_refused_but_never_with_a_callerror_at_boot(
    tmp_path: Path, mosquitto: Any
) -> None:
    clock = _clock()
    cfg = skeleton_config(
        tmp_path / "state",
        mosquitto.port,
        chargers=[{"id": "garage", "password": "e2e-skeleton-password", "strict": True}],  # type: ignore[dict-item]
    )
    async with running(Gateway(cfg, clock)) as gw:
        sim = charger(gw, clock, quirks=QUIRKY_INPUT)
        task = asyncio.create_task(sim.run())
        try:
            await sim.connected.wait()
            await follow(sim, 600)  # boots again after each interval
            assert sim.link.boot_answers[:2] == ["Rejected", "Rejected"]
            assert not sim.booted.is_set()
            assert gw.store.snapshot(clock.now()).chargers.get("garage") is not None
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.mark.parametrize(
    ("authorize", "token_type", "token", "charges"),
    [
        ("any", "NoAuthorization", "car-token", True),
        ("any", "ISO14443", "04A1B2C3", True),  # an unknown card: a guest, not "Invalid"
        ("known", "ISO14443", "04A1B2C3", False),
    ],
)
async def test_tokens_follow_the_authorize_setting(
    tmp_path: Path, mosquitto: Any, authorize: str, token_type: str, token: str, charges: bool
) -> None:
    clock = _clock()
    cfg = skeleton_config(
        tmp_path / "state",
        mosquitto.port,
        ocpp={"host": "127.0.0.1", "port": 0, "authorize": authorize},
    )
    quirky = Quirks(token_type=token_type)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, quirks=quirky)) as sim,
    ):
        await sim.plug_in(car(60.0), id_token=token)
        await follow(sim, 120)
        assert (sim.transaction_id() is not None) is charges
        told = notice(gw, "charger_unknown_token")
        assert ("accepted" if charges else "refused") in told["message"]
        assert told["level"] == ("info" if charges else "warning")


async def test_long_offline_queue_is_answered_and_stored_in_order(
    tmp_path: Path, mosquitto: Any
) -> None:
    """1,500 TransactionEvents queued while the link was down, replayed in one burst: the
    default flood guard (600 a minute) must not refuse them; the clock stands still meanwhile."""
    clock = ManualClock(PEAK)
    ocpp = {"host": "127.0.0.1", "port": 0, "meter_interval_s": 1}
    cfg = skeleton_config(tmp_path / "state", mosquitto.port, ocpp=ocpp)
    async with running(Gateway(cfg, clock)) as gw:
        sim = charger(gw, clock)
        sim.step_s = 1.0
        async with simulating(sim):
            await sim.plug_in(car(90.0))
            await sim.link_down()
            await sim.disconnected.wait()
            for _ in range(1800):  # a meter value a second, and state changes
                if sim.link.queued >= 1500:
                    break
                await clock.advance(1)
                await sim.settled(clock.now())
            assert sim.link.queued >= 1500
            replayed = [p for p in sim.link.pending() if p.offline]
            with_soc = sum(1 for p in replayed if p.meter_value)
            assert len(replayed) >= 1500 and with_soc >= 1450
            sim.link_up()
            await sim.booted.wait()
            await asyncio.wait_for(sim.link.idle.wait(), 60)
            evse = sim.evse_states()[1]
            db = sqlite3.connect(tmp_path / "state" / STATE_FILE)
            try:
                (last,) = db.execute(
                    "SELECT last_seq_no FROM transactions WHERE transaction_id=?", (evse.tx_id,)
                ).fetchone()
                stamps = [r[0] for r in db.execute("SELECT at FROM soc_samples ORDER BY rowid")]
            finally:
                db.close()
            assert last == evse.tx_seq - 1  # every event answered and applied
            assert stamps == sorted(stamps)
            # One SoC sample per replayed meter value, plus the one from plugging in.
            assert len(stamps) == with_soc + 1
            assert "charger_lenient_input" not in kinds(gw)


@pytest.mark.parametrize(
    ("quirky", "skew", "words"),
    [
        (Quirks(local_utc_offset_h=1), 3600.0, "without a UTC offset"),
        (Quirks(clock_skew_s=7200), 7200.0, "2.0 h ahead"),
    ],
)
async def test_skewed_charger_clock_is_told_with_the_fix(
    tmp_path: Path, mosquitto: Any, quirky: Quirks, skew: float, words: str
) -> None:
    clock = _clock()
    cfg = skeleton_config(tmp_path / "state", mosquitto.port)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, quirks=quirky)) as sim,
    ):
        await sim.plug_in(car(60.0))
        await step_until(sim, lambda: "charger_clock_skew" in kinds(gw), "skew untold", 900)
        assert abs(caps(gw)["clock_skew_s"] - skew) < 120
        message = notice(gw, "charger_clock_skew")["message"]
        assert words in message and "TimeSource" in message
        await follow(sim, 600)
        assert kinds(gw).count("charger_clock_skew") == 1


@pytest.mark.parametrize("values_list", [True, False])
async def test_unsupported_measurands_fall_back_and_are_told(
    tmp_path: Path, mosquitto: Any, values_list: bool
) -> None:
    clock = _clock()
    cfg = skeleton_config(tmp_path / "state", mosquitto.port)
    can = ("Power.Active.Import", "Power.Active.Export", "Energy.Active.Import.Register", "Voltage")
    quirky = Quirks(measurands=can, report_values_list=values_list)
    async with (
        running(Gateway(cfg, clock)) as gw,
        simulating(charger(gw, clock, quirks=quirky)) as sim,
    ):
        await step_until(sim, lambda: "charger_measurands_missing" in kinds(gw), "never told", 600)
        sampled = sim.device.value("SampledDataCtrlr", "TxUpdatedMeasurands").split(",")
        assert sorted(sampled) == sorted(can)
        assert caps(gw)["measurands_missing"] == [
            "Energy.Active.Export.Register",
            "SoC",
            "Current.Import",
        ]
        assert "soc_topic" in notice(gw, "charger_measurands_missing")["message"]
