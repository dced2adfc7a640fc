"""`v2g-gateway charger reset-discharge ID --config PATH`: ask again whether a charger discharges.

A charger that refused a negative limit is retried after its next boot or a day by itself; this
is for the user who changed something on the charger and does not want to wait. The running
daemon is told over its MQTT command topic (it answers on its events topic); without MQTT the
state file is changed, which a running daemon reads at its next start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import aiomqtt

from v2g_gateway.config import Config, load_config
from v2g_gateway.errors import GatewayError
from v2g_gateway.mqtt.connection import client_options
from v2g_gateway.mqtt.topics import Topics

EXIT_USAGE = 2
REPLY_TIMEOUT_S = 10.0


async def _over_mqtt(cfg: Config, charger_id: str) -> tuple[bool, str]:
    topics = Topics.from_config(cfg)
    options = client_options(cfg, topics)
    options["identifier"] = f"v2g-gateway-cli-{cfg.gateway.id}"
    options.pop("will", None)
    command = f"charger/{charger_id}/discharge"
    async with aiomqtt.Client(**options) as client:
        await client.subscribe(topics.events, qos=1)
        await client.publish(topics.set(command), b"reset", qos=1)
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            async for msg in client.messages:
                try:
                    event = json.loads(bytes(msg.payload))
                except (TypeError, ValueError):
                    continue
                if isinstance(event, dict) and event.get("command") == f"set/{command}":
                    return bool(event.get("ok")), str(event.get("message"))
    return False, "no answer"  # pragma: no cover  (the timeout raises first)


def _in_state_file(cfg: Config, charger_id: str) -> str:
    from v2g_gateway.app import STATE_FILE
    from v2g_gateway.clock import SystemClock
    from v2g_gateway.dispatch.policy import Policy
    from v2g_gateway.store import Store

    store = Store.open(cfg.gateway.state_dir / STATE_FILE, cfg)
    try:
        Policy(cfg, store, SystemClock()).reset_discharge(charger_id)
    finally:
        store.close()
    return f"charger {charger_id}: reset in the state file (a running daemon reads it at its next start)"


def cmd_reset_discharge(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
        if cfg.charger(args.charger) is None:
            known = [c.id for c in cfg.chargers]
            raise GatewayError(f"unknown charger {args.charger!r} (known: {known})")
        if cfg.mqtt.enabled and not args.offline:
            try:
                ok, message = asyncio.run(_over_mqtt(cfg, args.charger))
            except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
                print(
                    f"v2g-gateway: charger reset-discharge: no answer from the gateway over MQTT "
                    f"({cfg.mqtt.host}:{cfg.mqtt.port}: {exc or type(exc).__name__}); with the "
                    "daemon stopped, use --offline",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            print(message, file=sys.stdout if ok else sys.stderr)
            return 0 if ok else EXIT_USAGE
        print(_in_state_file(cfg, args.charger))
        return 0
    except GatewayError as exc:
        print(f"v2g-gateway: charger reset-discharge: {exc}", file=sys.stderr)
        return EXIT_USAGE


def add_subparsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("charger", help="what the gateway learnt about a charger")
    csub = p.add_subparsers(dest="charger_command", required=True, metavar="ACTION")
    reset = csub.add_parser(
        "reset-discharge",
        help="forget that a charger refused to discharge; it is asked again at once",
    )
    reset.add_argument("charger", help="the charger's id, as in [[chargers]]")
    reset.add_argument("--config", required=True, help="the gateway's TOML file")
    reset.add_argument(
        "--offline",
        action="store_true",
        help="change the state file instead of telling the running daemon (daemon stopped)",
    )
    reset.set_defaults(func=cmd_reset_discharge)
