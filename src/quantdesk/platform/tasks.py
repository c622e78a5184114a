"""Stopping background tasks: the one way a lifespan cancels what it started.

A single ``task.cancel()`` is not enough on Python 3.11: ``asyncio.wait_for`` (the Redis
client's around every socket operation, for one) swallows a cancellation that arrives just
as the awaited operation completes (CPython gh-86296, fixed in 3.12).  The task then runs on
with its cancellation lost, and a lifespan awaiting it never returns (in CI, app teardowns
on PostgreSQL + Redis hung until pytest-timeout's 180 s).  ``cancel_and_wait`` cancels again
until every task has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

RECANCEL_S = 0.5


async def cancel_and_wait(*tasks: asyncio.Future[Any] | Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` (futures or iterables of them) and return once all have finished.

    Their results and errors are dropped: a stopping task's error is logged where it
    happened, if anywhere, and must not stop the rest of the shutdown.
    """
    everything: set[asyncio.Future[Any]] = set()
    for item in tasks:
        everything.update({item} if isinstance(item, asyncio.Future) else item)
    pending = {task for task in everything if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
    for task in everything:
        if not task.cancelled():
            with contextlib.suppress(Exception):
                task.exception()
