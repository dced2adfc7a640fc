"""A charger that reconnects every few seconds: the last session wins, nothing leaks.

Flaky Wi-Fi makes real chargers open a new websocket before the old one is seen dead. Each
reconnect here is a real websocket with a BootNotification; half of them leave the old socket
open so the server must replace the session itself.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fault_support import BOOT, Link, integrity, make_config, running, state_file, until

from v2g_gateway.clock import ManualClock

CYCLES = 30


def session_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("csms:")]


async def test_reconnect_storm_last_session_wins_without_leaks(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2025, 1, 15, 12, tzinfo=UTC))
    cfg = make_config(tmp_path / "state")
    async with running(cfg, clock) as gw:
        first = await Link.open(gw.csms.port)
        assert (await first.call("b0", "BootNotification", BOOT))[2]["status"] == "Accepted"
        await first.close()
        await until(lambda: not gw.csms.connected(), "the first session to end")
        await until(lambda: not session_tasks(), "the first session's tasks to end")
        baseline = len(asyncio.all_tasks())

        links: list[Link] = []
        for i in range(CYCLES):
            link = await Link.open(gw.csms.port)
            links.append(link)
            if i % 2 == 0 and len(links) > 1:
                await links[-2].close()  # a clean goodbye half of the time
            answer = await link.call(f"b{i}", "BootNotification", BOOT)
            assert answer[2]["status"] == "Accepted"
            await clock.advance(3)  # "every few seconds"
            assert gw.csms.connected() == {"garage"}

        last = links[-1]
        # Every older socket was closed by the server (or by us); only the last one is live.
        for old in links[:-1]:
            await asyncio.wait_for(old.reader, 10)
            assert old.ws.close_code is not None
        assert last.ws.close_code is None
        beat = await last.call("hb", "Heartbeat", {})
        assert beat[0] == 3 and "currentTime" in beat[2]
        assert gw.store.snapshot(clock.now()).chargers["garage"].online
        assert gw.csms._sessions["garage"].ws.remote_address == last.ws.local_address

        await last.close()
        await until(lambda: not gw.csms.connected(), "the last session to end")
        await until(lambda: not session_tasks(), "session tasks to be cancelled")
        await until(lambda: len(asyncio.all_tasks()) <= baseline, "no leaked tasks")
        assert not gw.store.snapshot(clock.now()).chargers["garage"].online
    assert integrity(state_file(cfg)) == "ok"
