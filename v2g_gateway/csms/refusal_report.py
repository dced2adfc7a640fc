"""Refused handshakes, told in a bounded way: a count per minute, not a line per try.

A password guesser tried 413 times a second and wrote 8,380 warning lines in 20 s. Here each
distinct (identity, address, reason) is told once when it first happens in a minute (a log line
and a `handshake_refused` notification, which the web app's setup page lists); repeats within
that minute are only counted and told as one line and one notification per key when the minute
is over. At most MAX_TOLD keys a minute are told one by one; the rest of a scan of many
identities or addresses is summed up in one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import structlog

from v2g_gateway.clock import Clock
from v2g_gateway.model import Notification

log = structlog.get_logger(__name__)

KIND = "handshake_refused"
WINDOW_S = 60.0
MAX_TOLD = 10

Key = tuple[str | None, str | None, str]  # identity, address, reason


class RefusalReport:
    def __init__(
        self,
        clock: Clock,
        publish: Callable[[Notification], None],
        known: Callable[[str], bool] = lambda _ident: False,
    ) -> None:
        self._clock = clock
        self._publish = publish
        self._known = known  # identities of configured chargers (the notification names them)
        self._opened: float | None = None  # start of the current minute
        self._told: set[Key] = set()
        self._repeats: Counter[Key] = Counter()
        self.total = 0

    def refused(self, identity: str | None, address: str | None, reason: str) -> None:
        self.tick()
        self.total += 1
        key: Key = (identity, address, reason)
        if self._opened is None:
            self._opened = self._clock.monotonic()
        if key not in self._told and len(self._told) < MAX_TOLD:
            self._told.add(key)
            self._tell(key, 1)
        else:
            self._repeats[key] += 1

    def tick(self) -> None:
        """Close the minute if it is over (called on every refusal and once a minute)."""
        if self._opened is None or self._clock.monotonic() - self._opened < WINDOW_S:
            return
        self.flush()

    def flush(self) -> None:
        """Tell the repeats counted so far and start a new minute."""
        repeats = self._repeats.most_common()
        self._opened, self._told, self._repeats = None, set(), Counter()
        for key, n in repeats[:MAX_TOLD]:
            self._tell(key, n, repeat=True)
        rest = repeats[MAX_TOLD:]
        if rest:
            n = sum(c for _, c in rest)
            reasons = sorted({k[2] for k, _ in rest})
            self._tell((None, None, "; ".join(reasons)), n, repeat=True, keys=len(rest))

    async def run(self) -> None:
        """Close each minute even when the refusals stop (so the last count is told)."""
        while True:
            await self._clock.sleep(WINDOW_S / 4)
            self.tick()

    def _tell(self, key: Key, count: int, *, repeat: bool = False, keys: int = 1) -> None:
        identity, address, reason = key
        who = f"{identity!r}" if identity else "an unknown identity"
        if keys > 1:
            who = f"{keys} identities or addresses"
        where = f" from {address}" if address else ""
        if repeat:
            message = (
                f"refused {count} more connection(s) as {who}{where} in the last minute: {reason}"
            )
        else:
            message = f"refused a connection as {who}{where}: {reason}"
        log.warning(
            "charger refused at handshake",
            identity=identity,
            remote=address,
            reason=reason,
            count=count,
            repeats=repeat,
        )
        n = Notification(
            kind=KIND,
            message=message,
            at=self._clock.now(),
            level="warning",
            charger_id=identity if identity and self._known(identity) else None,
            data={"identity": identity, "address": address, "reason": reason, "count": count},
        )
        try:
            self._publish(n)
        except Exception:  # a failing listener must not break the server
            log.exception("handshake_refused listener failed")
