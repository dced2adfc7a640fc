"""Composition root: builds every part once, runs them as named tasks, shuts down cleanly.

One TaskGroup holds the long-running parts; if one of them fails the others are cancelled and
the process exits non-zero so systemd restarts it. SIGTERM/SIGINT set `stop`, which closes the
OCPP server (close code 1001 to every charger), the MQTT link (availability 'offline') and the
store, well within the 5 s systemd allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from typing import Any

import httpx
import structlog

from v2g_gateway import __version__
from v2g_gateway.clock import Clock, SystemClock
from v2g_gateway.config import Config
from v2g_gateway.csms.server import CsmsServer
from v2g_gateway.dispatch.controller import Controller
from v2g_gateway.dispatch.ledger import Ledger
from v2g_gateway.dispatch.policy import Policy
from v2g_gateway.dispatch.replanner import Replanner
from v2g_gateway.errors import PriceError
from v2g_gateway.grid import OutageDetector
from v2g_gateway.home.service import HomeService
from v2g_gateway.model import CommandResult, CommandStatus, Notification, UserPriceSlot
from v2g_gateway.mqtt.bridge import MqttBridge
from v2g_gateway.prices.label import source_label
from v2g_gateway.prices.pushed import parse_pushed_series
from v2g_gateway.prices.service import PriceService
from v2g_gateway.sdnotify import SdNotifier
from v2g_gateway.startup import bind_error, charger_urls, check_state_dir, url_message
from v2g_gateway.store import Store
from v2g_gateway.web.server import WebServer
from v2g_gateway.web.views import Sources

log = structlog.get_logger(__name__)

STATE_FILE = "state.sqlite"
HOUSEKEEPING_INTERVAL_S = 86400.0
SPILL_RETRY_S = 10.0


class Gateway:
    """The daemon: everything of DESIGN.md section 2 wired together."""

    def __init__(self, cfg: Config, clock: Clock | None = None, *, mqtt: bool = True) -> None:
        self.cfg = cfg
        self.clock: Clock = clock or SystemClock()
        check_state_dir(cfg)  # one line naming gateway.state_dir, not a sqlite error
        self.store = Store.open(cfg.gateway.state_dir / STATE_FILE, cfg, self.clock)
        self.policy = Policy(cfg, self.store, self.clock)
        self.csms = CsmsServer(cfg, self.store.apply, self.clock, ready=lambda: self.store.healthy)
        # What csms learns about a charger that the user must act on (docs/chargers.md).
        self.csms.commands.adaptation.notices.subscribe(self.store.notify)
        self._http = httpx.AsyncClient(timeout=20.0, follow_redirects=True)
        self.prices = PriceService(cfg, self.store, self.clock, self._http, self.store.notify)
        # The detector wakes the controller itself: an outage must not wait for the next tick.
        self.grid = OutageDetector(cfg, self.store, self.clock, lambda: self.controller.wake())
        # 2.1 chargers that balance the house by themselves do so in an outage.
        self.csms.commands.outage = lambda: self.grid.outage
        # The home (docs/home.md): a grid reading that breaches the connection's limit goes
        # straight to the controller, not to its next tick.
        self.home = HomeService(
            cfg,
            self.store,
            self.clock,
            self._http,
            self._cars_w,
            on_grid=lambda w: self.controller.on_grid(w),
        )
        self.replanner = Replanner(
            cfg,
            self.store,
            self.policy,
            self.prices,
            self.clock,
            home_load_w=self.grid.home_load_w,
            home=self.home,
        )
        self.controller = Controller(
            cfg,
            self.store,
            self.policy,
            self.prices,
            self.csms.commands,
            self.clock,
            plan_lookup=self.replanner.lookup,
            plan_round=self.replanner.begin_round,
            plan_ahead=self.replanner.ahead,
            outage_view=self.grid.state,
            home=self.home,
        )
        self.ledger = Ledger(cfg, self.store, self.prices, self.clock)
        self.mqtt: MqttBridge | None = None
        if mqtt and cfg.mqtt.enabled:
            self.mqtt = MqttBridge(
                cfg,
                self.store,
                self.policy,
                self.clock,
                prices_view=self._prices_view,
                health_view=self.health,
                charging_control=self.charging_control,
            )
            if cfg.prices.source == "mqtt" and cfg.prices.mqtt_topic:
                self.mqtt.add_listener(cfg.prices.mqtt_topic, self._on_pushed_prices)
        if self.mqtt is not None:
            for topic, handler in [*self.grid.listeners(), *self.home.listeners()]:
                self.mqtt.add_listener(topic, handler)
        self.web: WebServer | None = None
        if cfg.web is not None and cfg.web.enabled:
            self.web = WebServer(
                Sources(
                    cfg,
                    self.store,
                    self.policy,
                    self.clock,
                    self.prices,
                    grid_status=self.grid.status,
                    prices_status=self._prices_status,
                    ocpp_port=lambda: self.csms.port,
                    connected=self.csms.connected,
                )
            )
        self.started_at = time.monotonic()
        self.ready = asyncio.Event()
        self.stop = asyncio.Event()

    async def charging_control(self, charger_id: str, start: bool) -> CommandResult:
        """Start or stop charging on a charger's first EVSE (MQTT 'set/charging')."""
        snap = self.store.snapshot(self.clock.now())
        charger = snap.chargers.get(charger_id)
        if charger is None or not charger.online:
            return CommandResult(CommandStatus.OFFLINE, f"charger {charger_id} is not connected")
        running = [ev for ev in charger.evses.values() if ev.transaction_id]
        if start:
            if running:
                return CommandResult(CommandStatus.ACCEPTED, "a transaction is already running")
            vcfg = self.cfg.vehicle_for(charger_id)
            token = (
                vcfg.id_tokens[0] if vcfg and vcfg.id_tokens else f"{self.cfg.gateway.id}-remote"
            )
            return await self.csms.commands.request_start_transaction(charger_id, token, evse_id=1)
        if not running:
            return CommandResult(CommandStatus.REJECTED, "no transaction is running")
        tx = running[0].transaction_id
        assert tx is not None
        return await self.csms.commands.request_stop_transaction(charger_id, tx)

    def _cars_w(self) -> float | None:
        """What all the cars take now by the chargers' meters (None if one is not measured)."""
        total = 0.0
        for ch in self.store.snapshot(self.clock.now()).chargers.values():
            for ev in ch.evses.values():
                if not ch.online or not ev.plugged:
                    continue
                if ev.power_w is None:
                    return None
                total += ev.power_w
        return total

    def _on_pushed_prices(self, topic: str, payload: bytes) -> None:
        """The user's own system publishes a price series (markets we do not fetch)."""
        try:
            slots = parse_pushed_series(payload, self.cfg.prices.currency)
        except PriceError as exc:
            self.store.notify(
                Notification(
                    kind="prices_rejected",
                    message=f"price series on {topic} ignored: {exc}",
                    at=self.clock.now(),
                    level="warning",
                    data={"topic": topic},
                )
            )
            return
        self.prices.accept_pushed(slots)

    # ------------------------------------------------------------------ views

    def health(self) -> dict[str, Any]:
        spill = self.store.write_state()
        return {
            "version": __version__,
            "uptime_s": round(time.monotonic() - self.started_at),
            "store": "ok" if self.store.healthy and not spill.degraded else "failing",
            "store_write": spill.to_json(),
            "ocpp": {"connected": sorted(self.csms.connected())},
            "prices": self._prices_status(),
            "mqtt": "connected" if self.mqtt and self.mqtt.connected.is_set() else "disconnected",
            "grid": self.grid.status(),
            "home": self.home.status(),
            "ledger_today": self.ledger.today(),
        }

    def _prices_status(self) -> dict[str, Any]:
        st = self.prices.status()
        return {
            "state": st.state,
            "source": st.source,
            "label": source_label(self.cfg.prices),
            "covered_until": None if st.covered_until is None else st.covered_until.isoformat(),
            "last_success": None if st.last_success is None else st.last_success.isoformat(),
            "last_error": st.last_error,
        }

    def _prices_view(self) -> dict[str, Any]:
        now = self.clock.now()
        try:
            slots: Sequence[UserPriceSlot] = self.prices.user_prices(
                now.replace(hour=0, minute=0, second=0, microsecond=0),
                now.replace(year=now.year + 1),
            )
        except Exception as exc:
            return {"status": "missing", "error": str(exc)}
        current = next((s for s in slots if s.start <= now < s.end), None)
        return {
            "status": self._prices_status(),
            "currency": self.cfg.prices.currency,
            "current": None if current is None else _slot_json(current),
            "slots": [_slot_json(s) for s in slots[:200]],
        }

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Run until `stop` is set; then shut everything down and return."""
        notifier = SdNotifier()
        try:
            try:
                await self.csms.start()
            except OSError as exc:
                raise bind_error(self.cfg, exc) from None
            await self._start_web()
            self.prune_history()
            log.info(
                "gateway.started",
                gateway_id=self.cfg.gateway.id,
                ocpp_port=self.csms.port,
                version=__version__,
            )
            self._log_charger_urls()
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    self._task(tg, self.controller.run(), "dispatch"),
                    self._task(tg, self.prices.run(), "prices"),
                    self._task(tg, self.ledger.run(), "ledger"),
                    self._task(tg, self.grid.run(), "grid"),
                    self._task(tg, self.home.run(), "home"),
                    self._task(tg, self._housekeeping(), "housekeeping"),
                    self._task(tg, self._flush_spill(), "store-spill"),
                ]
                if self.mqtt is not None:
                    tasks.append(self._task(tg, self.mqtt.run(), "mqtt"))
                if self.web is not None:
                    tasks.append(self._task(tg, self.web.run(), "web"))
                if notifier.watchdog_interval_s:
                    tasks.append(self._task(tg, self._watchdog(notifier), "watchdog"))
                notifier.ready()
                self.store.notify(
                    Notification(
                        kind="gateway_started",
                        message=f"gateway {self.cfg.gateway.id} started (v{__version__})",
                        at=self.clock.now(),
                    )
                )
                self.ready.set()
                await self.stop.wait()
                log.info("gateway.stopping")
                notifier.stopping()
                for t in tasks:
                    t.cancel()
        finally:
            await self.close()

    def _log_charger_urls(self) -> None:
        """Say what to type into each charger: the answer to 'what is my CSMS URL?'."""
        for u in charger_urls(self.cfg, self.csms.port):
            log.info(
                url_message(u),
                charger_id=u.charger_id,
                url=u.url,
                base_url=u.base_url,
                security_profile=u.security_profile,
            )
        if not self.cfg.chargers:
            log.warning("no [[chargers]] in the config: every charger will be refused")

    async def _start_web(self) -> None:
        """The web app is a window, not a safety part: if it cannot listen, say so and go on."""
        if self.web is None:
            if self.cfg.web is None:
                log.info("web app off: no [web] table in the config (see docs/web.md)")
            return
        try:
            await self.web.start()
        except OSError as exc:
            web_cfg = self.cfg.web
            assert web_cfg is not None
            where = f"{web_cfg.host}:{web_cfg.port}"
            log.error("web.listen_failed", address=where, error=str(exc))
            self.store.notify(
                Notification(
                    kind="web_unavailable",
                    message=f"the web app cannot listen on {where}: {exc.strerror or exc}",
                    at=self.clock.now(),
                    level="error",
                )
            )
            self.web = None

    async def close(self) -> None:
        if self.web is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.web.close(), 3.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.csms.close(), 3.0)
        with contextlib.suppress(Exception):
            await self._http.aclose()
        self.store.close()
        log.info("gateway.stopped")

    @staticmethod
    def _task(
        tg: asyncio.TaskGroup, coro: Coroutine[Any, Any, None], name: str
    ) -> asyncio.Task[None]:
        return tg.create_task(coro, name=name)

    def prune_history(self) -> None:
        """Drop history older than `history_days` (at start, then daily)."""
        keep = timedelta(days=self.cfg.gateway.history_days)
        deleted = self.store.prune(self.clock.now() - keep)
        if any(deleted.values()):
            log.info("store.pruned", older_than_days=keep.days, **deleted)

    async def _flush_spill(self) -> None:
        """What the store kept in memory is written as soon as it can be, even when no charger
        message comes to trigger it."""
        while True:
            await self.clock.sleep(SPILL_RETRY_S)
            if self.store.write_state().kept:
                self.store.flush()

    async def _housekeeping(self) -> None:
        while True:
            await self.clock.sleep(HOUSEKEEPING_INTERVAL_S)
            self.prune_history()
            self.store.daily_backup()

    async def _watchdog(self, notifier: SdNotifier) -> None:
        assert notifier.watchdog_interval_s is not None
        while True:
            notifier.watchdog()
            await asyncio.sleep(notifier.watchdog_interval_s)


def _slot_json(s: UserPriceSlot) -> dict[str, Any]:
    return {
        "start": s.start.isoformat(),
        "end": s.end.isoformat(),
        "import_price_per_kwh": round(s.import_per_kwh, 5),
        "export_price_per_kwh": round(s.export_per_kwh, 5),
    }


async def run_daemon(cfg: Config) -> int:
    """`v2g-gateway run`: the gateway until SIGTERM or SIGINT; exit code 0 on a clean stop."""
    gw = Gateway(cfg)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, gw.stop.set)
    await gw.run()
    return 0
