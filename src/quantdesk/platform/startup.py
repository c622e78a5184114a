"""What start-up is doing: one log line per phase with its duration, and the phases that
``/health/ready`` waits for.

A fresh ``make run`` used to report ready while numba was still to compile the chain's
kernels (20 s on the first chain call) and before the demo ticker had published a quote
(the chain answered 422 "no quote yet"), with nothing in the log to say why.  Now each
phase is logged as it begins and ends (logger ``quantdesk.startup``); a phase begun by a
lifespan and still running keeps ``/health/ready`` at 503 naming it, so a load balancer, a
script or a user polling it is told the truth.

The analytics kernels are loaded in the lifespan itself, before the app accepts a
connection: from numba's on-disk cache that takes a fraction of a second; the first start
after an install compiles them (10-20 s, logged), which ``make run`` and an image build
avoid by running ``quantdesk warm-up`` first.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from quantdesk.platform.context import AppContext
from quantdesk.platform.logging import get_logger

STARTUP_EXTENSION = "startup"

log = get_logger("quantdesk.startup")


class StartupPhases:
    """The app's start-up phases: when each began, which are still running."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._running: dict[str, float] = {}
        self._ready_logged = False

    @property
    def pending(self) -> list[str]:
        """Phases still running that readiness waits for, in the order they began."""
        return list(self._running)

    def begin(self, phase: str, doing: str) -> None:
        self._running[phase] = time.monotonic()
        log.info(f"startup: {doing}", phase=phase)

    def end(self, phase: str, *, error: str | None = None, **fields: Any) -> None:
        """Mark ``phase`` done (or failed: it never blocks readiness for ever) and log it."""
        began = self._running.pop(phase, None)
        seconds = round(time.monotonic() - began, 3) if began is not None else None
        if error is not None:
            log.error("startup: phase failed", phase=phase, seconds=seconds, error=error)
        else:
            log.info("startup: phase done", phase=phase, seconds=seconds, **fields)
        self.log_ready_once()

    def log_ready_once(self) -> None:
        if not self._running and not self._ready_logged:
            self._ready_logged = True
            log.info("startup: ready", seconds=round(time.monotonic() - self.started, 3))


def freeze_startup_heap(full_every: int) -> None:
    """Collect once, then keep what is left (the start-up heap: modules, schemas, the
    instrument master, about a million objects) out of every later collection; and make
    full collections of what comes after rarer (``full_every``: Settings.gc_full_every).

    Python's full collection walks every tracked object; on this heap that is 180-290 ms
    with the event loop stopped, measured in the stream benchmark, long enough to stall
    every WebSocket client and request at once.  Frozen objects are never collected, which
    is what start-up objects need: they live as long as the process.  What a full
    collection still walks is the state of what is alive now, mostly open connections."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, full_every)


def startup_phases(ctx: AppContext) -> StartupPhases:
    found = ctx.extensions.get(STARTUP_EXTENSION)
    if not isinstance(found, StartupPhases):
        found = ctx.extensions[STARTUP_EXTENSION] = StartupPhases()
    return found


@asynccontextmanager
async def analytics_kernels_lifespan(ctx: AppContext) -> AsyncIterator[None]:
    """Compile or load every numba kernel before the app serves (in a worker thread, so
    the lifespans begun before this one, such as the demo ticker's market build, go on)."""
    from quantdesk.analytics.warmup import warm_kernels

    phases = startup_phases(ctx)
    phases.begin("kernels", "loading the analytics kernels (compiled on the first start)")
    try:
        timings = await asyncio.to_thread(warm_kernels)
    except Exception as exc:  # a kernel that fails here fails its own request later, loudly
        phases.end("kernels", error=f"{type(exc).__name__}: {exc}")
    else:
        slowest = timings[0] if timings else None
        phases.end(
            "kernels",
            kernels=len(timings),
            slowest=f"{slowest.name} {slowest.seconds:.2f}s" if slowest else None,
        )
    yield
