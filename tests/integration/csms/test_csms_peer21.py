"""OCPP 2.1: an independent implementation (npm ocpp-rpc, strictMode, its ocpp2.1 validators: ajv
on the official 2.1 schemas) checks every frame the gateway sends in a 2.1 session."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from csms_fixtures import PASSWORD, T0
from gated import through_gate

from v2g_gateway.csms.server import CsmsServer

PEER = Path(__file__).resolve().parents[2] / "peer"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_every_gateway_frame_is_valid_2_1(server: CsmsServer) -> None:
    assert (PEER / "node_modules" / "ocpp-rpc").is_dir(), "run: npm ci --prefix tests/peer"
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(PEER / "peer21.js"),
        f"ws://127.0.0.1:{server.port}/ocpp",
        "garage",
        PASSWORD,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        ready = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert ready == b"READY\n", ready
        c = server.commands
        assert c.version_of("garage") == "2.1"
        spec = through_gate(T0, [(0, -7400.5), (300, 0)], transaction_id="peer-tx-1")
        amps = through_gate(T0, [(0, -7400.5), (300, 3000), (600, 0)], transaction_id=None)
        results = [await c.set_charging_profile(spec)]
        c.adaptation.facts("garage").rate_unit = "A"  # a charger that takes only amperes
        results += [
            await c.set_charging_profile(amps),
            await c.get_composite_schedule("garage", 1, 900),
            await c.get_charging_profiles("garage", evse_id=1, purpose="TxProfile"),
            await c.clear_charging_profile("garage", profile_id=spec.spec.profile_id, evse_id=1),
            await c.request_start_transaction("garage", "TAG1", evse_id=1),
            await c.request_stop_transaction("garage", "peer-tx-1"),
            await c.trigger_message("garage", "MeterValues", evse_id=1),
            await c.get_variables("garage", [("SmartChargingCtrlr", "Enabled")]),
            await c.set_variables("garage", [("SampledDataCtrlr", "TxUpdatedInterval", "10")]),
            await c.get_base_report("garage", "SummaryInventory"),
            await c.change_availability("garage", False, evse_id=1, connector_id=1),
            await c.reset("garage", "OnIdle"),
            await c.notify_allowed_energy_transfer(
                "garage", {"transactionId": "peer-tx-1", "allowedEnergyTransfer": ["DC"]}
            ),
        ]
        assert [r.detail for r in results if not r.ok] == []
    finally:
        proc.stdin.close()
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        await proc.wait()
    summary = json.loads(line)
    assert summary.get("violations") == [], summary
    assert len(summary["sent"]) == 35  # the 2.0.1 set plus ten 2.1 charger-to-CSMS actions
    assert summary["received"]["SetChargingProfile"] == 2
    assert summary["received"]["NotifyAllowedEnergyTransfer"] >= 1
