"""Cancellation that Python 3.11 can lose.

`asyncio.wait_for` in 3.11 returns the result instead of raising when a cancel arrives just as the
awaited thing completes (cpython gh-86296, fixed in 3.12 by building it on `asyncio.timeout`).
aiomqtt waits for every QoS 1 acknowledgement with it, so a task cancelled during a publish can go
on running; a loop that then waits for more work never ends, and whatever waits for the task
(shutdown, a TaskGroup) hangs. The cancel request is still counted on the task, so a loop can ask.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop, even if the request got lost."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
