"""Two chargers both using transaction id "1", against the real daemon: neither loses anything.

Chargers number their transactions themselves; small ones count from 1 after every reset. Before,
transaction ids were de-duplicated across chargers, so the second charger's Started was lost and
one charger's seqNos pre-empted the other's. Now a transaction is (charger, id) everywhere: the
OCPP session's tracker, the store's de-duplication and sequence numbers, its rows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w
from fault_support import BOOT, Link, Notify, config_dict, free_port, start_daemon
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

PASSWORDS = {"garage": "garage-password-0123456", "carport": "carport-password-0123456"}


async def open_link(port: int, charger: str) -> Link:
    token = base64.b64encode(f"{charger}:{PASSWORDS[charger]}".encode()).decode()
    ws = await connect(
        f"ws://127.0.0.1:{port}/{charger}",
        subprotocols=[Subprotocol("ocpp2.0.1")],
        additional_headers={"Authorization": f"Basic {token}"},
    )
    return Link(ws)


def event(kind: str, seq: int, state: str, token: str | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {
        "eventType": kind,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "triggerReason": {"Started": "CablePluggedIn", "Ended": "EVDeparted"}.get(
            kind, "ChargingStateChanged"
        ),
        "seqNo": seq,
        "transactionInfo": {"transactionId": "1", "chargingState": state},
        "evse": {"id": 1, "connectorId": 1},
    }
    if token:
        p["idToken"] = {"idToken": token, "type": "ISO14443"}
    if kind == "Ended":
        p["transactionInfo"]["stoppedReason"] = "EVDisconnected"
    return p


async def test_two_chargers_with_the_same_transaction_id_keep_both(
    tmp_path: Path, notify: Notify
) -> None:
    port = free_port()
    d = config_dict(
        tmp_path / "state",
        ocpp={"port": port},
        chargers=[{"id": c, "password": p} for c, p in PASSWORDS.items()],
    )
    config = tmp_path / "gateway.toml"
    config.write_text(tomli_w.dumps(d))
    proc = start_daemon(config, notify, tmp_path / "daemon.log")
    try:
        await asyncio.to_thread(notify.wait_for, "READY=1")
        garage, carport = await open_link(port, "garage"), await open_link(port, "carport")
        for link in (garage, carport):
            assert (await link.call("b", "BootNotification", BOOT))[2]["status"] == "Accepted"
        # Both start transaction "1" with seqNo 0: the second is not a duplicate of the first.
        ok = await garage.call(
            "g0", "TransactionEvent", event("Started", 0, "EVConnected", "car-token")
        )
        assert ok[0] == 3 and ok[2]["idTokenInfo"]["status"] == "Accepted"
        assert (await carport.call("c0", "TransactionEvent", event("Started", 0, "EVConnected")))[
            0
        ] == 3
        # The garage's seqNo 1 does not pre-empt the carport's seqNo 1, nor its end.
        assert (await garage.call("g1", "TransactionEvent", event("Updated", 1, "Charging")))[
            0
        ] == 3
        assert (await carport.call("c1", "TransactionEvent", event("Updated", 1, "SuspendedEV")))[
            0
        ] == 3
        assert (await carport.call("c2", "TransactionEvent", event("Ended", 2, "Idle")))[0] == 3
        # A resend is still recognised per charger (the garage's seqNo 1 again changes nothing).
        again = event("Updated", 1, "SuspendedEVSE")
        assert (await garage.call("g1-again", "TransactionEvent", again))[0] == 3
        await garage.close()
        await carport.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 15) == 0

    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "state.sqlite")) as db:
        rows = {
            r[0]: r[1:]
            for r in db.execute(
                "SELECT charger_id, last_seq_no, seen_seq_nos, ended_at, stopped_reason, "
                "vehicle_id FROM transactions WHERE transaction_id='1'"
            )
        }
        evses = dict(
            db.execute("SELECT charger_id, charging_state FROM evses WHERE evse_id=1").fetchall()
        )
    assert set(rows) == {"garage", "carport"}
    g_last, g_seen, g_ended, _, g_vehicle = rows["garage"]
    c_last, c_seen, c_ended, c_reason, c_vehicle = rows["carport"]
    assert (g_last, json.loads(g_seen), g_ended) == (1, [0, 1], None)  # still running
    assert (c_last, json.loads(c_seen)) == (2, [0, 1, 2]) and c_ended is not None
    assert c_reason == "EVDisconnected"
    assert g_vehicle == "car" and c_vehicle is None  # the token's car, and a guest
    assert evses == {"garage": "Charging", "carport": "Idle"}  # the resend was not applied
