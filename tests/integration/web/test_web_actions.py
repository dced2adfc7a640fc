"""Every web action's validation, through the same Policy as MQTT: refused with a sentence naming
what is wrong, accepted ones stored (they survive a restart) and announced as notifications."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from web_helpers import client, running, web_config

from v2g_gateway.model import OverrideKind

OVERRIDE = "/api/vehicles/car/override"


def kinds(gw: Any) -> list[str]:
    return [n["kind"] for n in gw.store.recent_notifications(100)]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"action": "boost"}, "unknown action 'boost'"),
        ({}, "unknown action None"),
        ({"action": "charge_now", "soc_percent": 120}, "expected a percentage 0..100, got 120"),
        ({"action": "charge_now", "soc_percent": "80"}, "'soc_percent' must be a number"),
        ({"action": "charge_now", "minutes": -5}, "minutes must be positive"),
        ({"action": "charge_now", "minutes": 60 * 24 * 8}, "at most 7 days"),
        ({"action": "hold", "until": "2020-01-01T00:00:00+00:00"}, "is in the past"),
        ({"action": "hold", "until": "2026-01-15T18:00:00"}, "needs a time zone"),
        ({"action": "hold", "minutes": 30, "until": "2026-01-15T18:00:00+01:00"}, "not both"),
        (
            {"action": "discharge_now", "soc_percent": 30},
            "cannot discharge below the reserve of 40 %",
        ),
        ({"action": "release", "colour": "red"}, "unknown field 'colour'"),
        ({"action": "automatic", "minutes": 5}, "'automatic' takes no 'minutes'"),
        ({"action": "hold", "vehicle": "van"}, "differs from the one in the address"),
    ],
)
async def test_refused_overrides_say_why_and_change_nothing(
    tmp_path: Path, body: dict[str, Any], error: str
) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw) as c:
        r = await c.post(OVERRIDE, json=body)
        assert r.status_code == 422
        assert r.json()["ok"] is False
        assert error in r.json()["error"]
        assert gw.store.active_overrides(gw.clock.now()) == ()
        assert "override_accepted" not in kinds(gw)


async def test_bad_bodies_and_addresses(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw) as c:
        r = await c.post(
            OVERRIDE, content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422 and "not valid JSON" in r.json()["error"]
        r = await c.post(OVERRIDE, json=[1, 2])
        assert r.status_code == 422 and "must be a JSON object, got list" in r.json()["error"]
        r = await c.post("/api/vehicles/bike/override", json={"action": "hold"})
        assert r.status_code == 404 and "unknown vehicle 'bike'" in r.json()["error"]
        r = await c.get("/api/vehicles/bike/plan")
        assert r.status_code == 404
        r = await c.get("/api/nothing-here")
        assert r.status_code == 404 and r.json()["ok"] is False
        r = await c.get("/api/notifications?limit=0")
        assert r.status_code == 400
        r = await c.post(OVERRIDE, content=b"x" * 70_000)
        assert r.status_code == 413


@pytest.mark.parametrize(
    ("action", "extra", "kind", "soc"),
    [
        ("charge_now", {"soc_percent": 90}, OverrideKind.CHARGE_NOW, 90.0),
        ("charge_now", {}, OverrideKind.CHARGE_NOW, 100.0),
        ("discharge_now", {"soc_percent": 55}, OverrideKind.DISCHARGE_NOW, 55.0),
        ("discharge_now", {}, OverrideKind.DISCHARGE_NOW, 40.0),
        ("hold", {}, OverrideKind.HOLD, None),
        ("pause", {}, OverrideKind.HOLD, None),
        ("release", {}, OverrideKind.RELEASE, None),
    ],
)
async def test_accepted_overrides_are_stored_with_their_expiry_and_announced(
    tmp_path: Path, action: str, extra: dict[str, Any], kind: OverrideKind, soc: float | None
) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw) as c:
        r = await c.post(OVERRIDE, json={"action": action, "minutes": 90, **extra})
        assert r.status_code == 200, r.text
        (o,) = gw.store.active_overrides(gw.clock.now())
        assert (o.vehicle_id, o.kind, o.target_soc_percent) == ("car", kind, soc)
        assert o.expires_at == gw.clock.now() + timedelta(minutes=90)
        assert "until 13:30" in r.json()["message"]
        assert "override_accepted" in kinds(gw)
        status = (await c.get("/api/status")).json()
        car = next(v for v in status["vehicles"] if v["vehicle_id"] == "car")
        assert car["mode"] == kind.value
        assert car["override"]["expires_at"] == o.expires_at.isoformat()


async def test_automatic_ends_the_override(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw) as c:
        await c.post(OVERRIDE, json={"action": "hold"})
        r = await c.post(OVERRIDE, json={"action": "automatic"})
        assert r.status_code == 200
        assert r.json()["result"] == {"action": "automatic", "vehicle": "car", "cancelled": 1}
        assert gw.store.active_overrides(gw.clock.now()) == ()
        assert "override_cancelled" in kinds(gw)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"key": "reserve_soc_percent", "value": 5, "vehicle": "car"},
            "reserve must be between 10",
        ),
        ({"key": "reserve_soc_percent", "value": 50}, "say which vehicle"),
        ({"key": "target_soc_percent", "value": -1, "vehicle": "car"}, "expected a percentage"),
        ({"key": "departure_time", "value": "25:00", "vehicle": "car"}, "expected a local time"),
        ({"key": "v2g_enabled", "value": "yes"}, "expected true or false"),
        ({"key": "v2h_only", "value": 1}, "expected true or false"),
        ({"key": "colour", "value": 1}, "unknown preference 'colour'"),
        ({"key": "v2g_enabled"}, "'value' is required"),
        ({"key": "target_soc_percent", "value": 80, "vehicle": "bike"}, "unknown vehicle 'bike'"),
    ],
)
async def test_refused_preferences_say_why(
    tmp_path: Path, body: dict[str, Any], error: str
) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw) as c:
        r = await c.post("/api/preference", json=body)
        assert r.status_code == 422
        assert error in r.json()["error"]
        assert gw.store.preferences() == {}


async def test_preferences_and_overrides_persist_across_a_restart(tmp_path: Path) -> None:
    cfg = web_config(tmp_path)
    changes = [
        {"key": "reserve_soc_percent", "value": 45, "vehicle": "car"},
        {"key": "target_soc_percent", "value": 85, "vehicle": "car"},
        {"key": "departure_time", "value": "06:45", "vehicle": "car"},
        {"key": "v2g_enabled", "value": False},
        {"key": "v2h_only", "value": True},
    ]
    async with running(cfg) as gw, client(gw) as c:
        for body in changes:
            r = await c.post("/api/preference", json=body)
            assert r.status_code == 200, r.text
        assert (await c.post(OVERRIDE, json={"action": "hold", "minutes": 600})).status_code == 200
        assert kinds(gw).count("preference_changed") == len(changes)
    async with running(cfg) as gw, client(gw) as c:
        assert gw.policy.reserve_percent("car") == 45.0
        assert gw.policy.preference("departure_time", "car") == "06:45"
        st = (await c.get("/api/status")).json()
        car = next(v for v in st["vehicles"] if v["vehicle_id"] == "car")
        assert car["reserve_soc_percent"] == 45.0
        assert car["mode"] == "hold"
        assert car["departure_text"] == "Fri 06:45, 85 %"
        assert st["preferences"] == {
            "v2g_enabled": False,
            "v2h_only": True,
            "discharge_above_per_kwh": None,
        }
        # Clearing the daily time goes back to the weekly plan of the config (Mon/Tue 07:30).
        r = await c.post(
            "/api/preference", json={"key": "departure_time", "value": None, "vehicle": "car"}
        )
        assert r.json()["message"] == "departure time cleared"
        st = (await c.get("/api/status")).json()
        car = next(v for v in st["vehicles"] if v["vehicle_id"] == "car")
        assert car["departure_text"] == "Mon 07:30, 85 %"


async def test_test_discharge_is_refused_with_a_reason_when_it_cannot_run(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw) as c:
        r = await c.post("/api/chargers/garage/test-discharge", json={})
        assert r.status_code == 422 and "not connected" in r.json()["error"]
        r = await c.post("/api/chargers/nowhere/test-discharge", json={})
        assert r.status_code == 404
        assert gw.store.active_overrides(gw.clock.now()) == ()


async def test_the_charging_mode_is_set_through_policy_and_shown(tmp_path: Path) -> None:
    async with running(web_config(tmp_path)) as gw, client(gw) as c:
        r = await c.post(
            "/api/preference", json={"key": "charge_mode", "value": "pv_only", "vehicle": "car"}
        )
        assert r.status_code == 200, r.text
        assert gw.policy.preference("charge_mode", "car") == "pv_only"
        st = (await c.get("/api/status")).json()
        car = next(v for v in st["vehicles"] if v["vehicle_id"] == "car")
        assert car["charge_mode"] == "pv_only"
        page = (await c.get("/")).text
        assert '<option value="pv_only" selected>' in page
        bad = await c.post(
            "/api/preference", json={"key": "charge_mode", "value": "turbo", "vehicle": "car"}
        )
        assert bad.status_code == 422 and "turbo" in bad.json()["error"]
