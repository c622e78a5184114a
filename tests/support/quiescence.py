"""After an app's lifespan has ended, nothing of it may still run on the event loop.

pytest-asyncio closes each test's loop after its fixtures: it cancels the tasks left, then
finishes async generators and joins the default executor's threads, each without a time
limit.  Something left running there hangs the test's teardown until pytest-timeout ends
the whole worker, with the stacks of threads only (CI, twice, in the demo simulator's app
test).  ``assert_loop_quiesces`` does the same within bounds, inside the test, and fails
with what would not end (tasks and their stacks, every thread's stack).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import traceback

import pytest

from quantdesk.platform.tasks import cancel_and_wait

QUIESCE_S = 60.0


def _thread_stacks() -> str:
    frames = sys._current_frames()  # a diagnostic dump, as faulthandler gives
    lines = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "?"
        lines.append(f"--- thread {thread.name}:\n{stack}")
    return "\n".join(lines)


async def assert_loop_quiesces() -> None:
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    # A task may be left that ends when cancelled, as the loop's teardown will cancel it:
    # SQLAlchemy's graceful close of an aiosqlite connection it invalidated, for one.  One
    # that does not end is what would hang the teardown.
    left = [task for task in asyncio.all_tasks() if task is not me]
    try:
        async with asyncio.timeout(QUIESCE_S):
            await cancel_and_wait(left)
    except TimeoutError:
        stuck = [f"{t.get_name()}: {t.get_stack(limit=5)}" for t in left if not t.done()]
        pytest.fail(f"tasks ignore cancellation after the lifespan: {stuck}\n{_thread_stacks()}")
    try:
        async with asyncio.timeout(QUIESCE_S):
            await loop.shutdown_asyncgens()
            await loop.shutdown_default_executor()
    except TimeoutError:
        pytest.fail(f"the event loop did not quiesce in {QUIESCE_S:.0f} s:\n{_thread_stacks()}")
