"""TransactionEvent -> TransactionChanged (+ MeterSamples), applied at most once per seqNo.

Chargers re-send TransactionEvents they were not sure got through (and queue them while offline),
so the same transactionId+seqNo can arrive twice; the store must see it once. Updated events may
leave out the EVSE, so the EVSE of each transaction is remembered.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from v2g_gateway.csms.meter import sample_from
from v2g_gateway.csms.timestamps import parse_ts
from v2g_gateway.model import MeterSample, TransactionChanged, TransactionEventType

log = structlog.get_logger(__name__)

_PLUGGED_STATES = {"Charging", "EVConnected", "SuspendedEV", "SuspendedEVSE"}
_UNPLUG_TRIGGERS = {"EVDeparted", "EVCommunicationLost"}
_MAX_TRACKED = 64  # transactions remembered per charger (a home charger has one at a time)
# seqNos remembered per transaction: a V2G car stays plugged in for days, one event a minute,
# and re-sends only come from the charger's recent offline queue (the store keeps as many).
_SEEN_WINDOW = 64


@dataclass(slots=True)
class _Tx:
    evse_id: int
    seen: set[int] = field(default_factory=set)
    last_seq: int = -1


def _plugged(
    event_type: str, trigger: str, charging_state: str | None, stopped: str | None
) -> bool | None:
    if trigger in _UNPLUG_TRIGGERS or stopped == "EVDisconnected":
        return False
    if trigger == "CablePluggedIn":
        return True
    if charging_state is not None:
        return charging_state in _PLUGGED_STATES
    return None


class TransactionTracker:
    """Per-session memory of transactions: EVSE, seqNos applied, gaps."""

    def __init__(self, charger_id: str) -> None:
        self.charger_id = charger_id
        self._txs: OrderedDict[str, _Tx] = OrderedDict()

    def is_duplicate(self, payload: dict[str, Any]) -> bool:
        tx = self._txs.get(payload["transactionInfo"]["transactionId"])
        return tx is not None and int(payload["seqNo"]) in tx.seen

    def translate(self, payload: dict[str, Any]) -> list[TransactionChanged | MeterSample]:
        """Events for one (schema-valid) TransactionEvent; call mark() once they are applied."""
        info = payload["transactionInfo"]
        tx_id: str = info["transactionId"]
        known = self._txs.get(tx_id)
        evse = payload.get("evse") or {}
        evse_id = int(evse["id"]) if "id" in evse else (known.evse_id if known else 0)
        trigger = str(payload["triggerReason"])
        state = info.get("chargingState")
        stopped = info.get("stoppedReason")
        id_token = (payload.get("idToken") or {}).get("idToken")
        changed = TransactionChanged(
            charger_id=self.charger_id,
            evse_id=evse_id,
            transaction_id=tx_id,
            event_type=TransactionEventType(payload["eventType"]),
            at=parse_ts(payload["timestamp"]),
            seq_no=int(payload["seqNo"]),
            trigger_reason=trigger,
            charging_state=state,
            id_token=id_token,
            plugged=_plugged(payload["eventType"], trigger, state, stopped),
            stopped_reason=stopped,
            offline=bool(payload.get("offline", False)),
        )
        out: list[TransactionChanged | MeterSample] = [changed]
        for mv in payload.get("meterValue", ()):
            sample = sample_from(self.charger_id, evse_id, mv, tx_id)
            out.append(replace(sample, offline=True) if changed.offline else sample)
        return out

    def mark(self, payload: dict[str, Any], evse_id: int) -> None:
        tx_id: str = payload["transactionInfo"]["transactionId"]
        seq = int(payload["seqNo"])
        tx = self._txs.get(tx_id)
        if tx is None:
            tx = self._txs[tx_id] = _Tx(evse_id)
            while len(self._txs) > _MAX_TRACKED:
                self._txs.popitem(last=False)
        elif tx.last_seq >= 0 and seq > tx.last_seq + 1:
            log.warning("transaction seqNo gap", transaction_id=tx_id, after=tx.last_seq, got=seq)
        tx.seen.add(seq)
        if len(tx.seen) > _SEEN_WINDOW:
            tx.seen.remove(min(tx.seen))
        tx.last_seq = max(tx.last_seq, seq)
        self._txs.move_to_end(tx_id)

    def evse_of(self, transaction_id: str) -> int | None:
        tx = self._txs.get(transaction_id)
        return tx.evse_id if tx else None
