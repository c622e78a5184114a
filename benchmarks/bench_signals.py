"""Signals: walk-forward training of 50 instruments x 10 years of daily bars, and a year of
1-minute bars backtested through the paper matching engine, in-process and on a 2-worker
Dask ``LocalCluster``.

* Training: one task per instrument (features, 5 purged walk-forward folds, the final fit).
  The reference is scikit-learn's own ``cross_validate`` with ``TimeSeriesSplit`` (no purge,
  no features, no metrics beyond accuracy) of the same pipeline on the same feature
  matrices, run serially: the cost of the fits alone.
* Backtest: 94,500 one-minute bars (252 sessions of 375 minutes) become 378,000 quotes;
  a signal that changes every 30 bars gives ~3,150 market orders.  Figures: quotes and
  fills per second of replay; a grid of 4 such backtests serially and on the cluster.  The
  reference is a vectorised NumPy P&L of the same positions at the next bar's open (no
  orders, no matching, no charges): what the engine's realism costs.
"""

from __future__ import annotations

import asyncio
import os
import time
from decimal import Decimal

import numpy as np

from quantdesk.signals.compute import DaskCompute, LocalCompute
from quantdesk.signals.research.backtest import Contract, PriceBars, backtest_targets
from quantdesk.signals.research.features import Bars, build_features
from quantdesk.signals.research.tasks import TrainTask, train_task
from quantdesk.signals.research.training import TrainSpec, make_labels
from quantdesk.trading.engine.charges import DEFAULT_CHARGES

INSTRUMENTS, DAILY_BARS = 50, 2520
MINUTES = 252 * 375
GRID = 4


def daily(seed: int, n: int = DAILY_BARS) -> Bars:
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.concatenate([[100.0], close[:-1]])
    high, low = np.maximum(open_, close) * 1.004, np.minimum(open_, close) * 0.996
    ts = 1_262_304_000 + 86_400 * np.arange(n)
    return Bars.of(ts, open_, high, low, close, rng.integers(1_000, 5_000, n))


def minute_bars(seed: int = 7) -> PriceBars:
    rng = np.random.default_rng(seed)
    ticks = np.cumsum(rng.integers(-3, 4, MINUTES)) + 20_000  # in 0.05 steps from 1000.00
    close = ticks * 5
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) + 5 * rng.integers(0, 3, MINUTES)
    low = np.minimum(open_, close) - 5 * rng.integers(0, 3, MINUTES)

    def text(values: np.ndarray) -> list[str]:
        return [f"{v // 100}.{v % 100:02d}" for v in values.tolist()]

    ts = 1_735_700_000 + 60 * np.arange(MINUTES)
    return PriceBars.of_text(ts.tolist(), text(open_), text(high), text(low), text(close), 60)


def targets(period: int) -> list[Decimal]:
    return [Decimal(10) if (i // period) % 2 == 0 else Decimal(0) for i in range(MINUTES)]


def backtest_job(period: int) -> tuple[int, float, int]:
    bars = minute_bars()
    result = backtest_targets(
        bars, targets(period), Contract("NSE:BENCH", Decimal("0.05")), capital=Decimal(1_000_000),
        charges=DEFAULT_CHARGES.for_instrument("NSE", "equity", "mis"),
        periods_per_year=252 * 375,
    )  # fmt: skip
    return len(result.fills), result.replay_seconds, result.quotes


def _sklearn_reference(tasks: list[TrainTask]) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import TimeSeriesSplit, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    matrices = []
    for task in tasks:
        X = build_features(task.bars).values
        y = make_labels(task.bars, task.spec).up()
        keep = np.isfinite(X).all(axis=1) & np.isfinite(y)
        matrices.append((X[keep], y[keep]))
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        for X, y in matrices:
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200))
            cross_validate(model, X, y, cv=TimeSeriesSplit(5))
            model.fit(X, y)
    return time.perf_counter() - started


async def _measure() -> dict[str, float]:
    from distributed import LocalCluster

    spec = TrainSpec()
    tasks = [TrainTask(f"NSE:S{k}", daily(k), spec) for k in range(INSTRUMENTS)]
    train_task(tasks[0])  # warm: imports and the indicators' compiled kernels
    figures: dict[str, float] = {}
    started = time.perf_counter()
    for task in tasks:
        train_task(task)
    figures["train_serial"] = time.perf_counter() - started
    local = LocalCompute(2)
    started = time.perf_counter()
    here = await local.map(train_task, tasks)
    figures["train_pool"] = time.perf_counter() - started
    processes = LocalCompute(2, processes=True)
    await processes.map(train_task, [TrainTask(f"W{k}", daily(k, 400), spec) for k in range(4)])
    started = time.perf_counter()
    in_processes = await processes.map(train_task, tasks)
    figures["train_processes"] = time.perf_counter() - started
    assert [o.summary for o in in_processes] == [o.summary for o in here]
    figures["train_reference"] = _sklearn_reference(tasks)

    periods = [30, 31, 32, 33][:GRID]
    started = time.perf_counter()
    fills, replay, quotes = backtest_job(30)
    figures.update(fills=fills, replay=replay, quotes=quotes)
    figures["one_serial"] = time.perf_counter() - started
    bars = minute_bars()
    opens = np.array([float(o) for o in bars.open])
    pos = np.array([float(t) for t in targets(30)])
    started = time.perf_counter()
    held = np.concatenate([[0.0], pos[:-1]])  # decided at a close, held from the next open
    pnl = np.cumsum(held[:-1] * np.diff(opens))
    figures["vector_reference"] = time.perf_counter() - started
    assert pnl.shape[0] == MINUTES - 1
    started = time.perf_counter()
    for period in periods:
        backtest_job(period)
    figures["grid_serial"] = time.perf_counter() - started
    started = time.perf_counter()
    await processes.map(backtest_job, periods)
    figures["grid_processes"] = time.perf_counter() - started
    await processes.aclose()

    started = time.perf_counter()
    async with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        asynchronous=True,
    ) as cluster:
        figures["cluster_start"] = time.perf_counter() - started
        dask = DaskCompute(cluster.scheduler_address)
        try:
            # Warm both workers: imports and the indicators' compiled kernels load once each.
            warm = [TrainTask(f"W{k}", daily(k, 400), spec) for k in range(6)]
            await dask.map(train_task, warm)
            started = time.perf_counter()
            there = await dask.map(train_task, tasks)
            figures["train_dask"] = time.perf_counter() - started
            assert [o.summary for o in there] == [o.summary for o in here]
            started = time.perf_counter()
            (one,) = await dask.map(backtest_job, [30])
            figures["one_dask"] = time.perf_counter() - started
            assert one[0] == fills
            started = time.perf_counter()
            await dask.map(backtest_job, periods)
            figures["grid_dask"] = time.perf_counter() - started
        finally:
            await dask.aclose()
    await local.aclose()
    return figures


def run() -> str:
    load_before = os.getloadavg()[0]
    f = asyncio.run(_measure())
    load_after = os.getloadavg()[0]
    per_instrument = f["train_serial"] / INSTRUMENTS * 1000
    lines = [
        "## Signals: walk-forward training and backtests on the paper engine",
        "",
        "`.venv/bin/python -m benchmarks signals` (benchmarks/bench_signals.py); "
        f"{os.cpu_count()} cores shared with the rest of the machine (load average "
        f"{load_before:.1f} before the run, {load_after:.1f} after"
        + (
            "; with the cores that busy, the parallel rows measure contention as much as speed-up)."
            if max(load_before, load_after) > 1.5
            else ")."
        ),
        "",
        f"Walk-forward training, {INSTRUMENTS} instruments x {DAILY_BARS} daily bars (10 years), "
        "logistic regression, 13 features, 5 purged folds + the final fit, one task each:",
        "",
        "| run | seconds | per instrument |",
        "| --- | ---: | ---: |",
        f"| quantdesk, serial (one thread) | {f['train_serial']:.2f} | {per_instrument:.0f} ms |",
        f"| quantdesk, in-process pool (2 threads) | {f['train_pool']:.2f} | "
        f"{f['train_pool'] / INSTRUMENTS * 1000:.0f} ms |",
        f"| quantdesk, process pool (2 spawned processes) | {f['train_processes']:.2f} | "
        f"{f['train_processes'] / INSTRUMENTS * 1000:.0f} ms |",
        f"| quantdesk, Dask LocalCluster (2 worker processes) | {f['train_dask']:.2f} | "
        f"{f['train_dask'] / INSTRUMENTS * 1000:.0f} ms |",
        f"| reference: scikit-learn `cross_validate` + fit, serial (fits only) | "
        f"{f['train_reference']:.2f} | {f['train_reference'] / INSTRUMENTS * 1000:.0f} ms |",
        "",
        f"The cluster took {f['cluster_start']:.1f} s to start (not counted); its results "
        "equal the in-process run's (asserted).",
        "",
        f"Backtest, {MINUTES:,} one-minute bars (1 year) -> {f['quotes']:,.0f} quotes through "
        f"the matching engine with India's intraday charges: {f['fills']:,.0f} fills in "
        f"{f['replay']:.2f} s = **{f['quotes'] / f['replay']:,.0f} quotes/s, "
        f"{f['fills'] / f['replay']:,.0f} fills/s** (reference: the vectorised NumPy P&L of "
        f"the same positions, no matching, {f['vector_reference'] * 1000:.1f} ms).",
        "",
        "| that backtest, whole task (bars, targets, replay) | seconds |",
        "| --- | ---: |",
        f"| in-process | {f['one_serial']:.2f} |",
        f"| one task on the Dask LocalCluster (2 workers) | {f['one_dask']:.2f} |",
        "",
        "| grid of 4 backtests | seconds |",
        "| --- | ---: |",
        f"| serial, in-process | {f['grid_serial']:.2f} |",
        f"| process pool (2 processes) | {f['grid_processes']:.2f} |",
        f"| Dask LocalCluster (2 workers) | {f['grid_dask']:.2f} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
