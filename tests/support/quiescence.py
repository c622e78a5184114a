"""After an app's lifespan has ended, nothing of it may still run on the event loop.

pytest-asyncio closes each test's loop after its fixtures: it cancels the tasks left, then
finishes async generators and joins the default executor's threads, each without a time
limit.  Something left running there hangs the test's teardown until pytest-timeout ends
the whole worker, with the stacks of threads only (CI, twice, in the demo simulator's app
test).  ``assert_loop_quiesces`` does the same within bounds, inside the test, and fails
with what was left (tasks and their stacks, every thread's stack).
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
    left = [task for task in asyncio.all_tasks() if task is not me]
    described = [f"{task.get_name()}: {task.get_stack(limit=5)}" for task in left]
    if left:  # cancelled here (again and again, as a lifespan would), so teardown cannot hang
        async with asyncio.timeout(QUIESCE_S):
            await cancel_and_wait(left)
    assert not described, f"tasks still running after the lifespan: {described}"
    try:
        async with asyncio.timeout(QUIESCE_S):
            await loop.shutdown_asyncgens()
            await loop.shutdown_default_executor()
    except TimeoutError:
        pytest.fail(f"the event loop did not quiesce in {QUIESCE_S:.0f} s:\n{_thread_stacks()}")
