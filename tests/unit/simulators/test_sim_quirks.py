"""The quirky charger's bending of frames and timestamps (simulators/quirks.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from simulators.errors import SimulatorError
from simulators.quirks import Quirks

T = datetime(2026, 1, 15, 16, 0, tzinfo=UTC)
MV = {
    "evseId": 1,
    "meterValue": [{"timestamp": "x", "sampledValue": [{"value": 55, "measurand": "SoC"}]}],
}


def test_well_behaved_by_default() -> None:
    q = Quirks()
    assert not q.mangles and q.mangle("MeterValues", MV) is MV
    assert q.stamp(T) == "2026-01-15T16:00:00Z" and q.takes_watts


def test_stamps_skew_and_local_time_without_offset() -> None:
    assert Quirks(clock_skew_s=7200).stamp(T) == "2026-01-15T18:00:00Z"
    assert Quirks(local_utc_offset_h=1).stamp(T) == "2026-01-15T17:00:00"


def test_mangle_bends_a_copy() -> None:
    q = Quirks(numbers_as_strings=True, vendor_measurands=True, extra_properties=True)
    out = q.mangle("MeterValues", MV)
    values = out["meterValue"][0]["sampledValue"]
    assert out["evseId"] == "1" and values[0]["value"] == "55"
    assert values[1]["measurand"] == "Vendor.Temperature.Cable"
    assert "vendorExtension" in out and values[0]["vendorQuality"] == "good"
    assert MV["evseId"] == 1  # the original is untouched


def test_21_fields_and_odd_reasons() -> None:
    q = Quirks(ocpp21_fields=True, odd_reasons=True)
    needs = {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "DC"}}
    out = q.mangle("NotifyEVChargingNeeds", needs)["chargingNeeds"]
    assert out["requestedEnergyTransfer"] == "DC_BPT" and "v2xChargingParameters" in out
    boot = q.mangle("BootNotification", {"reason": "PowerUp", "chargingStation": {}})
    assert boot["reason"] == "ColdStart"
    tx = q.mangle("TransactionEvent", {"triggerReason": "MeterValuePeriodic"})
    assert tx["triggerReason"] == "PeriodicSample" and tx["numberOfPhasesUsed"] == 3


@pytest.mark.parametrize(
    "bad", [{"supply_phases": 2}, {"ignore_profiles": "some"}, {"smart_charging": "maybe"}]
)
def test_bad_options_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(SimulatorError):
        Quirks(**bad)  # type: ignore[arg-type]
