"""A cancel that Python 3.11's wait_for loses must still stop a loop (see v2g_gateway.tasks)."""

from __future__ import annotations

import asyncio

import pytest

from v2g_gateway.tasks import raise_if_cancelled


async def test_a_cancel_racing_the_result_still_stops_the_task() -> None:
    done = asyncio.get_running_loop().create_future()

    async def worker() -> None:
        await asyncio.wait_for(done, 5)  # as aiomqtt waits for a PUBACK
        # Python 3.11 gets here although the task was cancelled.
        raise_if_cancelled()
        await asyncio.Event().wait()  # the next wait for work would never end

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)  # the worker is now waiting
    done.set_result(None)
    task.cancel()  # in the same loop iteration as the result
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert task.cancelled()


async def test_a_running_task_is_left_alone() -> None:
    raise_if_cancelled()  # no cancel requested: nothing happens
    assert asyncio.current_task() is not None
