"""Keeps the current site plan: every plugged car (guests included), the house, PV and the grid
connection in one LP, and each car's part of it as that car's plan.

Replanning is cheap (one LP, tens of ms) but not free, and meter values arrive every few seconds,
so the plan is reused until its inputs change in kind (a car plugged or unplugged, prices,
preferences and modes, overrides, demand response, a departure, a new PV forecast, the house
load moving by 500 W), a car's SoC drifts from the plan, or it is `max_age` old.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from v2g_gateway.clock import Clock
from v2g_gateway.config import Config
from v2g_gateway.dispatch.announce import Announcer
from v2g_gateway.dispatch.controller import PlannedPower, PriceView, subject
from v2g_gateway.dispatch.plan_types import Plan
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.dispatch.requests import next_departure, split_slots
from v2g_gateway.dispatch.site import plan_site
from v2g_gateway.dispatch.site_types import (
    ChargeMode,
    EndValue,
    SiteCar,
    SitePlan,
    SiteRequest,
)
from v2g_gateway.dispatch.subjects import (
    PLAN_RESERVE_MARGIN_PERCENT,
    Subject,
    Subjects,
    unknown_soc,
)
from v2g_gateway.errors import PlanError, StoreError
from v2g_gateway.home.price_forecast import AFTER, end_value_per_kwh, forecast_prices
from v2g_gateway.model import UserPriceSlot
from v2g_gateway.store import Store

if TYPE_CHECKING:
    from v2g_gateway.home.service import HomeService

__all__ = ["PLAN_RESERVE_MARGIN_PERCENT", "Replanner", "next_departure", "split_slots"]

log = structlog.get_logger(__name__)

HORIZON = timedelta(hours=48)
SOC_DRIFT_PERCENT = 3.0
HISTORY = timedelta(days=8)  # of prices, for the forecast beyond the published ones
SITE = "site"  # the key of site-wide notices


@dataclass(frozen=True, slots=True)
class _Made:
    site: SitePlan
    plans: dict[str, Plan]
    key: tuple[Any, ...]
    capacity_kwh: dict[str, float]


class Replanner:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        policy: Policy,
        prices: PriceView,
        clock: Clock,
        *,
        max_age: timedelta = timedelta(minutes=15),
        home_load_w: Callable[[datetime], float | None] | None = None,
        home: HomeService | None = None,
    ) -> None:
        self._cfg = cfg
        self._store = store
        self._policy = policy
        self._prices = prices
        self._clock = clock
        self._max_age = max_age
        self._home_load_w = home_load_w
        self._home = home
        self._subjects = Subjects(cfg, store, policy, clock)
        self._tell = Announcer(cfg, store)
        self._made: _Made | None = None
        self._round: tuple[datetime, _Made | None] | None = None
        self.solves = 0

    def current(self, vehicle_id: str) -> Plan | None:
        return None if self._made is None else self._made.plans.get(vehicle_id)

    def site(self) -> SitePlan | None:
        return None if self._made is None else self._made.site

    def begin_round(self, now: datetime) -> None:
        """One replan check per dispatch round: every EVSE of the round reads the site plan
        made (or found good) at its start. Checking again per EVSE rebuilt every car's subject
        for every car: with 100 cars, 10,000 a round and the gateway at a full core."""
        self._round = (now, self._refresh(now))

    def lookup(self, key: str, now: datetime) -> PlannedPower | None:
        """What the plan says for now, replanning first if the plan is out of date."""
        made = self._round[1] if self._round and self._round[0] == now else self._refresh(now)
        p = None if made is None else made.plans.get(key)
        slot = None if p is None else p.slot_at(now)
        if slot is None:
            return None
        return PlannedPower(power_w=slot.net_kw * 1000.0, reason=slot.reason)

    def ahead(
        self, key: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, PlannedPower]]:
        """The current plan's slots that begin inside (start, end): a profile's later periods."""
        p = None if self._made is None else self._made.plans.get(key)
        if p is None:
            return []
        return [
            (s.start, PlannedPower(power_w=s.net_kw * 1000.0, reason=s.reason))
            for s in p.slots
            if start < s.start < end
        ]

    # ------------------------------------------------------------------ internals

    def _who(self, now: datetime) -> dict[str, Subject]:
        out: dict[str, Subject] = {}
        for session in self._store.open_sessions():
            key = subject(session)
            who = self._subjects.subject(key, now)
            if who is not None:
                out[key] = who
        return out

    def _prices_for(self, now: datetime, whos: dict[str, Subject]) -> list[UserPriceSlot] | None:
        try:
            prices = [p for p in self._prices.user_prices(now, now + HORIZON) if p.end > now]
        except Exception as exc:
            for k in whos:
                self._tell.tell_once(k, "prices_missing", f"no price data: {exc}", now)
            return None
        if not prices:
            for k in whos:
                self._tell.tell_once(k, "prices_missing", "no price data for now", now)
            return None
        for k in whos:
            self._tell.clear(k, "prices_missing")
        cuts = [w.departure[0] for w in whos.values() if w.departure is not None]
        return split_slots(prices, cuts)

    def _mode(self, who: Subject) -> ChargeMode:
        if who.config is None:
            return ChargeMode.SMART
        return ChargeMode.parse(str(self._policy.preference("charge_mode", who.config.id)))

    def _refresh(self, now: datetime) -> _Made | None:
        whos = self._who(now)
        if not whos:
            self._made = None
            return None
        prices = self._prices_for(now, whos)
        if prices is None:
            return None
        home_w = self._home_load_w(now) if self._home_load_w else None
        pv_kw, load_kw = self._home_forecast(prices, home_w)
        cache_key = (
            tuple(sorted((k, self._subject_key(w)) for k, w in whos.items())),
            tuple((p.end, p.import_per_kwh, p.export_per_kwh) for p in prices[:-1]),
            tuple(sorted((k, repr(val)) for k, val in self._store.preferences().items())),
            repr(self._store.kv_get("demand_response")),
            None if self._home is None else self._home.pv_at,
            None if load_kw is None else round(load_kw[0] * 2.0),  # replan on a 500 W move
        )
        made = self._made
        if made is not None and self._still_good(made, cache_key, whos, now):
            return made
        try:
            request = self._request(now, prices, whos, home_w, pv_kw, load_kw)
            site = plan_site(request)
        except PlanError as exc:
            log.error("replan.failed", subjects=sorted(whos), error=str(exc))
            for k in whos:
                self._tell.tell_once(k, "plan_failed", f"planning failed: {exc}", now)
            return None
        self.solves += 1
        plans: dict[str, Plan] = {}
        for k, who in whos.items():
            self._tell.clear(k, "plan_failed")
            p = site.cars[who.vehicle.vehicle_id]
            plans[k] = p if who.soc_known else unknown_soc(p, who)
        result = _Made(site, plans, cache_key, {k: w.vehicle.capacity_kwh for k, w in whos.items()})
        self._made = result
        for k, who in whos.items():
            if who.config is None:
                continue
            try:
                self._store.save_plan(
                    k, now, _with_site(plans[k], site, pv_kw is not None, load_kw is not None)
                )
            except StoreError as exc:  # the plan still drives dispatch; MQTT shows the old one
                log.error("replan.not_saved", subject=k, error=str(exc))
            old = None if made is None else made.plans.get(k)
            self._tell.announce(k, old, plans[k], now, who.departure)
        return result

    def _subject_key(self, who: Subject) -> tuple[Any, ...]:
        charger = self._store.charger_state(who.session.charger_id)
        return (
            who.departure,
            None if charger is None else charger.discharge,
            who.session.session_id,
            who.soc_known,
            # Without a SoC: replan as the registers count each kWh delivered.
            None if who.soc_known else round(who.vehicle.soc_kwh),
            self._mode(who),
        )

    def _still_good(
        self, made: _Made, key: tuple[Any, ...], whos: dict[str, Subject], now: datetime
    ) -> bool:
        if made.key != key or now - made.site.created_at > self._max_age:
            return False
        for k, who in whos.items():
            slot = made.plans[k].slot_at(now)
            if slot is None:
                return False
            if not who.soc_known:
                continue  # the key follows the delivered energy instead
            done = (now - slot.start) / (slot.end - slot.start)
            expected_kwh = slot.soc_start_kwh + (slot.soc_end_kwh - slot.soc_start_kwh) * done
            expected = 100.0 * expected_kwh / made.capacity_kwh[k]
            soc = 100.0 * who.vehicle.soc_kwh / who.vehicle.capacity_kwh
            if abs(expected - soc) > SOC_DRIFT_PERCENT:
                return False
        return True

    def _home_forecast(
        self, prices: Sequence[UserPriceSlot], home_w: float | None
    ) -> tuple[list[float] | None, list[float] | None]:
        """PV and house load per slot: the home's forecasts, else the outage meter's load now
        held (a persistence forecast), else nothing (the plan then knows only the cars)."""
        slots = [(p.start, p.end) for p in prices]
        if self._home is not None and (self._home.has_pv or self._cfg.home.measured):
            pv, load = self._home.forecast(slots)
            now = self._home.now()
            if now.load_w is not None and load:
                load[0] = now.load_w / 1000.0  # the slot under way: what the meter says
            return pv, load
        if home_w is not None:
            return None, [home_w / 1000.0] * len(prices)
        return None, None

    def _request(
        self,
        now: datetime,
        prices: Sequence[UserPriceSlot],
        whos: dict[str, Subject],
        home_w: float | None,
        pv_kw: list[float] | None,
        load_kw: list[float] | None,
    ) -> SiteRequest:
        cars: list[SiteCar] = []
        reqs = []
        for who in whos.values():
            req = self._subjects.request(who, now, prices, home_w)
            reqs.append(req)
            cars.append(
                SiteCar(
                    req.vehicle,
                    req.plugged,
                    req.targets,
                    mode=self._mode(who),
                    min_charge_kw=self._min_charge_kw(who),
                    v2g_enabled=req.v2g_enabled,
                )
            )
        first = reqs[0]
        threshold = next((r.spike_threshold_per_kwh for r in reqs if r.v2g_enabled), None)
        dr = next((r.dr_events for r in reqs if r.dr_events), ())
        try:
            history = self._prices.user_prices(now - HISTORY, now)
        except Exception:
            history = []
        end = prices[-1].end
        later = forecast_prices(history, end, end + AFTER, self._cfg.gateway.tz)
        eta_c = min(c.vehicle.eta_c for c in cars)
        h = self._cfg.home
        return SiteRequest(
            now=now,
            prices=prices,
            cars=cars,
            pv_kw=pv_kw,
            load_kw=load_kw,
            import_limit_kw=h.import_limit_kw() if h.enabled else None,
            export_limit_kw=h.export_limit_kw(self._cfg.preferences.grid_export_limit_w)
            if h.enabled
            else None,
            v2h_only=first.v2h_only,
            degradation_cost_per_kwh=first.degradation_cost_per_kwh,
            spike_threshold_per_kwh=threshold,
            dr_events=dr,
            max_cycles_per_day=first.max_cycles_per_day,
            end_value=EndValue(end_value_per_kwh(prices, later, eta_c)),
            currency=first.currency,
        )

    def _min_charge_kw(self, who: Subject) -> float:
        """The least the charger delivers when it charges (min + PV's minimum)."""
        ch = self._store.charger_state(who.session.charger_id)
        learnt = None if ch is None else ch.capabilities.get("min_power_w")
        if isinstance(learnt, int | float) and not isinstance(learnt, bool) and learnt > 0:
            return float(learnt) / 1000.0
        ccfg = self._cfg.charger(who.session.charger_id)
        if ccfg is None:
            return 1.4
        return ccfg.min_current_a * ccfg.voltage_v * (ccfg.phases or 3) / 1000.0


def _with_site(p: Plan, site: SitePlan, pv: bool, load: bool) -> dict[str, Any]:
    """A vehicle's stored plan, each slot with what the home does then (for MQTT and the web);
    PV and house load are null where the plan knew nothing of them."""
    doc = p.to_json()
    for s, j in zip(p.slots, doc["slots"], strict=True):
        home = site.slot_at(s.start)
        j["pv_kw"] = None if home is None or not pv else round(home.pv_kw, 3)
        j["house_load_kw"] = None if home is None or not load else round(home.load_kw, 3)
        j["grid_import_kw"] = None if home is None else round(home.import_kw, 3)
        j["grid_export_kw"] = None if home is None else round(home.export_kw, 3)
    doc["site"] = {
        "import_limit_kw": site.import_limit_kw,
        "export_limit_kw": site.export_limit_kw,
        "vehicles": sorted(site.cars),
        "notes": list(site.notes),
    }
    return doc
