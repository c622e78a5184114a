"""The job runner: takes queued training and backtest jobs and runs them in the background.

A job is queued by the request that creates it (its row committed first) and the runner of
that process is woken after the commit.  Running starts with an atomic claim (``queued ->
running``), so when several replicas are woken, or pick up the queue at start-up, exactly
one runs each job.  The heavy work never runs on the event loop: the tasks go to the
compute backend (:mod:`.compute`); the loop only reads bars, writes progress after each
task and stores the results.  A job whose process dies while running stays ``running``
(nothing re-runs it behind the user's back); submitting it again is the remedy.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from quantdesk.platform.context import AppContext
from quantdesk.platform.exceptions import QuantdeskError
from quantdesk.platform.logging import get_logger
from quantdesk.platform.tasks import cancel_and_wait
from quantdesk.signals import service
from quantdesk.signals.compute import Compute, compute_for
from quantdesk.signals.live import live_signals_lifespan
from quantdesk.signals.repository import JobQueue

log = get_logger("quantdesk.signals.jobs")


class JobRunner:
    def __init__(self, ctx: AppContext, compute: Compute | None = None) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.compute = compute or compute_for(settings.compute_scheduler, settings.compute_workers)
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        # Told of each job's progress after it is stored (the CLI's progress bar).
        self.on_progress: Callable[[uuid.UUID, int, int], None] | None = None

    def wake(self, job_id: uuid.UUID) -> None:
        if job_id not in self._running:
            task = asyncio.create_task(self.run(job_id), name=f"signal-job-{job_id}")
            self._running[job_id] = task
            task.add_done_callback(lambda _t: self._running.pop(job_id, None))

    async def resume(self) -> None:
        """Take up the jobs left queued (by a restart, or by another process's request).

        Run after start-up, not during it: an app must start, and say it is not ready,
        while its database is away (platform/health.py)."""
        try:
            async with self.ctx.database.session() as db:
                queued = await JobQueue(db).queued()
        except Exception as exc:
            log.warning("queued signal jobs not resumed", error=str(exc))
            return
        for job_id in queued:
            self.wake(job_id)

    async def idle(self) -> None:
        """Wait for every job running now (tests, the CLI)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def stop(self) -> None:
        await cancel_and_wait(list(self._running.values()))
        await self.compute.aclose()

    async def _progress(self, job_id: uuid.UUID, done: int, total: int) -> None:
        async with self.ctx.database.session(immediate=True) as db:
            await JobQueue(db).progress(job_id, done, total)
        if self.on_progress is not None:
            self.on_progress(job_id, done, total)

    async def run(self, job_id: uuid.UUID) -> None:
        async with self.ctx.database.session(immediate=True) as db:
            job = await JobQueue(db).claim(job_id)
        if job is None:
            return  # another process has it, or it is no longer queued

        async def progress(done: int, total: int) -> None:
            await self._progress(job_id, done, total)

        try:
            if job.kind == "train":
                result, model_id = await service.run_training(self.ctx, self.compute, job,
                                                              progress)  # fmt: skip
                picture = None
            else:
                result, picture = await service.run_backtest(self.ctx, self.compute, job,
                                                             progress)  # fmt: skip
                model_id = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            detail = (
                exc.detail if isinstance(exc, QuantdeskError) else f"{type(exc).__name__}: {exc}"
            )
            log.warning("signal job failed", job_id=str(job_id), error=detail)
            async with self.ctx.database.session(immediate=True) as db:
                await JobQueue(db).finish(job_id, error=detail[:2000])
            return
        async with self.ctx.database.session(immediate=True) as db:
            await JobQueue(db).finish(job_id, result=result, picture=picture, model_id=model_id)
        log.info("signal job done", job_id=str(job_id), kind=job.kind)


@asynccontextmanager
async def signal_jobs_lifespan(ctx: AppContext) -> AsyncIterator[None]:
    """The job runner, and the live signals (``signals.live``) the stream follows."""
    async with live_signals_lifespan(ctx), _job_runner(ctx):
        yield


@asynccontextmanager
async def _job_runner(ctx: AppContext) -> AsyncIterator[None]:
    if not ctx.settings.signals_jobs:
        yield
        return
    runner = JobRunner(ctx)
    ctx.extensions["signal_jobs"] = runner
    resuming = asyncio.create_task(runner.resume(), name="signal-jobs-resume")
    try:
        yield
    finally:
        ctx.extensions.pop("signal_jobs", None)
        await cancel_and_wait(resuming)
        await runner.stop()
