"""Hostile input: each class gets the right CALLERROR or close; the session and state survive."""

from __future__ import annotations

import json
from typing import Any

import pytest
from csms_client import RawCharger, basic
from csms_fixtures import BOOT, PASSWORD, T0, Events, make_config

from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.errors import StoreError
from v2g_gateway.model import TransactionChanged


async def assert_still_serving(charger: RawCharger) -> None:
    answer = await charger.call("Heartbeat", {})
    assert answer[0] == 3


async def unsolicited_error(charger: RawCharger, raw: str | bytes) -> list[Any]:
    await charger.send_raw(raw)
    msg = await charger.unsolicited.get()
    assert msg[0] == 4
    return msg


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "RpcFrameworkError"),
        ('{"a": 1}', "RpcFrameworkError"),
        ("[]", "RpcFrameworkError"),
        ('[2, "x"]', "RpcFrameworkError"),
        ('[2, 17, "Heartbeat", {}]', "RpcFrameworkError"),  # messageId must be a string
        ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', "RpcFrameworkError"),
        ('[2, "a", "Heartbeat", {"x": NaN}]', "RpcFrameworkError"),
        ('[2, "a", "Heartbeat", {"x": 1e999}]', "RpcFrameworkError"),
        ("[" * 5000 + "]" * 5000, "RpcFrameworkError"),
        (b"\x00\x01binary", "RpcFrameworkError"),
    ],
)
async def test_unreadable_frames(charger: RawCharger, raw: str | bytes, code: str) -> None:
    msg = await unsolicited_error(charger, raw)
    assert msg[1] == "-1"
    assert msg[2] == code
    await assert_still_serving(charger)


async def test_wrong_message_type_id(charger: RawCharger) -> None:
    answer = await charger.call_raw("t1", '[7, "t1", "Heartbeat", {}]')
    assert answer[:3] == [4, "t1", "MessageTypeNotSupported"]
    await assert_still_serving(charger)


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ("FlyToTheMoon", "NotImplemented"),
        ("../../../etc/passwd", "NotImplemented"),
        ("SetChargingProfile", "NotSupported"),  # a CSMS-to-charger action
    ],
)
async def test_unknown_actions(charger: RawCharger, action: str, code: str) -> None:
    answer = await charger.call_raw("u1", json.dumps([2, "u1", action, {}]))
    assert answer[:3] == [4, "u1", code]
    await assert_still_serving(charger)


def _status(**override: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "timestamp": "2025-01-15T12:00:00Z",
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    }
    payload.update(override)
    return {k: v for k, v in payload.items() if v is not None}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (_status(evseId=None), "OccurrenceConstraintViolation"),
        (_status(evseId="one"), "TypeConstraintViolation"),
        (_status(colour="red"), "FormatViolation"),
        (_status(connectorStatus="OnFire"), "PropertyConstraintViolation"),
        (_status(timestamp="yesterday"), "PropertyConstraintViolation"),
        ([1, 2], "FormatViolation"),
    ],
)
async def test_schema_violations(make_server: Any, events: Events, payload: Any, code: str) -> None:
    """strict = true: every break of the schema gets its CALLERROR (leniency: test_csms_lenient)."""
    server: CsmsServer = await make_server(make_config(charger={"strict": True}))
    charger = await RawCharger.open(
        f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
    )
    answer = await charger.call_raw("s1", json.dumps([2, "s1", "StatusNotification", payload]))
    assert answer[:3] == [4, "s1", code]
    assert isinstance(answer[3], str) and answer[3]
    assert events[1:] == []  # nothing but ChargerConnected reached the store
    await assert_still_serving(charger)
    await charger.close()


async def test_bad_transaction_event_changes_nothing(charger: RawCharger, events: Events) -> None:
    payload = {
        "eventType": "Started",
        "timestamp": "2025-01-15T12:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "tx"},
        "meterValue": [{"timestamp": "not a time", "sampledValue": [{"value": 1}]}],
    }
    answer = await charger.call("TransactionEvent", payload)
    assert answer[2] == "PropertyConstraintViolation"
    assert events.of(TransactionChanged) == []
    # The charger fixes it and re-sends: applied once, not treated as a duplicate.
    payload["meterValue"][0]["timestamp"] = "2025-01-15T12:00:00Z"
    assert (await charger.call("TransactionEvent", payload))[0] == 3
    assert len(events.of(TransactionChanged)) == 1


async def test_broken_results_are_not_answered(charger: RawCharger) -> None:
    await charger.send_raw('[3, "nobody-asked", {}]')
    await charger.send_raw('[4, "nobody-asked"]')
    await assert_still_serving(charger)
    assert charger.unsolicited.empty()


async def test_oversized_frame_closes_1009(make_server: Any) -> None:
    server: CsmsServer = await make_server(make_config(max_frame_bytes=2048))
    c = await RawCharger.open(
        f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
    )
    boot = dict(BOOT, chargingStation={**BOOT["chargingStation"], "model": "x" * 5000})  # type: ignore[dict-item]
    await c.send_raw(json.dumps([2, "big", "BootNotification", boot]))
    await c.ws.wait_closed()
    assert c.ws.close_code == 1009
    assert "2048" in c.ws.close_reason


async def test_flood_is_refused_then_closed(make_server: Any) -> None:
    server: CsmsServer = await make_server(make_config(max_messages_per_minute=10))
    c = await RawCharger.open(
        f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
    )
    # The manual clock stands still, so the bucket never refills: 10 pass, 10 are refused.
    answers = [await c.call("Heartbeat", {}) for _ in range(20)]
    assert [a[0] for a in answers] == [3] * 10 + [4] * 10
    assert {a[2] for a in answers[10:]} == {"GenericError"}
    await c.send_raw('[2, "last", "Heartbeat", {}]')
    await c.ws.wait_closed()
    assert (c.ws.close_code, c.ws.close_reason) == (1008, "message rate limit exceeded")


async def test_failing_store_gives_internal_error(make_server: Any, events: Events) -> None:
    def sink(event: Any) -> None:
        if type(event).__name__ == "HeartbeatSeen":
            raise StoreError("disk full")
        events.append(event)

    from v2g_gateway.clock import ManualClock

    server = CsmsServer(make_config(), sink, ManualClock(T0))
    await server.start()
    try:
        c = await RawCharger.open(
            f"ws://127.0.0.1:{server.port}/ocpp/garage", headers=basic("garage", PASSWORD)
        )
        answer = await c.call("Heartbeat", {})
        assert answer[2] == "InternalError"
        ok = await c.call("StatusNotification", _status())
        assert ok[0] == 3
        await c.close()
    finally:
        await server.close()


async def test_hostile_frames_never_crash_the_server(charger: RawCharger) -> None:
    junk: list[str | bytes] = [
        "null",
        "[2]",
        '[2, "a", null, null]',
        '[3, "a"]',
        '[4, "a", 1, 2, 3, 4]',
        '[2, "a", "BootNotification", {"chargingStation": []}]',
        '[2, "a", "TransactionEvent", {"seqNo": -1}]',
        "\u0000",
    ]
    for raw in junk:
        await charger.send_raw(raw)
    await assert_still_serving(charger)
