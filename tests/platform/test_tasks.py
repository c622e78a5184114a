"""cancel_and_wait stops a task even when its first cancellation is lost (CPython gh-86296)."""

from __future__ import annotations

import asyncio

from quantdesk.platform.bus import MemoryBus
from quantdesk.platform.tasks import cancel_and_wait


async def test_a_task_that_loses_its_first_cancellation_is_still_stopped() -> None:
    cancellations = 0

    async def stubborn() -> None:
        nonlocal cancellations
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:  # what wait_for does on 3.11 when the op completes
                cancellations += 1
                if cancellations > 1:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await cancel_and_wait(task)
    assert task.cancelled()
    assert cancellations == 2


async def test_errors_of_stopping_tasks_are_dropped_and_every_task_is_waited_for() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    finished: list[str] = []

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.01)
            finished.append("slow")

    failing, slow = asyncio.create_task(fails()), asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0.001)
    await cancel_and_wait([failing], slow)
    assert failing.done()
    assert isinstance(failing.exception(), RuntimeError)
    assert finished == ["slow"]


async def test_a_subscription_wait_times_out_with_none_and_delivers_messages() -> None:
    bus = MemoryBus()
    async with bus.subscribe(["c"]) as subscription:
        assert await subscription.get(0.01) is None
        await bus.publish("c", b"x")
        assert await subscription.get(1) == ("c", b"x")
