from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from simulators.errors import ScenarioError
from simulators.grid import home_load_w
from simulators.scenario import load_scenario, parse_scenario, timeline
from v2g_gateway.errors import ConfigError

BERLIN = ZoneInfo("Europe/Berlin")


def test_default_scenario_is_the_demo_day() -> None:
    sc = load_scenario("default")
    events = timeline(sc, ["garage"])
    assert [(e.kind, e.at.astimezone(BERLIN).strftime("%d %H:%M")) for e in events] == [
        ("arrive", "06 17:30"),
        ("depart", "07 07:30"),
    ]
    assert events[0].arrival is not None and events[0].arrival.soc_percent == 55
    assert events[0].arrival.target_soc_percent == 80
    assert sc.prices_path() is not None and sc.prices_path().is_file()  # type: ignore[union-attr]


def test_week_scenario_has_outage_and_demand_response() -> None:
    sc = load_scenario("week")
    kinds = [e.kind for e in timeline(sc, ["garage"])]
    assert kinds.count("arrive") == 7
    assert kinds.count("depart") == 7
    assert "outage" in kinds and "restore" in kinds and "dr_start" in kinds
    events = timeline(sc, ["garage"])
    assert events == sorted(events, key=lambda e: e.at)
    announce = next(e for e in events if e.kind == "dr_announce")
    start = next(e for e in events if e.kind == "dr_start")
    assert (start.at - announce.at).total_seconds() == 180 * 60  # notice_minutes


BASE = {"name": "t", "start": "2024-10-06", "arrivals": [{"time": "17:30", "soc_percent": 50}]}


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"bogus": 1}, "bogus", "unknown key"),
        ({"timezone": "Mars/Base"}, "timezone", "unknown time zone"),
        ({"arrivals": [{"time": "25:00", "soc_percent": 50}]}, "arrivals[0].time", "HH:MM"),
        ({"arrivals": [{"time": "17:00", "soc_percent": 150}]}, "arrivals[0].soc_percent", "100"),
        ({"arrivals": [{"time": "17:00", "soc_percent": 5, "car": "x"}]}, "arrivals[0].car", "x"),
        ({"arrivals": [{"time": "17:00"}]}, "arrivals[0].soc_percent", "required"),
        ({"outages": [{"day": 3, "start": "10:00", "end": "11:00"}]}, "outages[0].start", "span"),
        ({"prices": "nowhere.xml"}, "prices", "not found"),
        ({"speed": 0}, "speed", "greater than 0"),
    ],
)
def test_scenario_mistakes_name_file_and_key(
    change: dict[str, object], key: str, words: str
) -> None:
    data = {**BASE, **change}
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data, Path("my.toml"))
    assert err.value.source == "my.toml"
    assert err.value.key == key
    assert words in err.value.problem
    assert isinstance(err.value, ConfigError)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [", encoding="utf-8")
    with pytest.raises(ScenarioError, match="invalid TOML"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "absent.toml")


def test_unknown_charger_in_arrival() -> None:
    sc = parse_scenario(
        {**BASE, "arrivals": [{"time": "17:30", "soc_percent": 50, "charger": "shed"}]}
    )
    with pytest.raises(ScenarioError, match="shed"):
        timeline(sc, ["garage"])


def test_home_load_has_peaks_and_is_deterministic() -> None:
    def at(h: int, m: int = 0) -> datetime:
        return datetime(2024, 10, 6, h, m, tzinfo=BERLIN)

    assert home_load_w(at(19), seed=3) == home_load_w(at(19), seed=3)
    assert home_load_w(at(19), seed=3) != home_load_w(at(19), seed=4)
    night = home_load_w(at(3), seed=1)
    assert home_load_w(at(7, 15), seed=1) > 2 * night
    assert home_load_w(at(19), seed=1) > home_load_w(at(7, 15), seed=1)
    day_kwh = sum(home_load_w(at(h, m), seed=1) for h in range(24) for m in (0, 15, 30, 45)) / 4000
    assert 8 < day_kwh < 18


class _Sink:
    """Stands in for a charger's voltage input: the runner's outage and restore land here."""

    def __init__(self) -> None:
        import asyncio

        self.charger_id = "g"
        self.nominal_voltage = 230.0
        self.volts: list[float] = []
        self.changed = asyncio.Event()

    def set_grid_voltage(self, volts: float) -> None:
        self.volts.append(volts)
        self.changed.set()


async def test_late_events_are_performed_and_only_earlier_ones_skipped() -> None:
    """At thousands of times real speed a busy machine wakes the runner late: the event must
    still happen (it was skipped, so the week demo lost departures). What ended before the run
    began is skipped."""
    import asyncio

    from simulators.scenario import run_scenario
    from v2g_gateway.clock import ManualClock

    sc = parse_scenario(
        {
            "name": "t",
            "start": "2024-10-06",
            "outages": [
                {"start": "01:00", "end": "02:00"},
                {"start": "10:00", "end": "11:00"},
            ],
        }
    )
    clock = ManualClock(datetime(2024, 10, 6, 5, 0, tzinfo=BERLIN))
    sink = _Sink()
    run = asyncio.create_task(run_scenario(sc, {"g": sink}, None, clock))  # type: ignore[dict-item]
    await asyncio.sleep(0)  # one turn: the runner starts at 05:00 and waits on the clock
    await clock.set(datetime(2024, 10, 6, 10, 30, tzinfo=BERLIN))  # 30 minutes late
    await asyncio.wait_for(sink.changed.wait(), 5)
    assert sink.volts == [0.0]  # the 10:00 outage, late; not the 01:00 one
    await clock.set(datetime(2024, 10, 7, 0, 0, tzinfo=BERLIN))
    done = await asyncio.wait_for(run, 5)
    assert sink.volts == [0.0, 230.0]
    assert [e.kind for e in done] == ["outage", "restore"]
