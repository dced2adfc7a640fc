"""A message on a vehicle's SoC topic into the store: recorded, or refused with a notification.

Kept apart from the bridge so the connection code does not also hold the rules for SoC input;
the bridge only shows the odometer and range this returns.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from v2g_gateway.errors import StoreError
from v2g_gateway.model import Notification
from v2g_gateway.mqtt.soc import VehicleReport, parse_report
from v2g_gateway.store import Store

log = structlog.get_logger(__name__)


def take_report(
    store: Store,
    vehicle_id: str,
    topic: str,
    payload: bytes,
    now: datetime,
    *,
    retained: bool = False,
    expiry_s: float | None = None,
) -> VehicleReport | None:
    """The report with `soc_percent` set only if it was recorded; None if the payload is bad."""
    try:
        report = parse_report(payload)
    except ValueError as exc:
        _reject(store, vehicle_id, topic, payload, now, exc)
        return None
    if report.soc_percent is None:
        return report
    try:
        outcome = store.record_mqtt_soc(
            vehicle_id,
            report.soc_percent,
            measured_at=report.measured_at,
            retained=retained,
            expiry_s=expiry_s,
        )
    except (ValueError, StoreError) as exc:
        _reject(store, vehicle_id, topic, payload, now, exc)
        return VehicleReport(None, report.extra)
    log.info("mqtt.soc", vehicle_id=vehicle_id, soc=report.soc_percent, outcome=outcome)
    return report


def _reject(
    store: Store, vehicle_id: str, topic: str, payload: bytes, now: datetime, exc: Exception
) -> None:
    store.notify(
        Notification(
            kind="soc_rejected",
            message=f"SoC for {vehicle_id} on {topic} ignored: {exc}",
            at=now,
            level="warning",
            vehicle_id=vehicle_id,
            data={"topic": topic, "payload": payload[:100].decode("utf-8", "replace")},
        )
    )
