"""The demo's parts: no broker by default, --mqtt parsing, the household's departures, the
reserve and money reports, and a picture that labels days and marks the windows."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from simulators.scenario import load_scenario, window_span
from v2g_gateway.demo_mqtt import Broker, parse_broker
from v2g_gateway.demo_picture import figure
from v2g_gateway.demo_report import (
    DemoRun,
    Limits,
    Sample,
    Visit,
    energy_and_money,
    plain_charging_cost,
    reserve_report,
)
from v2g_gateway.demo_setup import demo_config
from v2g_gateway.errors import ConfigError
from v2g_gateway.model import Notification

TZ = ZoneInfo("Europe/Berlin")
T0 = datetime(2024, 9, 2, 0, 0, tzinfo=TZ)
LIM = Limits(reserve=40, floor=20, capacity_kwh=60, max_charge_kw=11, eta_charge=0.95)


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("broker.lan", "broker.lan", 1883),
        ("broker.lan:1884", "broker.lan", 1884),
        ("[::1]:8883", "::1", 8883),
        ("::1", "::1", 1883),
        ("10.0.0.2", "10.0.0.2", 1883),
    ],
)
def test_parse_broker(text: str, host: str, port: int) -> None:
    assert parse_broker(text) == Broker(host, port)


@pytest.mark.parametrize(
    ("text", "words"), [(":1883", "no host"), ("h:x", "port"), ("[::1]x", "[ADDRESS]")]
)
def test_bad_broker_is_one_line(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_broker(text)


def test_no_broker_unless_asked(tmp_path: Path) -> None:
    sc = load_scenario("week")
    cfg = demo_config(sc, tmp_path, tmp_path / "p.csv", "x" * 20, None)
    assert cfg.mqtt.enabled is False
    assert cfg.outage.mqtt_topic is None  # the outage is seen from the charger's voltage
    assert cfg.outage.charger_voltage_below_v
    asked = demo_config(sc, tmp_path, tmp_path / "p.csv", "x" * 20, Broker("b", 1884))
    assert asked.mqtt.enabled and (asked.mqtt.host, asked.mqtt.port) == ("b", 1884)
    assert asked.outage.mqtt_topic == "v2g/demo/sim/grid"  # the demo's own, never a real meter


def test_each_weekday_gets_its_departure(tmp_path: Path) -> None:
    cfg = demo_config(load_scenario("week"), tmp_path, tmp_path / "p.csv", "x" * 20, None)
    got = sorted((d.days, d.time, d.target_soc_percent) for d in cfg.preferences.departures)
    assert got == sorted(
        [
            (("tue",), "07:30", 80),
            (("wed",), "07:30", 80),
            (("thu",), "07:30", 80),
            (("fri",), "07:15", 80),
            (("sat",), "09:00", 90),
            (("sun",), "10:00", 70),
            (("sun",), "23:30", 80),
        ]
    )


def run_of(points: list[tuple[int, float | None, float, float]]) -> DemoRun:
    """(minutes, soc, import_wh, export_wh) every 5 min; prices 0.20 in, 0.30 out."""
    return DemoRun(
        samples=[
            Sample(T0 + timedelta(minutes=m), 0.20, 0.30, soc, 0.0, soc is not None, i, e)
            for m, soc, i, e in points
        ]
    )


def test_arriving_below_the_reserve_is_not_crossing_it() -> None:
    run = run_of([(0, 31.0, 0, 0), (5, 32.0, 900, 0), (10, 33.0, 1800, 0)])
    run.visits.append(Visit(T0, 31.0, 80))
    rep = reserve_report(run, LIM, T0 + timedelta(hours=1))
    assert rep["reserve_respected"] is True
    assert rep["arrived_below_reserve"] == [{"at": T0.isoformat(), "soc_percent": 31.0}]


def test_discharging_below_the_reserve_is_crossing_it_but_not_in_an_outage() -> None:
    run = run_of([(0, 41.0, 0, 0), (5, 39.0, 0, 900), (10, 37.0, 0, 1800)])
    assert reserve_report(run, LIM, T0 + timedelta(hours=1))["reserve_respected"] is False
    run.events = [
        Notification("grid_outage", "out", T0),
        Notification("grid_restored", "back", T0 + timedelta(minutes=30)),
    ]
    assert reserve_report(run, LIM, T0 + timedelta(hours=1))["reserve_respected"] is True
    deep = run_of([(0, 21.0, 0, 0), (5, 19.0, 0, 900)])
    deep.events = run.events
    assert reserve_report(deep, LIM, T0 + timedelta(hours=1))["reserve_respected"] is False


def test_money_is_meter_energy_times_price() -> None:
    run = run_of([(0, 50.0, 0, 0), (5, 51.0, 1000, 0), (10, 50.0, 1000, 500)])
    m = energy_and_money(run.samples)
    assert m == pytest.approx({"charged": 1.0, "discharged": 0.5, "cost": 0.20, "revenue": 0.15})


def test_plain_charging_is_per_visit() -> None:
    """Two visits with a drive between: the baseline buys each visit's gain, not the
    difference between the week's first and last SoC (which the drive would hide)."""
    pts = [(m, 50.0, 0, 0) for m in range(0, 185, 5)]
    run = run_of(pts)
    run.visits = [
        Visit(T0, 50.0, 80, T0 + timedelta(minutes=60), 60.0),
        Visit(T0 + timedelta(minutes=90), 40.0, 80, T0 + timedelta(minutes=180), 50.0),
    ]
    # Each visit: 10 % of 60 kWh / 0.95 = 6.32 kWh at the meter, at 0.20 (first and last SoC
    # of the run are equal: a whole-run baseline would say 0).
    assert plain_charging_cost(run, LIM) == pytest.approx(2 * 6.0 / 0.95 * 0.20)
    run.visits[1] = Visit(T0 + timedelta(minutes=150), 40.0, 80, T0 + timedelta(minutes=180), 50)
    # Half an hour at 11 kW is 5.5 kWh: full power on arrival cannot buy more.
    assert plain_charging_cost(run, LIM) == pytest.approx((6.0 / 0.95 + 5.5) * 0.20)


def test_picture_labels_days_and_marks_windows() -> None:
    pytest.importorskip("matplotlib")
    sc = load_scenario("week")
    run = run_of([(m, 50.0, 0, 0) for m in range(0, 7 * 24 * 60 + 1, 60)])
    run.visits = [Visit(T0, 50, 80, T0 + timedelta(hours=7), 80)]
    fig = figure(
        run,
        title="t",
        tz=TZ,
        reserve=40,
        outages=[window_span(sc, w) for w in sc.outages],
        demand_response=[window_span(sc, w) for w in sc.demand_response],
    )
    fig.canvas.draw()
    ax = fig.axes[-1]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "Mon 02 Sep" in labels and "Sun 08 Sep" in labels
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "grid outage" in legend and "demand response" in legend
    spans = [p for p in ax.patches if p.get_label() in ("grid outage", "demand response")]
    assert len(spans) == 2
    import matplotlib.pyplot as plt

    plt.close(fig)
