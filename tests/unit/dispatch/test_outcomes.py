"""What a charger's answer teaches: refusals classified, and no single answer disables V2G."""

from __future__ import annotations

from datetime import timedelta

import pytest
from world import NOW, World

from v2g_gateway.capability import DischargeCapability, DischargeState
from v2g_gateway.csms.refusals import Refusal, classify
from v2g_gateway.dispatch.core import step
from v2g_gateway.dispatch.gate import GatedProfile
from v2g_gateway.dispatch.outcomes import lesson
from v2g_gateway.model import CommandResult, CommandStatus


def rejected(reason: str | None = None, info: str | None = None) -> CommandResult:
    payload: dict[str, object] = {"status": "Rejected"}
    detail = "Rejected"
    if reason:
        payload["statusInfo"] = {"reasonCode": reason, **({"additionalInfo": info} if info else {})}
        detail = f"Rejected: {reason}"
    return CommandResult(CommandStatus.REJECTED, detail, payload)


def call_error(code: str, text: str = "") -> CommandResult:
    status = (
        CommandStatus.NOT_IMPLEMENTED
        if code in ("NotImplemented", "NotSupported")
        else CommandStatus.ERROR
    )
    return CommandResult(status, f"CALLERROR {code}: {text}", {"callError": code})


@pytest.mark.parametrize(
    ("result", "kind"),
    [
        (CommandResult(CommandStatus.ACCEPTED, None, {"status": "Accepted"}), Refusal.NONE),
        (CommandResult(CommandStatus.OFFLINE, "not connected"), Refusal.TRANSIENT),
        (CommandResult(CommandStatus.TIMEOUT, "no answer within 30 s"), Refusal.TRANSIENT),
        (rejected("ChargingScheduleChargingRateUnitUnsupported"), Refusal.UNIT),
        (rejected("TxProfileTransactionNotOnEvse"), Refusal.TRANSACTION),
        (rejected("TxNotFound"), Refusal.TRANSACTION),
        (rejected("InvalidValue", "negative limits not allowed"), Refusal.DISCHARGE),
        (rejected("NoDischarge"), Refusal.DISCHARGE),
        (rejected(), Refusal.UNCLEAR),
        (rejected("InvalidSchedule"), Refusal.UNCLEAR),
        (call_error("NotSupported", "smart charging disabled"), Refusal.NOT_SUPPORTED),
        (call_error("NotImplemented"), Refusal.NOT_SUPPORTED),
        (call_error("PropertyConstraintViolation", "limit"), Refusal.UNCLEAR),
    ],
)
def test_refusals_are_classified_by_what_the_charger_said(
    result: CommandResult, kind: Refusal
) -> None:
    assert classify(result) == kind


def discharge_profile() -> GatedProfile:
    p = step(World().build()).send
    assert p is not None and p.discharges
    return p


def hold_profile() -> GatedProfile:
    p = step(World(probing=True).build()).send
    assert p is not None and not p.discharges
    return p


UNKNOWN = DischargeCapability()


def test_a_wrong_unit_or_stale_transaction_never_touches_the_discharge_capability() -> None:
    for r in (rejected("ChargingScheduleChargingRateUnitUnsupported"), rejected("TxNotFound")):
        got = lesson(r, discharge_profile(), UNKNOWN, probing=False, booted_at=None, now=NOW)
        assert got.capability is None or got.capability.state == DischargeState.UNKNOWN
    tx = lesson(
        rejected("TxNotFound"), discharge_profile(), UNKNOWN, probing=False, booted_at=None, now=NOW
    )
    assert tx.forget_transaction == "tx-1"


def test_an_explicit_refusal_of_a_negative_limit_is_remembered_with_a_retry() -> None:
    got = lesson(
        rejected("InvalidValue", "negative limit"),
        discharge_profile(),
        UNKNOWN,
        probing=False,
        booted_at=None,
        now=NOW,
    )
    assert got.capability is not None and got.capability.state == DischargeState.REFUSED
    assert got.capability.retry_after == NOW + timedelta(days=1)
    assert got.notice is not None and "negative limit" in got.notice[2]


def test_an_unclear_refusal_is_probed_before_anything_is_believed() -> None:
    first = lesson(rejected(), discharge_profile(), UNKNOWN, probing=False, booted_at=None, now=NOW)
    assert first.probing is True
    assert first.capability is not None and first.capability.state == DischargeState.UNKNOWN
    cap = first.capability
    # The same without discharge is accepted: the negative limit was the problem.
    ok = CommandResult(CommandStatus.ACCEPTED, None, {"status": "Accepted"})
    taken = lesson(ok, hold_profile(), cap, probing=True, booted_at=None, now=NOW)
    assert taken.capability is not None and taken.capability.state == DischargeState.REFUSED
    assert taken.probing is False
    # ...or it is refused too: the refusal was not about discharging at all.
    also = lesson(rejected(), hold_profile(), cap, probing=True, booted_at=None, now=NOW)
    assert also.capability is None and also.probing is False
    assert also.notice is not None and also.notice[0] == "charger_refused_profile"


def test_a_refusal_is_retried_after_a_boot_a_day_or_a_reset() -> None:
    refused = UNKNOWN.refused(NOW, NOW - timedelta(days=3), "refused a negative limit")
    assert not refused.may_try(NOW + timedelta(hours=1), NOW - timedelta(days=3), outage=False)
    assert refused.may_try(NOW + timedelta(hours=1), NOW + timedelta(minutes=30), outage=False)
    assert refused.may_try(NOW + timedelta(days=1), NOW - timedelta(days=3), outage=False)
    assert refused.may_try(NOW + timedelta(minutes=5), None, outage=True)  # the house needs it
    assert not refused.may_try(NOW + timedelta(minutes=4), None, outage=True)
    assert refused.reset().may_try(NOW, None, outage=False)
    assert DischargeCapability.from_json(refused.to_json()) == refused
    assert DischargeCapability.from_json("garbage") == DischargeCapability()


def test_an_accepted_discharge_marks_it_working() -> None:
    ok = CommandResult(CommandStatus.ACCEPTED, None, {"status": "Accepted"})
    got = lesson(ok, discharge_profile(), UNKNOWN, probing=False, booted_at=None, now=NOW)
    assert got.capability is not None and got.capability.state == DischargeState.WORKS
