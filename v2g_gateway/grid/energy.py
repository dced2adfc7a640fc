"""Energy the cars supplied during one outage, for the user's "grid restored" message.

The charger's export register is the truth when it reports one; the power samples, integrated,
stand in for chargers that only send power. Per EVSE, so two cars add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from v2g_gateway.model import EvseState

EvseKey = tuple[str, int]


@dataclass(slots=True)
class _Evse:
    export_start_wh: float | None = None
    export_last_wh: float | None = None
    power_w: float | None = None
    power_at: datetime | None = None
    integrated_wh: float = 0.0


@dataclass(slots=True)
class BackupEnergy:
    started_at: datetime | None = None
    _evses: dict[EvseKey, _Evse] = field(default_factory=dict)

    def start(self, now: datetime, evses: list[EvseState]) -> None:
        self.started_at = now
        self._evses = {}
        for ev in evses:
            e = self._evses.setdefault((ev.charger_id, ev.evse_id), _Evse())
            e.export_start_wh = ev.energy_export_wh
            e.export_last_wh = ev.energy_export_wh
            e.power_w = ev.power_w
            e.power_at = now

    def sample(self, ev: EvseState) -> None:
        """A new meter reading during the outage."""
        if self.started_at is None:
            return
        e = self._evses.setdefault((ev.charger_id, ev.evse_id), _Evse())
        at = ev.updated_at or self.started_at
        if e.power_w is not None and e.power_at is not None and at > e.power_at:
            hours = (at - e.power_at).total_seconds() / 3600.0
            e.integrated_wh += max(0.0, -e.power_w) * hours
        if ev.power_w is not None and (e.power_at is None or at >= e.power_at):
            e.power_w, e.power_at = ev.power_w, at
        if ev.energy_export_wh is not None:
            if e.export_start_wh is None:
                e.export_start_wh = ev.energy_export_wh
            e.export_last_wh = ev.energy_export_wh

    def supplied_wh(self, now: datetime) -> float:
        """Export register deltas where sane, else power integrated up to `now`."""
        total = 0.0
        for e in self._evses.values():
            if (
                e.export_start_wh is not None
                and e.export_last_wh is not None
                and e.export_last_wh > e.export_start_wh
            ):
                total += e.export_last_wh - e.export_start_wh
                continue
            tail = 0.0
            if e.power_w is not None and e.power_at is not None and now > e.power_at:
                tail = max(0.0, -e.power_w) * (now - e.power_at).total_seconds() / 3600.0
            total += e.integrated_wh + tail
        return total
