"""Property: whatever happens, no profile the gateway sends can take the car below its floor if
the gateway died right after sending it, and none discharges without a fresh SoC of the current
plug session of an identified car.

A Hypothesis state machine drives random histories through the real store (SQLite), the
situation builder, the dispatch core and the gate: plug-ins and plug-outs (the home car, or a
guest with its own card), charger readings with clocks hours off or replayed from an offline
queue, MQTT readings live or retained (bare, with a time, with an expiry), silence, wall-clock
steps, charger reboots, refusals of every kind, overrides, outages and price changes. The car's
true battery follows what the charger was told.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from safety_model import Car, ChargerModel, Shell, SyncClock, integrate, power_at

from v2g_gateway.config import parse_config
from v2g_gateway.dispatch.decision import Mode
from v2g_gateway.model import (
    ChargerBooted,
    ConnectorStatus,
    ConnectorStatusChanged,
    MeterSample,
    Override,
    OverrideKind,
    TransactionChanged,
    TransactionEventType,
    UserPriceSlot,
)
from v2g_gateway.store import Store

T0 = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)
RESERVE, OUTAGE_FLOOR = 40.0, 20.0
CFG = parse_config(
    {
        "chargers": [
            {"id": "garage", "password": "a-long-random-secret", "max_discharge_w": 10000}
        ],
        "vehicles": [
            {
                "id": "car",
                "battery_kwh": 60,
                "reserve_soc_percent": RESERVE,
                "charger": "garage",
                "id_tokens": ["car-tag"],
            }
        ],
        "preferences": {"profile_validity_minutes": 15, "soc_max_age_minutes": 30},
        "outage": {"floor_soc_percent": OUTAGE_FLOOR},
    }
)
EXAMPLES = int(os.environ.get("V2G_FUZZ_EXAMPLES", "60"))
PEAK = (0.45, 0.35)
STATS = {"discharge_profiles": 0, "rounds": 0}


class Safety(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.clock = SyncClock(T0)
        self.store = Store.open(Path(self.tmp.name) / "s.sqlite", CFG, self.clock)
        self.charger = ChargerModel("accept")
        self.shell = Shell()
        self.car: Car | None = None
        self.home = False  # the plugged car is the configured one
        self.tx = 0
        self.seq = 0
        self.price: UserPriceSlot | None = UserPriceSlot(
            T0 - timedelta(days=9), T0 + timedelta(days=9), *PEAK
        )
        self.override: Override | None = None
        self.outage = False
        self.store.apply(ChargerBooted("garage", T0, vendor="Sim", model="BiDi"))

    def teardown(self) -> None:
        self.store.close()
        self.tmp.cleanup()

    # ------------------------------------------------------------ the world

    @rule(behaviour=st.sampled_from(["accept", "accept", "unclear", "explicit"]))
    def firmware(self, behaviour: str) -> None:
        self.charger.behaviour = behaviour

    @precondition(lambda self: self.car is None)
    @rule(soc=st.floats(5, 95), who=st.sampled_from(["default", "token", "guest"]))
    def plug_in(self, soc: float, who: str) -> None:
        mono = self.clock.monotonic()
        self.car = Car(soc, mono, [(mono, soc)])
        self.home = who != "guest"
        self.store.apply(
            ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.OCCUPIED, self.clock.now())
        )
        self._start_tx({"default": None, "token": "car-tag", "guest": "stranger"}[who])

    def _start_tx(self, token: str | None) -> None:
        self.tx += 1
        self.seq = 0
        tx = f"tx-{self.tx}"
        self.charger.known_tx = tx
        self.store.apply(
            TransactionChanged(
                "garage",
                1,
                tx,
                TransactionEventType.STARTED,
                self.clock.now(),
                0,
                "CablePluggedIn",
                id_token=token,
            )
        )

    @precondition(lambda self: self.car is not None)
    @rule()
    def plug_out(self) -> None:
        self.car = None
        self.charger.spec = None
        self.charger.known_tx = None
        self.store.apply(
            ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.AVAILABLE, self.clock.now())
        )

    @rule()
    def reboot(self) -> None:
        self.charger.spec = None
        self.charger.known_tx = None
        self.store.apply(ChargerBooted("garage", self.clock.now(), vendor="Sim", model="BiDi"))
        if self.car is not None:
            self.store.apply(
                ConnectorStatusChanged("garage", 1, 1, ConnectorStatus.OCCUPIED, self.clock.now())
            )

    @precondition(lambda self: self.car is not None and self.charger.known_tx is None)
    @rule()
    def new_transaction_after_reboot(self) -> None:
        self._start_tx("car-tag" if self.home else "stranger")

    @precondition(lambda self: self.car is not None)
    @rule(
        skew_h=st.sampled_from([0.0, 0.0, 2.0, -1.0, 5.5]),
        offline=st.booleans(),
        noise=st.sampled_from([0.0, 0.0, 30.0]),
    )
    def charger_reading(self, skew_h: float, offline: bool, noise: float) -> None:
        assert self.car is not None
        value = round(self.car.soc, 1)
        if offline:
            value = min(100.0, value + noise)  # a replayed value may be anything from the past
        at = self.clock.now() + timedelta(hours=skew_h)
        tx = self.charger.known_tx
        power = power_at(self.charger.spec, self.clock.now())
        self.store.apply(
            MeterSample("garage", 1, at, tx, soc_percent=value, power_w=power, offline=offline)
        )

    @precondition(lambda self: self.car is not None)
    @rule(
        kind=st.sampled_from(["live", "retained_bare", "retained_timed", "expiring", "old_timed"]),
        age_s=st.floats(0, 7200),
        lie=st.floats(-40, 40),
    )
    def mqtt_reading(self, kind: str, age_s: float, lie: float) -> None:
        car = self.car
        assert car is not None
        mono = self.clock.monotonic()
        if kind == "live":
            self.store.record_mqtt_soc("car", round(car.soc, 1))
        elif kind == "expiring":
            self.store.record_mqtt_soc("car", round(car.soc, 1), expiry_s=age_s)
        elif kind == "retained_bare":
            # A retained value of any age: from the last drive, or another day.
            self.store.record_mqtt_soc("car", min(100.0, max(0.0, car.soc + lie)), retained=True)
        else:
            then = car.at(mono - age_s)
            when = self.clock.now() - timedelta(seconds=age_s)
            if then is not None:
                self.store.record_mqtt_soc(
                    "car", round(then, 1), measured_at=when, retained=kind == "retained_timed"
                )
            else:  # measured before this plug-in: true of some other moment
                self.store.record_mqtt_soc(
                    "car", min(100.0, max(0.0, car.soc + lie)), measured_at=when
                )

    @rule(seconds=st.sampled_from([1.0, 20.0, 60.0, 300.0, 900.0, 2400.0]))
    def time_passes(self, seconds: float) -> None:
        if self.car is not None:
            self.car.soc, _ = integrate(self.car.soc, self.charger.spec, self.clock.now(), seconds)
        self.clock.advance(seconds)
        if self.car is not None:
            self.car.history.append((self.clock.monotonic(), self.car.soc))
        self._dispatch()

    @rule(hours=st.sampled_from([-3.0, -1.0, 1.0, 2.0]))
    def wall_clock_steps(self, hours: float) -> None:
        self.clock.step_wall(hours * 3600)

    @rule(kind=st.sampled_from(["peak", "cheap", "unknown"]))
    def prices(self, kind: str) -> None:
        now = self.clock.now()
        span = (now - timedelta(days=2), now + timedelta(days=2))
        self.price = {
            "peak": UserPriceSlot(*span, 0.45, 0.35),
            "cheap": UserPriceSlot(*span, 0.20, 0.05),
            "unknown": None,
        }[kind]

    @rule()
    def outage_toggles(self) -> None:
        self.outage = not self.outage

    @rule(
        kind=st.sampled_from([*list(OverrideKind), None]),
        soc_target=st.none() | st.floats(0, 100),
        power=st.none() | st.floats(100, 20000),
    )
    def user_overrides(
        self, kind: OverrideKind | None, soc_target: float | None, power: float | None
    ) -> None:
        if kind is None:
            self.override = None
            return
        if kind in (OverrideKind.HOLD, OverrideKind.RELEASE):
            power = None
        now = self.clock.now()
        self.override = Override("o", "car", kind, now, now + timedelta(hours=2), soc_target, power)

    # ------------------------------------------------------------ dispatch and the property

    @initialize(soc=st.floats(41, 95))
    def the_home_car_arrives(self, soc: float) -> None:
        self.plug_in(soc, "default")
        self.charger_reading(0.0, False, 0.0)

    @precondition(lambda self: self.car is not None)
    @rule()
    def dispatch(self) -> None:
        """A round, as the controller runs on every change and every tick."""
        self._dispatch()

    def _dispatch(self) -> None:
        car = self.car
        if car is None:
            return
        STATS["rounds"] += 1
        price = None if self.price is None else self.price
        out, _before = self.shell.round(
            CFG, self.store, self.clock, self.charger, price, self.override, self.outage, RESERVE
        )
        p = out.send
        if p is None or not p.discharges:
            return
        STATS["discharge_profiles"] += 1
        session = self.store.open_sessions()[0]
        # Only an identified car, on a fresh reading of this very plug-in.
        assert self.home and session.vehicle_id == "car", "a guest was discharged"
        v = self.store.vehicle_view("car")
        assert v is not None
        reading = v.usable_soc(self.clock.monotonic(), timedelta(minutes=30))
        assert reading is not None, "discharge without a fresh SoC"
        assert reading.session_id == session.session_id
        assert reading.received_mono >= car.plugged_mono, "a reading of an earlier plug-in"
        # The floor is never below what the rules allow.
        floor = OUTAGE_FLOOR if self.outage else RESERVE
        assert p.min_floor_percent is not None and p.min_floor_percent >= floor - 1e-9
        # The gateway dies now: the charger runs the profile to its end.
        remaining = (p.spec.valid_to - self.clock.now()).total_seconds()
        _end, low = integrate(car.soc, p.spec, self.clock.now(), remaining)
        assert low >= p.min_floor_percent - 1e-6, (
            f"{p} takes the car from {car.soc:.2f} to {low:.2f} %"
        )

    @invariant()
    def holds_mean_zero(self) -> None:
        # A hold or pause that was sent is 0 W now: it never charges nor discharges.
        if (
            (
                self.override is not None
                and self.override.kind == OverrideKind.HOLD
                and self.shell.last is not None
            )
            and self.shell.last.mode == Mode.HOLD
            and self.shell.last.profile is not None
        ):
            assert power_at(self.shell.last.profile.spec, self.shell.last.profile.spec.start) >= 0


def test_no_profile_can_take_the_car_below_its_floor() -> None:
    run_state_machine_as_test(
        Safety,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            derandomize=os.environ.get("V2G_FUZZ_RANDOM") is None,
        ),
    )
    # The property is not vacuous: many of those rounds did send a discharge.
    assert STATS["discharge_profiles"] >= EXAMPLES // 10, STATS
