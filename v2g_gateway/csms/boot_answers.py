"""What a BootNotification is answered when it is not simply Accepted.

Never a CALLERROR to a boot: a charger that gets one may give up; Pending or Rejected with an
interval makes it boot again later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from v2g_gateway.csms.frames import FrameError
from v2g_gateway.csms.timestamps import iso

BOOT_RETRY_S = 30


def pending(now: datetime) -> dict[str, Any]:
    """Not yet (a flood, a handler that failed): boot again in BOOT_RETRY_S."""
    return {"currentTime": iso(now), "interval": BOOT_RETRY_S, "status": "Pending"}


def rejected(now: datetime, exc: FrameError) -> dict[str, Any]:
    """A BootNotification the gateway cannot read: Rejected (retry later), saying why."""
    return {
        "currentTime": iso(now),
        "interval": BOOT_RETRY_S * 10,
        "status": "Rejected",
        # reasonCode is 20 characters at most; the OCPP error code goes with the detail.
        "statusInfo": {
            "reasonCode": "InvalidValue",
            "additionalInfo": f"{exc.code}: {exc.description}"[:512],
        },
    }
