"""Real time between plans: the grid connection's limit from the measured grid power, and the
setpoint following PV surplus and the house load inside a slot.

Pure rules plus a little memory (the last setpoint per EVSE and when it moved), used by the
controller for every EVSE in a round. What they produce goes into the situation (a planned power
and per-EVSE caps in GateLimits), so it passes the core and the safety gate like the plan.

- **Caps** (DESIGN.md invariant 8): with a fresh grid reading, each EVSE may charge what it
  takes now plus its share of the import headroom (a breach is a negative headroom: every
  charging EVSE gives up its part of the excess); likewise for export and discharging EVSEs.
  Without a fresh reading (silence is unknown, never zero), the limit is split evenly among the
  plugged EVSEs, so the cars together never exceed it whatever the house does.
- **Following**: a car in "PV only" or "min + PV" takes what would otherwise be exported (plus
  what it takes now); a smart car whose plan stores PV surplus takes the real surplus instead
  of the forecast one, and a smart car whose plan covers the house (V2H) follows the real load.
  A setpoint moves only by more than `follow_step_w` and at most every `follow_min_interval_s`;
  a breach of the limit moves it at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from v2g_gateway.dispatch.site_types import ChargeMode
from v2g_gateway.home.config import HomeSection
from v2g_gateway.home.meter import HomeNow

EvseKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Cap:
    charge_w: float | None = None  # most it may charge now
    discharge_w: float | None = None  # most it may discharge now (a magnitude)


def caps(
    cfg: HomeSection,
    home: HomeNow,
    powers: Mapping[EvseKey, float],
    export_limit_kw: float | None,
) -> dict[EvseKey, Cap]:
    """Per plugged EVSE (with the power it takes now, + charge, - discharge)."""
    imp = cfg.import_limit_kw()
    exp = export_limit_kw
    if not cfg.enabled or not powers or (imp is None and exp is None):
        return {}
    margin = cfg.limit_margin_w
    n = len(powers)
    out: dict[EvseKey, Cap] = {}
    grid = home.grid_w
    charging = {k: max(0.0, p) for k, p in powers.items()}
    giving = {k: max(0.0, -p) for k, p in powers.items()}
    c_total, d_total = sum(charging.values()), sum(giving.values())
    for k in powers:
        charge = discharge = None
        if imp is not None:
            limit = max(0.0, imp * 1000.0 - margin)
            if grid is None:
                charge = limit / n
            else:
                room = limit - grid
                if room >= 0:
                    charge = charging[k] + room / n
                else:  # a breach: the charging cars give up the excess in proportion
                    allowed = max(0.0, c_total + room)
                    charge = 0.0 if c_total <= 0 else charging[k] * allowed / c_total
        if exp is not None:
            limit = max(0.0, exp * 1000.0 - margin)
            if grid is None:
                discharge = limit / n
            else:
                room = limit + grid  # grid < 0 when exporting
                if room >= 0:
                    discharge = giving[k] + room / n
                else:
                    allowed = max(0.0, d_total + room)
                    discharge = 0.0 if d_total <= 0 else giving[k] * allowed / d_total
        out[k] = Cap(charge, discharge)
    return out


def breach(cfg: HomeSection, grid_w: float, export_limit_kw: float | None) -> bool:
    imp = cfg.import_limit_kw()
    if imp is not None and grid_w > imp * 1000.0:
        return True
    return export_limit_kw is not None and -grid_w > export_limit_kw * 1000.0


@dataclass(slots=True)
class _Held:
    w: float
    at: float  # monotonic


@dataclass(slots=True)
class Follower:
    """The followed setpoint per EVSE, with hysteresis and a minimum interval."""

    cfg: HomeSection
    held: dict[EvseKey, _Held] = field(default_factory=dict)

    def setpoint(
        self,
        key: EvseKey,
        mono: float,
        mode: ChargeMode,
        planned_w: float | None,
        reason: str | None,
        home: HomeNow,
        now_w: float,
        n_sharing: int,
        max_charge_w: float,
        max_discharge_w: float,
        min_charge_w: float,
    ) -> tuple[float | None, str | None]:
        """(planned power, reason) for this EVSE now: the plan's, or the one followed."""
        want = self._want(mode, planned_w, reason, home, now_w, n_sharing, min_charge_w)
        if want is None:
            self.held.pop(key, None)
            return planned_w, reason
        w, why = want
        w = max(-max_discharge_w, min(max_charge_w, w))
        last = self.held.get(key)
        if last is not None:
            small = abs(w - last.w) <= self.cfg.follow_step_w
            early = mono - last.at < self.cfg.follow_min_interval_s
            if small or early:
                return last.w, why
        self.held[key] = _Held(w, mono)
        return w, why

    def _want(
        self,
        mode: ChargeMode,
        planned_w: float | None,
        reason: str | None,
        home: HomeNow,
        now_w: float,
        n: int,
        min_charge_w: float,
    ) -> tuple[float, str] | None:
        grid = home.grid_w
        pv_mode = mode in (ChargeMode.PV_ONLY, ChargeMode.MIN_PV)
        if grid is None or (planned_w is None and not pv_mode):
            return None  # unknown: the plan as it is (silence is never a zero surplus)
        export = max(0.0, -grid)
        own = max(0.0, now_w)
        if mode in (ChargeMode.PV_ONLY, ChargeMode.MIN_PV):
            # what this car takes plus its share of what goes out: the surplus, measured
            surplus = own + export / max(1, n) - max(0.0, grid) / max(1, n)
            surplus = max(0.0, surplus)
            if mode == ChargeMode.MIN_PV:
                w = max(min_charge_w, surplus)
                return w, f"min + PV: {w / 1000:.1f} kW (measured surplus {surplus / 1000:.1f} kW)"
            return surplus, f"PV only: measured surplus {surplus / 1000:.1f} kW into the car"
        why = reason or ""
        if planned_w is None:
            return None
        if mode == ChargeMode.SMART and planned_w > 0 and why.startswith("PV surplus"):
            w = max(0.0, own + export / max(1, n) - max(0.0, grid) / max(1, n))
            return w, f"PV surplus {w / 1000:.1f} kW stored (measured)"
        if mode == ChargeMode.SMART and planned_w < 0 and why.startswith("powering the home"):
            give = max(0.0, -now_w)
            w = -max(0.0, give + grid / max(1, n))  # drive the import to zero, never export
            return w, f"powering the home: {-w / 1000:.1f} kW, the measured load"
        return None
