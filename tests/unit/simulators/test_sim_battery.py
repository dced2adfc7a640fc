import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.battery import EvBattery
from simulators.errors import SimulatorError
from v2g_gateway.errors import GatewayError


def car(soc: float = 50.0, **kw: float) -> EvBattery:
    args: dict[str, float] = {"max_charge_w": 11000, "max_discharge_w": 10000}
    args.update(kw)
    return EvBattery(60, soc, **args)  # type: ignore[arg-type]


def test_charging_stores_less_than_metered() -> None:
    b = car(50)
    got = b.step(10000, 3600)
    assert got == 10000
    assert b.energy_kwh == pytest.approx(30 + 9.5)
    assert b.charged_wh == pytest.approx(10000)
    assert b.discharged_wh == 0


def test_discharging_drains_more_than_delivered() -> None:
    b = car(50)
    got = b.step(-5000, 3600)
    assert got == -5000
    assert b.energy_kwh == pytest.approx(30 - 5 / 0.95)
    assert b.discharged_wh == pytest.approx(5000)


def test_power_clipped_to_car_limits() -> None:
    b = car(20, max_charge_w=7000, max_discharge_w=3000)
    assert b.step(22000, 60) == 7000
    assert b.step(-22000, 60) == -3000


def test_taper_linear_to_ten_percent_at_full() -> None:
    assert car(80).charge_limit_w() == 11000
    assert car(90).charge_limit_w() == pytest.approx(11000 * 0.55)
    assert car(99.999).charge_limit_w() == pytest.approx(1100, rel=1e-3)
    assert car(100).charge_limit_w() == 0
    assert car(100).step(11000, 60) == 0


def test_never_overfills() -> None:
    b = car(99.9)
    delivered = b.step(11000, 3600)
    assert b.soc_percent == pytest.approx(100)
    assert delivered * 0.95 == pytest.approx(60000 * 0.001)


def test_refuses_to_go_below_min_soc() -> None:
    b = car(6, min_soc_percent=5)
    delivered = b.step(-10000, 3600)
    assert b.soc_percent == pytest.approx(5)
    assert -delivered == pytest.approx(600 * 0.95)
    assert b.step(-10000, 60) == 0
    assert b.soc_percent == pytest.approx(5)


def test_below_min_soc_stays_put_when_asked_to_discharge() -> None:
    b = car(3, min_soc_percent=5)
    assert b.step(-1000, 60) == 0
    assert b.soc_percent == pytest.approx(3)


def test_zero_time_or_power_changes_nothing() -> None:
    b = car(50)
    assert b.step(5000, 0) == 0
    assert b.step(0, 60) == 0
    assert b.soc_percent == 50


@pytest.mark.parametrize(
    ("kw", "word"),
    [
        ({"capacity_kwh": 0}, "capacity_kwh"),
        ({"soc_percent": 101}, "soc_percent"),
        ({"eta_charge": 0}, "eta_charge"),
        ({"eta_discharge": 1.5}, "eta_discharge"),
        ({"max_charge_w": -1}, "max_charge_w"),
        ({"min_soc_percent": 100}, "min_soc_percent"),
    ],
)
def test_bad_parameters_named(kw: dict[str, float], word: str) -> None:
    args: dict[str, float] = {
        "capacity_kwh": 60,
        "soc_percent": 50,
        "max_charge_w": 11000,
        "max_discharge_w": 10000,
    }
    args.update(kw)
    with pytest.raises(SimulatorError, match=word):
        EvBattery(**args)  # type: ignore[arg-type]


def test_bad_step_input_is_a_gateway_error() -> None:
    with pytest.raises(GatewayError, match="power_w"):
        car().step(float("nan"), 10)
    with pytest.raises(GatewayError, match="seconds"):
        car().step(100, -1)


@given(
    soc=st.floats(0, 100),
    steps=st.lists(st.tuples(st.floats(-20000, 20000), st.floats(0, 900)), max_size=40),
)
def test_invariants_hold_for_any_sequence(soc: float, steps: list[tuple[float, float]]) -> None:
    b = car(soc, min_soc_percent=5)
    for p, dt in steps:
        before = b.energy_kwh
        got = b.step(p, dt)
        assert -10000 - 1e-9 <= got <= 11000 + 1e-9
        assert got == 0 or (got > 0) == (p > 0)
        assert abs(got) <= abs(p) + 1e-9
        assert 0 <= b.soc_percent <= 100 + 1e-9
        if got < 0:
            assert b.soc_percent >= 5 - 1e-9
        assert (b.energy_kwh - before) * 1000 == pytest.approx(
            got * dt / 3600 * (0.95 if got > 0 else 1 / 0.95), abs=1e-6
        )
