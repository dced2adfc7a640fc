"""Hostile OCPP frames over a real websocket into a real CsmsServer and SQLite store.

Each example sends one frame and then needs a Heartbeat answered on the same charger identity:
a crash, a hung session or a poisoned store shows up at once. At the end the database must pass
integrity_check, the snapshot must load, and no stored SoC may be outside 0..100.
`V2G_FUZZ_EXAMPLES` sets the number of examples per test (default 1500; scripts/reliability
uses more).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from ocpp_strategies import INVALID_FRAMES, VALID_CALLS
from ocpp_target import OcppTarget
from structlog.testing import capture_logs

EXAMPLES = int(os.environ.get("V2G_FUZZ_EXAMPLES", "1500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=os.environ.get("V2G_FUZZ_RANDOM") is None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CRASH_EVENTS = ("session failed", "sink failed on disconnect")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OcppTarget]:
    t = OcppTarget(tmp_path_factory.mktemp("fuzz-ocpp"))
    yield t
    t.close()


@pytest.fixture(scope="module")
def logs() -> Iterator[list[dict[str, Any]]]:
    with capture_logs() as captured:
        yield captured


def alive(target: OcppTarget) -> None:
    answer = target.heartbeat()
    assert answer[0] == 3 and "currentTime" in answer[2], answer


@FUZZ
@given(frame=VALID_CALLS)
def test_schema_valid_hostile_calls(
    target: OcppTarget, logs: list[dict[str, Any]], frame: str
) -> None:
    target.send(frame)
    alive(target)


@FUZZ
@given(frame=INVALID_FRAMES)
def test_invalid_frames(target: OcppTarget, logs: list[dict[str, Any]], frame: str | bytes) -> None:
    target.send(frame)
    alive(target)


def test_no_crash_and_no_corrupted_state(target: OcppTarget, logs: list[dict[str, Any]]) -> None:
    """Runs after the fuzzers in this module (pytest keeps file order)."""
    alive(target)
    assert target.sent >= 2 * min(EXAMPLES, 100)
    crashes = [
        e
        for e in logs
        if e["event"] in CRASH_EVENTS or (e.get("exc_info") and e["event"] != "handler failed")
    ]
    assert crashes == [], crashes[:5]
    assert target.loop_errors == [], target.loop_errors[:5]
    assert 1011 not in target.close_codes  # no session died of an internal error
    snap = target.store.snapshot(target.clock.now())
    assert "fuzz" in snap.chargers
    path = target.store.path
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        socs = [r[0] for r in db.execute("SELECT soc_percent FROM soc_samples")]
        stored = [r[0] for r in db.execute("SELECT soc_percent FROM vehicles")]
    assert all(0 <= s <= 100 for s in socs + [s for s in stored if s is not None])
    for v in snap.vehicles.values():
        assert v.soc_percent is None or 0 <= v.soc_percent <= 100


def test_no_handler_raised(target: OcppTarget, logs: list[dict[str, Any]]) -> None:
    """Bad values should be refused with a clear CALLERROR, not reach a handler and raise."""
    failed = sorted({str(e.get("action")) for e in logs if e["event"] == "handler failed"})
    assert (target.internal_errors, failed) == (0, [])
