"""What a charger's answer to a profile teaches, as a pure function of the answer.

A refused discharge profile whose reason is unclear is followed by a probe: the same situation
without the discharge. If the charger takes that, the negative limit was the problem and the
charger is marked "discharge refused" (retried after its next boot or a day); if it refuses that
too, the refusal was never about discharging and the capability is left alone. A transaction the
charger does not know (it rebooted) makes the next profile a TxDefaultProfile instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from v2g_gateway.capability import DischargeCapability
from v2g_gateway.csms.refusals import Refusal, classify
from v2g_gateway.dispatch.gate import GatedProfile
from v2g_gateway.model import CommandResult


@dataclass(frozen=True, slots=True)
class Lesson:
    """What to change after one answer. None fields: leave as it is."""

    capability: DischargeCapability | None = None
    probing: bool | None = None  # start (True) or end (False) a probe
    forget_transaction: str | None = None  # the charger does not know this transaction
    notice: tuple[str, str, str] | None = None  # (kind, level, message) for the user


def lesson(
    result: CommandResult,
    profile: GatedProfile,
    cap: DischargeCapability,
    *,
    probing: bool,
    booted_at: datetime | None,
    now: datetime,
) -> Lesson:
    kind = classify(result)
    charger = profile.spec.charger_id
    words = result.detail or result.status.value
    if kind == Refusal.NONE:
        if probing:
            reason = f"refused a negative limit but took the same profile without it ({cap.reason})"
            return Lesson(
                capability=cap.refused(now, booted_at, reason),
                probing=False,
                notice=("charger_refused_discharge", "warning", _refused_text(charger, reason)),
            )
        return Lesson(capability=cap.worked(now) if profile.discharges else None)
    if kind == Refusal.TRANSIENT:
        return Lesson()
    if kind == Refusal.TRANSACTION and profile.spec.transaction_id:
        return Lesson(
            forget_transaction=profile.spec.transaction_id,
            notice=(
                "charger_forgot_transaction",
                "info",
                f"charger {charger} does not know transaction {profile.spec.transaction_id} "
                f"({words}); the profile goes in as the charger's default profile instead",
            ),
        )
    if kind == Refusal.DISCHARGE and profile.discharges:
        reason = f"refused a negative limit: {words}"
        return Lesson(
            capability=cap.refused(now, booted_at, reason),
            probing=False,
            notice=("charger_refused_discharge", "warning", _refused_text(charger, reason)),
        )
    if profile.discharges and not probing:
        # Unclear: is it the discharge? Ask the same without it; remember the charger's words.
        return Lesson(
            capability=DischargeCapability(
                cap.state, cap.since, words, cap.booted_at, cap.retry_after
            ),
            probing=True,
        )
    what = {
        Refusal.UNIT: "does not take this rate unit",
        Refusal.NOT_SUPPORTED: "does not support smart charging (or it is switched off)",
    }.get(kind, "refused a charging profile")
    return Lesson(
        probing=False if probing else None,
        notice=("charger_refused_profile", "warning", f"charger {charger} {what}: {words}"),
    )


def _refused_text(charger: str, reason: str) -> str:
    return (
        f"charger {charger} {reason}; charging only for now, tried again after its next "
        "reboot or in a day (reset with set/charger/<id>/discharge)"
    )
