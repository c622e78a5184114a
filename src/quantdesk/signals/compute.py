"""Where batch tasks run: a pool in this process, or a Dask distributed cluster.

``QUANTDESK_COMPUTE_SCHEDULER`` empty (the default) runs tasks on a thread pool of
``QUANTDESK_COMPUTE_WORKERS`` threads inside the app: no start-up cost and nothing to
ship, but the Python parts of a task (features, the engine's replay) hold the GIL, so
threads overlap little (docs/benchmarks.md); ``processes`` runs them on a pool of that many
spawned worker processes (real parallelism, a few seconds to start); ``tcp://host:8786``
sends them to that Dask scheduler.  Dask rather than
Ray: it is a pure-Python install from the registry that pickles our plain dataclasses as
they are, its ``LocalCluster`` starts in-process for the tests, and its client is asyncio
native (``asynchronous=True``), so the app's event loop awaits results without a thread.
Workers need quantdesk installed (the task functions are imported by name).

Both run each task once and hand back results in task order, whatever order they finish
in, so a batch gives identical results on either (tested against a real LocalCluster).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")
OnDone = Callable[[int, int], Awaitable[None]]  # (tasks done, tasks in all)


class Compute(Protocol):
    name: str

    async def map(
        self, fn: Callable[[T], R], tasks: Sequence[T], on_done: OnDone | None = None
    ) -> list[R]: ...

    async def aclose(self) -> None: ...


class LocalCompute:
    """A thread pool in this process, or (``processes=True``) a pool of spawned processes."""

    def __init__(self, workers: int, *, processes: bool = False) -> None:
        self.workers = workers
        self.name = "processes" if processes else "local"
        self._pool: Executor
        if processes:
            # spawn, not fork: the app process runs an event loop and threads.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        else:
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="signals")

    async def map(
        self, fn: Callable[[T], R], tasks: Sequence[T], on_done: OnDone | None = None
    ) -> list[R]:
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self._pool, fn, task) for task in tasks]
        for done, finished in enumerate(asyncio.as_completed(futures), start=1):
            await finished
            if on_done is not None:
                await on_done(done, len(futures))
        return [future.result() for future in futures]

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class DaskCompute:
    """Tasks on a Dask distributed scheduler, through an asynchronous client."""

    name = "dask"

    def __init__(self, address: str) -> None:
        self.address = address
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> Any:
        async with self._lock:
            if self._client is None:
                from distributed import Client

                self._client = await Client(  # type: ignore[no-untyped-call]
                    self.address, asynchronous=True, timeout="10s"
                )
            return self._client

    async def map(
        self, fn: Callable[[T], R], tasks: Sequence[T], on_done: OnDone | None = None
    ) -> list[R]:
        from distributed import as_completed

        client = await self._connect()
        futures = client.map(fn, list(tasks), pure=False)
        done = 0
        async for _ in as_completed(futures):  # type: ignore[no-untyped-call]
            done += 1
            if on_done is not None:
                await on_done(done, len(futures))
        results: list[R] = await client.gather(futures)
        return results

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def compute_for(scheduler: str, workers: int) -> Compute:
    if scheduler == "processes":
        return LocalCompute(workers, processes=True)
    if scheduler:
        return DaskCompute(scheduler)
    return LocalCompute(workers)
