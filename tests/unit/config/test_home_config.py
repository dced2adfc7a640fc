"""The [home] table: the connection's limits (import, export, a main fuse with phases) and what
a PV forecast needs; every mistake is one line naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from v2g_gateway.config import parse_config
from v2g_gateway.errors import ConfigError


def test_fuse_and_limits() -> None:
    h = parse_config({"home": {"main_fuse_a": 25, "phases": 3, "import_limit_w": 20000}}).home
    assert h.import_limit_kw() == pytest.approx(17.25)  # 25 A x 230 V x 3 < 20 kW
    assert h.export_limit_kw() == pytest.approx(17.25)
    one = parse_config({"home": {"main_fuse_a": 40, "phases": 1, "export_limit_w": 4600}}).home
    assert one.import_limit_kw() == pytest.approx(9.2) and one.export_limit_kw() == 4.6
    assert parse_config({}).home.import_limit_kw() is None
    # the old per-car preference is the site's export limit when [home] has none
    assert parse_config({}).home.export_limit_kw(5000.0) == 5.0


@pytest.mark.parametrize(
    ("home", "key", "message"),
    [
        ({"pv_forecast": "open-meteo"}, "home", "needs latitude and longitude"),
        ({"pv_forecast": "forecast.solar", "latitude": 1, "longitude": 2}, "home", "[[home.pv]]"),
        ({"pv_forecast": "csv"}, "home", "needs pv_forecast_csv"),
        ({"main_fuse_a": -3}, "home.main_fuse_a", "greater than 0"),
        ({"phases": 2}, "home.phases", "1 or 3"),
        ({"pv": [{"kwp": 5, "tilt": 95}]}, "home.pv[0].tilt", "less than or equal to 90"),
        ({"gird_power_topic": "x"}, "home.gird_power_topic", "unknown key"),
    ],
)
def test_mistakes_name_the_key(home: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"home": home})
    assert err.value.key == key
    assert message in str(err.value)
