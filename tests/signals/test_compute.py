"""Batch tasks give identical results in-process (threads, or spawned processes) and on a
real Dask cluster (a ``LocalCluster`` of two workers started in the test, over TCP as a
remote one is)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import numpy as np
import pytest
from distributed import LocalCluster

from quantdesk.signals.compute import DaskCompute, LocalCompute, compute_for
from quantdesk.signals.research import artifacts
from quantdesk.signals.research.backtest import Contract, PriceBars
from quantdesk.signals.research.tasks import (
    BacktestTask,
    TrainTask,
    backtest_task,
    train_task,
)
from quantdesk.signals.research.training import TrainSpec, predict
from tests.signals.synthetic import random_walk

SPEC = TrainSpec(n_splits=3, seed=1)


def _tasks() -> list[TrainTask]:
    return [TrainTask(f"SIM:S{k}", random_walk(400, seed=k), SPEC) for k in range(3)]


@pytest.fixture
async def cluster() -> AsyncIterator[str]:
    async with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
        dashboard_address=None, asynchronous=True,
    ) as local:  # fmt: skip
        yield local.scheduler_address


async def test_results_are_identical_in_process_and_on_dask(cluster: str) -> None:
    assert cluster.startswith("tcp://")
    tasks = _tasks()
    progress: list[tuple[int, int]] = []
    local = LocalCompute(2)
    dask = compute_for(cluster, 2)
    assert isinstance(dask, DaskCompute)
    try:

        async def record(done: int, total: int) -> None:
            progress.append((done, total))

        here = await local.map(train_task, tasks, record)
        there = await dask.map(train_task, tasks)
        assert [o.instrument for o in there] == ["SIM:S0", "SIM:S1", "SIM:S2"]
        assert [o.summary for o in there] == [o.summary for o in here]
        assert progress[-1] == (3, 3)
        # The models trained there predict exactly what the ones trained here do.
        bars = tasks[0].bars
        one = artifacts.load_model(here[0].artifact, here[0].digest)
        two = artifacts.load_model(there[0].artifact, there[0].digest)
        np.testing.assert_array_equal(predict(one, bars, SPEC.features),
                                      predict(two, bars, SPEC.features))  # fmt: skip
        closes = [format(Decimal(str(round(c, 2))), "f") for c in bars.close]
        priced = PriceBars.of_text(bars.ts.tolist(), closes, closes, closes, closes, 86_400)
        backtest = BacktestTask(
            "SIM:S0", Contract("SIM:S0", Decimal("0.01")), priced, bars, here[0].artifact,
            here[0].digest, SPEC.features, Decimal(10), Decimal(100_000),
        )  # fmt: skip
        (a,), (b,) = (
            await local.map(backtest_task, [backtest]),
            await dask.map(backtest_task, [backtest]),
        )
        assert a.result == b.result
        assert a.svg == b.svg
        assert a.fills > 0
        # QUANTDESK_COMPUTE_SCHEDULER=processes: a pool of spawned processes, same answer.
        processes = compute_for("processes", 1)
        try:
            (c,) = await processes.map(backtest_task, [backtest])
        finally:
            await processes.aclose()
        assert processes.name == "processes"
        assert c.result == a.result
    finally:
        await local.aclose()
        await dask.aclose()
