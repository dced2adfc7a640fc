"""An EV traction battery as the charger's meter sees it.

Power is given at the meter (positive = charge, negative = discharge); losses sit between meter
and cells, so charging stores less than is metered and discharging drains more than is delivered.
"""

from __future__ import annotations

import math

from simulators.errors import SimulatorError

_TAPER_FLOOR = 0.10  # share of max charge power left at 100 % SoC


class EvBattery:
    def __init__(
        self,
        capacity_kwh: float,
        soc_percent: float,
        *,
        eta_charge: float = 0.95,
        eta_discharge: float = 0.95,
        max_charge_w: float,
        max_discharge_w: float,
        min_soc_percent: float = 5.0,
        taper_start_percent: float = 80.0,
    ) -> None:
        _check(capacity_kwh > 0, "capacity_kwh", capacity_kwh, "must be positive")
        _check(0 <= soc_percent <= 100, "soc_percent", soc_percent, "must be within 0..100")
        _check(0 < eta_charge <= 1, "eta_charge", eta_charge, "must be within (0, 1]")
        _check(0 < eta_discharge <= 1, "eta_discharge", eta_discharge, "must be within (0, 1]")
        _check(max_charge_w >= 0, "max_charge_w", max_charge_w, "must not be negative")
        _check(max_discharge_w >= 0, "max_discharge_w", max_discharge_w, "must not be negative")
        _check(0 <= min_soc_percent < 100, "min_soc_percent", min_soc_percent, "must be in 0..100")
        _check(
            0 < taper_start_percent <= 100,
            "taper_start_percent",
            taper_start_percent,
            "must be within (0, 100]",
        )
        self.capacity_kwh = float(capacity_kwh)
        self.eta_charge = float(eta_charge)
        self.eta_discharge = float(eta_discharge)
        self.max_charge_w = float(max_charge_w)
        self.max_discharge_w = float(max_discharge_w)
        self.min_soc_percent = float(min_soc_percent)
        self.taper_start_percent = float(taper_start_percent)
        self._energy_wh = self.capacity_kwh * 1000.0 * soc_percent / 100.0
        self.charged_wh = 0.0
        self.discharged_wh = 0.0

    @property
    def soc_percent(self) -> float:
        return 100.0 * self._energy_wh / (self.capacity_kwh * 1000.0)

    @property
    def energy_kwh(self) -> float:
        return self._energy_wh / 1000.0

    def charge_limit_w(self) -> float:
        """The most the car accepts now: the BMS tapers linearly above taper_start."""
        soc = self.soc_percent
        if soc >= 100.0:
            return 0.0
        if soc <= self.taper_start_percent or self.taper_start_percent >= 100.0:
            return self.max_charge_w
        share = (soc - self.taper_start_percent) / (100.0 - self.taper_start_percent)
        return self.max_charge_w * (1.0 - (1.0 - _TAPER_FLOOR) * share)

    def step(self, power_w: float, seconds: float) -> float:
        """Apply `power_w` at the meter for `seconds`; returns the power actually delivered."""
        if not math.isfinite(power_w):
            raise SimulatorError(f"power_w must be a finite number, got {power_w!r}")
        if not math.isfinite(seconds) or seconds < 0:
            raise SimulatorError(f"seconds must be a finite number >= 0, got {seconds!r}")
        if seconds < 1e-6 or power_w == 0:  # below a microsecond nothing moves (and no 0-division)
            return 0.0
        hours = seconds / 3600.0
        if power_w > 0:
            room_wh = self.capacity_kwh * 1000.0 - self._energy_wh
            fit_w = room_wh / (self.eta_charge * hours)
            p = max(0.0, min(power_w, self.charge_limit_w(), fit_w))
            self._energy_wh = min(
                self.capacity_kwh * 1000.0, self._energy_wh + p * hours * self.eta_charge
            )
            self.charged_wh += p * hours
            return p
        floor_wh = self.capacity_kwh * 1000.0 * self.min_soc_percent / 100.0
        avail_w = max(0.0, self._energy_wh - floor_wh) * self.eta_discharge / hours
        p = max(0.0, min(-power_w, self.max_discharge_w, avail_w))
        if p > 0:
            self._energy_wh = max(floor_wh, self._energy_wh - p * hours / self.eta_discharge)
        self.discharged_wh += p * hours
        return -p

    def __repr__(self) -> str:
        return f"EvBattery({self.capacity_kwh} kWh, {self.soc_percent:.1f} %)"


def _check(ok: bool, name: str, value: float, problem: str) -> None:
    if not ok:
        raise SimulatorError(f"EvBattery {name} {problem}, got {value!r}")
