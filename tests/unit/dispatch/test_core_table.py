"""The dispatch core (decision + gate) as a table: DESIGN.md section 4 row by row.

Each row is a situation and what must come out: the mode, the sign of the limit in force now,
and for discharges the energy bound. Boundary rows sit on the comparisons (SoC at floor plus
margin, price equal to the threshold, planned power at the dead band) so that an inverted or
off-by-one comparison fails a row.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from world import CHEAP, MONO, NOW, PEAK, World, override

from v2g_gateway.capability import DischargeCapability
from v2g_gateway.dispatch.core import Sent, step
from v2g_gateway.dispatch.decision import Mode
from v2g_gateway.dispatch.gate import FLOOR_MARGIN_PERCENT, TAIL_S
from v2g_gateway.model import Override, OverrideKind, ProfilePurpose
from v2g_gateway.soc import SocSource, drained_percent

REFUSED = DischargeCapability().refused(NOW - timedelta(hours=1), None, "refused a negative limit")


def sign(x: float) -> int:
    return (x > 0) - (x < 0)


ROWS: list[tuple[str, dict[str, object], Mode, int]] = [
    ("peak above reserve discharges", {}, Mode.DISCHARGE, -1),
    ("cheap hour charges", {"price": CHEAP}, Mode.CHARGE, 1),
    ("export price equal to the threshold discharges", {"threshold": 0.35}, Mode.DISCHARGE, -1),
    ("export price a cent under the threshold charges", {"threshold": 0.36}, Mode.CHARGE, 1),
    ("below reserve charges even at the peak", {"soc": 30.0}, Mode.CHARGE, 1),
    # Floor + margin is 40.5 %: exactly there is not above it.
    ("SoC exactly at reserve + margin holds", {"soc": 40.0 + FLOOR_MARGIN_PERCENT}, Mode.HOLD, 0),
    ("SoC just above reserve + margin discharges", {"soc": 40.8}, Mode.DISCHARGE, -1),
    ("unknown SoC never discharges", {"soc": None}, Mode.HOLD, 0),
    ("stale SoC never discharges", {"age_s": 31 * 60.0}, Mode.HOLD, 0),
    ("SoC at the age limit still counts", {"age_s": 30 * 60.0}, Mode.DISCHARGE, -1),
    ("a reading of another plug session never counts", {"reading_session": "s0"}, Mode.HOLD, 0),
    ("a retained reading of unknown age never counts", {"age_known": False}, Mode.HOLD, 0),
    ("a guest car is never discharged", {"guest": True}, Mode.HOLD, 0),
    ("a guest car charges in a cheap hour", {"guest": True, "price": CHEAP}, Mode.CHARGE, 1),
    ("unknown price never discharges", {"price": None}, Mode.CHARGE, 1),
    ("V2G off never discharges", {"v2g": False}, Mode.HOLD, 0),
    ("a refused charger is not asked again before the retry", {"discharge": REFUSED}, Mode.HOLD, 0),
    (
        "a refused charger is asked again after its next boot",
        {"discharge": REFUSED, "booted_at": NOW - timedelta(minutes=5)},
        Mode.DISCHARGE,
        -1,
    ),
    (
        "a charger that ignores its profiles is not trusted to discharge",
        {"capabilities": {"obeys_profiles": False}},
        Mode.HOLD,
        0,
    ),
    ("while probing a refusal, no discharge", {"probing": True}, Mode.HOLD, 0),
    ("unplugged does nothing", {"plugged": False}, Mode.IDLE, 0),
    ("full holds", {"price": CHEAP, "soc": 100.0}, Mode.HOLD, 0),
    ("no threshold charges", {"threshold": None}, Mode.CHARGE, 1),
    ("SoC unknown, no plan, charges", {"soc": None, "price": CHEAP}, Mode.CHARGE, 1),
    ("plan discharge above reserve", {"planned_w": -5000.0}, Mode.DISCHARGE, -1),
    ("plan discharge blocked at reserve", {"planned_w": -5000.0, "soc": 40.2}, Mode.HOLD, 0),
    ("plan discharge without SoC holds", {"planned_w": -5000.0, "soc": None}, Mode.HOLD, 0),
    ("plan charge", {"planned_w": 4000.0}, Mode.CHARGE, 1),
    ("planned power at the dead band holds (+)", {"planned_w": 99.0}, Mode.HOLD, 0),
    ("planned power at the dead band charges (+100 W)", {"planned_w": 100.0}, Mode.CHARGE, 1),
    ("planned power at the dead band holds (-)", {"planned_w": -99.0}, Mode.HOLD, 0),
    ("planned -100 W discharges", {"planned_w": -100.0}, Mode.DISCHARGE, -1),
    ("hold (pause) keeps 0 W at the peak", {"override": override(OverrideKind.HOLD)}, Mode.HOLD, 0),
    (
        "hold keeps 0 W in a cheap hour too",
        {"override": override(OverrideKind.HOLD), "price": CHEAP},
        Mode.HOLD,
        0,
    ),
    ("release hands control back", {"override": override(OverrideKind.RELEASE)}, Mode.RELEASE, 0),
    (
        "user charge-now wins over a peak",
        {"override": override(OverrideKind.CHARGE_NOW, 90)},
        Mode.CHARGE,
        1,
    ),
    (
        "charge-now target reached holds",
        {"override": override(OverrideKind.CHARGE_NOW, 60)},
        Mode.HOLD,
        0,
    ),
    (
        "user discharge-now stops at the reserve",
        {"override": override(OverrideKind.DISCHARGE_NOW, 10), "soc": 40.3},
        Mode.HOLD,
        0,
    ),
    (
        "user discharge-now down to a floor above the reserve",
        {"override": override(OverrideKind.DISCHARGE_NOW, 60), "price": CHEAP},
        Mode.DISCHARGE,
        -1,
    ),
    (
        "user discharge-now never without a fresh SoC",
        {"override": override(OverrideKind.DISCHARGE_NOW, 50), "age_s": 3600.0},
        Mode.HOLD,
        0,
    ),
    (
        "outage backs up above the floor, even with unknown price",
        {"outage": True, "backup_w": 3000.0, "price": None, "soc": 30.0},
        Mode.BACKUP,
        -1,
    ),
    (
        "outage backs up even with V2G off and a refused charger past the outage retry",
        {
            "outage": True,
            "backup_w": 3000.0,
            "v2g": False,
            "discharge": REFUSED,
        },
        Mode.BACKUP,
        -1,
    ),
    ("outage at the floor holds", {"outage": True, "backup_w": 3000.0, "soc": 20.5}, Mode.HOLD, 0),
    (
        "outage with unknown SoC holds",
        {"outage": True, "backup_w": 3000.0, "soc": None},
        Mode.HOLD,
        0,
    ),
]


@pytest.mark.parametrize(("case", "kw", "mode", "want_sign"), ROWS, ids=[r[0] for r in ROWS])
def test_core_table(case: str, kw: dict[str, object], mode: Mode, want_sign: int) -> None:
    out = step(World(**kw).build())  # type: ignore[arg-type]
    assert out.decision.mode == mode, f"{case}: {out.decision}"
    assert out.decision.reason
    if mode in (Mode.IDLE, Mode.RELEASE):
        assert out.send is None
        return
    assert out.send is not None
    assert sign(out.send.spec.periods[0].limit_w) == want_sign, f"{case}: {out.send}"
    assert out.send.spec.periods[-1].limit_w >= 0  # never ends on a discharge


def test_energy_bound_at_41_2_percent_with_a_40_percent_reserve() -> None:
    """The issue's case: -10 kW for 15 minutes would take 2.5 kWh, to about 37 %."""
    out = step(World(soc=41.2).build())
    assert out.send is not None
    periods = out.send.spec.periods
    assert periods[0].limit_w == -10000
    cut = periods[1].start_offset_s
    assert periods[1].limit_w == 0
    end = 41.2 - drained_percent(10000, cut, 60, 0.95)
    assert end >= 40.0 + FLOOR_MARGIN_PERCENT - 1e-9
    assert 41.2 - drained_percent(10000, cut + 2, 60, 0.95) < 40.0 + FLOOR_MARGIN_PERCENT
    assert out.send.end_soc_percent is not None and out.send.end_soc_percent >= 40.5 - 1e-9


def test_a_floor_too_close_for_a_minute_of_discharge_holds() -> None:
    # 40.7 %: 0.2 points of room is 41 s at 10 kW, under the minimum discharge of 60 s.
    out = step(World(soc=40.7).build())
    assert out.decision.mode == Mode.HOLD and "floor" in out.decision.reason
    assert out.send is not None and all(p.limit_w >= 0 for p in out.send.spec.periods)


def test_discharge_power_is_capped_by_limits() -> None:
    out = step(World(outage=True, backup_w=50000.0).build())
    assert out.send is not None and out.send.spec.periods[0].limit_w == -10000


def test_every_profile_expires_and_has_a_non_negative_tail() -> None:
    out = step(World().build())
    assert out.send is not None
    spec = out.send.spec
    assert spec.duration_s == 15 * 60
    assert spec.periods[-1].start_offset_s == 15 * 60 - TAIL_S and spec.periods[-1].limit_w == 0


def test_a_silent_charger_drains_by_the_commanded_power() -> None:
    """One reading 10 minutes ago, then silence; the gateway commanded -10 kW meanwhile."""
    measured = step(World(soc=45.0, age_s=600.0, power_w=0.0).build())
    commanded = step(World(soc=45.0, age_s=600.0, power_w=0.0, commanded_w=-10000.0).build())
    assert measured.send is not None and commanded.send is not None
    # 10 kW for 10 minutes is 2.92 points: the estimate is 42.08 %, so the discharge is shorter.
    assert commanded.send.end_soc_percent == pytest.approx(40.5, abs=0.01)
    assert (
        commanded.send.spec.periods[1].start_offset_s < measured.send.spec.periods[1].start_offset_s
    )


def test_a_reboot_or_a_forgotten_transaction_applies_as_the_default_profile() -> None:
    for w in (World(transaction_id=None), World(tx_forgotten=True)):
        out = step(w.build())
        assert out.send is not None
        assert out.send.spec.purpose == ProfilePurpose.TX_DEFAULT_PROFILE
        assert out.send.spec.transaction_id is None
    normal = step(World().build()).send
    assert normal is not None and normal.spec.purpose == ProfilePurpose.TX_PROFILE


def test_a_negative_charge_now_power_cannot_exist() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        override(OverrideKind.CHARGE_NOW, 80, power_w=-5000.0)
    with pytest.raises(ValueError, match="takes no power"):
        override(OverrideKind.HOLD, power_w=1000.0)


def test_an_override_stays_active_when_the_wall_clock_steps_back() -> None:
    o = override(OverrideKind.HOLD)
    stepped = NOW - timedelta(hours=1)  # before the override was made
    out = step(World(override=o, now=stepped, price=CHEAP).build())
    assert out.decision.mode == Mode.HOLD and "user" in out.decision.reason
    # A reading's age is on the monotonic clock: the step leaves it fresh.
    assert (
        step(
            World(now=stepped, price=replace(PEAK, start=stepped - timedelta(hours=1))).build()
        ).decision.mode
        == Mode.DISCHARGE
    )


def test_the_same_course_is_not_resent_and_renewed_in_time() -> None:
    first = step(World().build())
    assert first.send is not None
    last = Sent(first.send, first.decision.mode, first.decision.reason)
    again = step(World(last=last, now=NOW + timedelta(seconds=30), mono=MONO + 30).build())
    assert again.send is None and again.decision.mode == Mode.DISCHARGE
    late = step(World(last=last, now=NOW + timedelta(minutes=12), mono=MONO + 720).build())
    assert late.send is not None  # renewed before it runs out


def test_sources_are_equal_once_fresh() -> None:
    for source in SocSource:
        if source is SocSource.ESTIMATE:
            continue
        assert step(World(source=source).build()).decision.mode == Mode.DISCHARGE


def test_discharge_now_to_a_floor_never_goes_below_it() -> None:
    o = Override(
        "o2", "car", OverrideKind.DISCHARGE_NOW, NOW, NOW + timedelta(hours=1), 60.0, 7000.0
    )
    out = step(World(override=o, soc=61.3, price=CHEAP).build())
    assert out.send is not None and out.send.spec.periods[0].limit_w == -7000
    assert out.send.end_soc_percent is not None and out.send.end_soc_percent >= 60.5 - 1e-9


def test_an_external_limit_caps_both_directions() -> None:
    out = step(World(capabilities={"external_limit_w": 4000}).build())
    assert out.send is not None and out.send.spec.periods[0].limit_w == -4000
    charging = step(World(capabilities={"external_limit_w": 4000}, price=CHEAP).build())
    assert charging.send is not None and charging.send.spec.periods[0].limit_w == 4000


@pytest.mark.parametrize(("planned", "sent"), [(2000.0, 0.0), (2100.0, 4140.0), (5000.0, 5000.0)])
def test_a_charge_below_the_chargers_minimum_is_rounded_to_the_nearer(
    planned: float, sent: float
) -> None:
    caps = {"min_power_w": 4140.0, "rate_unit": "A"}
    out = step(World(planned_w=planned, capabilities=caps).build())
    assert out.send is not None and out.send.spec.periods[0].limit_w == sent
    # A charger that takes watts gets what the plan wants.
    watts = step(World(planned_w=planned, capabilities={**caps, "rate_unit": "W"}).build())
    assert watts.send is not None and watts.send.spec.periods[0].limit_w == planned


def test_a_whole_percent_reading_is_bounded_from_half_a_point_below() -> None:
    """41 % from a charger that rounds may be 40.5 %: with a 40 % reserve (+0.5 margin), no
    room to discharge; 41.0 stays 41.0 for 'full' and targets."""
    out = step(World(soc=41.0).build())
    assert out.send is not None and out.send.spec.periods[0].limit_w >= 0
    assert out.decision.mode == Mode.HOLD
    decimal = step(World(soc=41.3).build())
    assert decimal.send is not None and decimal.send.spec.periods[0].limit_w < 0
