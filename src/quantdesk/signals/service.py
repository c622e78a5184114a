"""Signals use cases: queue training and backtests, run them (off the event loop, in a
pool or on Dask), store models and results, serve a model's signal series.

The request path only validates and queues (``submit_*``: one row, committed, then the job
runner is woken); ``run_*`` is the job runner's work: read the bars, hand the pure tasks of
:mod:`.research.tasks` to the compute backend, write what comes back.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.bars.repository import MAX_LIMIT, BarSeries, BarStore
from quantdesk.marketdata.bars.trading_sessions import session_bounds
from quantdesk.marketdata.domain import Exchange, Timeframe, make_key, parse_key
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.instruments.underlyings import spot_candidates
from quantdesk.marketdata.models import InstrumentRow
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import after_commit
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.signals.compute import Compute
from quantdesk.signals.models import SignalJobRow, SignalModelRow
from quantdesk.signals.repository import JobQueue, JobRepository, ModelRepository
from quantdesk.signals.research import artifacts
from quantdesk.signals.research.backtest import (
    CHARGES_FLOOR,
    Contract,
    Execution,
    PriceBars,
    ScheduledLeg,
    day_order_ends,
)
from quantdesk.signals.research.features import Bars
from quantdesk.signals.research.metrics import positions
from quantdesk.signals.research.tasks import (
    BacktestOutcome,
    BacktestTask,
    ScheduleTask,
    TrainOutcome,
    TrainTask,
    backtest_task,
    schedule_task,
    train_task,
)
from quantdesk.signals.research.training import TrainSpec, predict, spec_from_dict
from quantdesk.signals.schemas import BacktestIn, TrainIn
from quantdesk.strategies.repository import SavedStrategyRepository
from quantdesk.trading.engine.charges import DEFAULT_CHARGES, ChargeSchedule, ChargesUnavailable
from quantdesk.trading.margins import margin_rates

Progress = Callable[[int, int], Awaitable[None]]
# Bars per year: 252 sessions; intraday bars of NSE's 375-minute session (the last 30m and
# 1h bars of a session are short, and count as bars).
PERIODS_PER_YEAR = {
    Timeframe.M1: 252.0 * 375, Timeframe.M5: 252.0 * 75, Timeframe.M15: 252.0 * 25,
    Timeframe.M30: 252.0 * 13, Timeframe.H1: 252.0 * 7, Timeframe.D1: 252.0,
    Timeframe.W1: 52.0,
}  # fmt: skip


# --- inputs --------------------------------------------------------------------------------
def canonical(key: str) -> str:
    try:
        return make_key(*parse_key(key))
    except ValueError as exc:
        raise InvalidInput(str(exc), field="instruments") from None


async def instrument_rows(db: AsyncSession, keys: Sequence[str]) -> dict[str, InstrumentRow]:
    wanted = [canonical(k) for k in keys]
    rows = await InstrumentService(db).get_rows(sorted(set(wanted)))
    missing = [k for k in wanted if k not in rows]
    if missing:
        raise NotFound(f"no instrument {missing[0]}", instrument=missing[0])
    return {k: rows[k] for k in wanted}


def contract_of(row: InstrumentRow) -> Contract:
    """The instrument as the backtest's account sees it (margin, expiry, currency)."""
    return Contract(
        f"{row.exchange}:{row.symbol}", row.tick_size, row.lot_size, row.multiplier,
        kind=row.type, underlying=row.underlying, strike=row.strike,
        option_type=row.option_type, expiry=row.expiry, currency=row.currency,
    )  # fmt: skip


def charge_schedule(row: InstrumentRow, product: str) -> ChargeSchedule | None:
    try:
        return DEFAULT_CHARGES.for_instrument(row.exchange, row.type, product)
    except ChargesUnavailable:
        return None


def cost_per_turnover(
    schedule: ChargeSchedule | None, price: Decimal, capital: Decimal, multiplier: Decimal,
    day: dt.date,
) -> float:  # fmt: skip
    """The charges of buying and selling ``capital`` once, per unit of notional traded."""
    if schedule is None or price <= 0:
        return 0.0
    quantity = (capital / (price * multiplier)).to_integral_value(rounding=ROUND_FLOOR)
    if quantity < 1:
        return 0.0
    value = price * quantity * multiplier
    total = sum(
        (schedule.fill(side=side, price=price, quantity=quantity, day=max(day, CHARGES_FLOOR),
                       multiplier=multiplier).total for side in ("buy", "sell")),
        Decimal(0),
    )  # fmt: skip
    return float(total / (2 * value))


def _check_window(start: dt.datetime | None, end: dt.datetime | None) -> None:
    for bound in (start, end):
        if bound is not None and bound.utcoffset() is None:
            raise InvalidInput("start/end need a timezone (Z or an offset)")
    if start is not None and end is not None and start >= end:
        raise InvalidInput("start must be before end", field="start")


def _wake(ctx: AppContext, db: AsyncSession, job_id: uuid.UUID) -> None:
    async def wake() -> None:
        runner = ctx.extensions.get("signal_jobs")
        if runner is not None:
            runner.wake(job_id)

    after_commit(db, wake)


# --- queueing ------------------------------------------------------------------------------
async def submit_training(
    ctx: AppContext, db: AsyncSession, owner_id: uuid.UUID, body: TrainIn
) -> SignalJobRow:
    limit = ctx.settings.signals_max_instruments
    if len(body.instruments) > limit:
        raise InvalidInput(f"at most {limit} instruments per job", field="instruments")
    _check_window(body.start, body.end)
    rows = await instrument_rows(db, body.instruments)
    try:
        TrainSpec(**_spec_values(body, 0.0, 252.0))
    except (ValueError, TypeError) as exc:
        raise InvalidInput(str(exc)) from None
    params = body.model_dump(mode="json")
    params["instruments"] = list(rows)
    job = SignalJobRow(owner_id=owner_id, kind="train", params=params, total=len(rows))
    db.add(job)
    await db.flush()
    _wake(ctx, db, job.id)
    return job


async def submit_backtest(
    ctx: AppContext, db: AsyncSession, owner_id: uuid.UUID, body: BacktestIn
) -> SignalJobRow:
    _check_window(body.start, body.end)
    if body.strategy_id is not None:
        strategy = await SavedStrategyRepository(db).get_for_owner(owner_id, body.strategy_id)
        if strategy is None:
            raise NotFound("no such strategy", field="strategy_id")
        job = SignalJobRow(owner_id=owner_id, kind="backtest", total=1,
                           params=body.model_dump(mode="json"))  # fmt: skip
        db.add(job)
        await db.flush()
        _wake(ctx, db, job.id)
        return job
    model = await ModelRepository(db).get_for_owner(owner_id, body.model_id)
    if model is None:
        raise NotFound("no such model", field="model_id")
    keys = body.instruments or [model.instrument]
    if len(keys) * len(body.thresholds or [0]) > ctx.settings.signals_max_instruments:
        raise InvalidInput("too many backtests in one job", field="instruments")
    rows = await instrument_rows(db, keys)
    params = body.model_dump(mode="json")
    params["instruments"] = list(rows)
    job = SignalJobRow(owner_id=owner_id, kind="backtest", params=params, model_id=model.id,
                       total=len(rows) * len(body.thresholds or [0]))  # fmt: skip
    db.add(job)
    await db.flush()
    _wake(ctx, db, job.id)
    return job


def _spec_values(body: TrainIn, cost: float, periods: float) -> dict[str, Any]:
    return {
        "model": body.model, "params": dict(body.params), "features": tuple(body.features),
        "label": body.label, "horizon": body.horizon, "pt": body.pt, "sl": body.sl,
        "scheme": body.scheme, "window": body.window, "n_splits": body.n_splits,
        "train_size": body.train_size, "gap": body.gap, "embargo_pct": body.embargo_pct,
        "threshold": body.threshold, "allow_short": body.allow_short,
        "cost_per_turnover": cost, "periods_per_year": periods, "seed": body.seed,
    }  # fmt: skip


# --- running -------------------------------------------------------------------------------
async def load_bars(
    db: AsyncSession, key: str, timeframe: Timeframe, start: dt.datetime | None,
    end: dt.datetime | None, limit: int,
) -> BarSeries:  # fmt: skip
    series = await BarStore(db).series(key, timeframe, start=start, end=end,
                                       limit=min(limit, MAX_LIMIT))  # fmt: skip
    if len(series) == 0:
        raise InvalidInput(f"no {timeframe.value} bars of {key} in the window")
    return series


def float_bars(series: BarSeries) -> Bars:
    arrays = series.arrays()
    return Bars(arrays.ts.astype(np.int64), arrays.open, arrays.high, arrays.low, arrays.close,
                arrays.volume)  # fmt: skip


def price_bars(series: BarSeries, timeframe: Timeframe) -> PriceBars:
    seconds = int((timeframe.duration if timeframe is not Timeframe.D1 else
                   dt.timedelta(days=1)).total_seconds())  # fmt: skip
    return PriceBars.of_text(series.ts.tolist(), series.open, series.high, series.low,
                             series.close, seconds)  # fmt: skip


def day_ends_of(row: InstrumentRow, bars: PriceBars) -> tuple[int, ...] | None:
    """When a DAY order placed at each bar's end expires, on the instrument's exchange
    sessions (paper trading's calendar); None for an exchange without one."""
    if len(bars) == 0:
        return None
    try:
        exchange = Exchange(row.exchange)
    except ValueError:
        return None
    # Ten days past the last bar: a close after it, across a long holiday.
    last = bars.ts[-1] + bars.seconds + 10 * 86_400
    sessions = session_bounds(exchange, bars.ts[0], last)
    return tuple(day_order_ends(bars, sessions.closes.tolist()))


def _when(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


async def run_training(
    ctx: AppContext, compute: Compute, job: SignalJobRow, progress: Progress
) -> tuple[dict[str, Any], uuid.UUID | None]:
    body = TrainIn.model_validate(job.params)
    timeframe = body.timeframe
    periods = PERIODS_PER_YEAR[timeframe]
    tasks = []
    async with ctx.database.session() as db:
        rows = await instrument_rows(db, body.instruments)
        for key, row in rows.items():
            series = await load_bars(db, key, timeframe, body.start, body.end,
                                     ctx.settings.signals_max_bars)  # fmt: skip
            last = Decimal(series.close[-1])
            cost = cost_per_turnover(charge_schedule(row, body.product), last, body.capital,
                                     row.multiplier, _when(int(series.ts[-1])).date())  # fmt: skip
            spec = TrainSpec(**_spec_values(body, cost, periods))
            tasks.append(TrainTask(key, float_bars(series), spec))
    outcomes: list[TrainOutcome] = await compute.map(train_task, tasks, progress)
    stored = []
    async with ctx.database.session(immediate=True) as db:
        models = ModelRepository(db)
        for outcome in outcomes:
            summary = outcome.summary
            version = await models.next_version(job.owner_id, body.name, outcome.instrument)
            stored_row = SignalModelRow(
                owner_id=job.owner_id, name=body.name, version=version,
                instrument=outcome.instrument, timeframe=timeframe.value, kind=body.model,
                spec=summary["spec"], features=list(body.features), metrics=summary["metrics"],
                folds=summary["folds"], window_start=_when(summary["window"][0]),
                window_end=_when(summary["window"][1]), rows=summary["rows"],
                data_hash=summary["data_hash"], artifact_format=artifacts.FORMAT,
                artifact_digest=outcome.digest, artifact=outcome.artifact,
            )  # fmt: skip
            db.add(stored_row)
            await db.flush()
            stored.append({"instrument": outcome.instrument, "model_id": str(stored_row.id),
                           "version": stored_row.version,
                           "metrics": summary["metrics"]})  # fmt: skip
    first = uuid.UUID(stored[0]["model_id"]) if stored else None
    return {"models": stored, "compute": compute.name}, first


async def run_backtest(
    ctx: AppContext, compute: Compute, job: SignalJobRow, progress: Progress
) -> tuple[dict[str, Any], str | None]:
    body = BacktestIn.model_validate(job.params)
    if body.strategy_id is not None:
        return await _run_schedule(ctx, compute, job, body, progress)
    async with ctx.database.session() as db:
        model = await ModelRepository(db).get_for_owner(job.owner_id, body.model_id)
        if model is None:
            raise NotFound("the model was deleted")
        spec = spec_from_dict(model.spec)
        timeframe = Timeframe(model.timeframe)
        rows = await instrument_rows(db, body.instruments or [model.instrument])
        # Out of sample by default: the model kept was fitted on every bar of its window.
        start = body.start or model.window_end + dt.timedelta(seconds=1)
        trained_until = int(model.window_end.timestamp())
        tasks = []
        for key, row in rows.items():
            warm = await _warmup_start(db, key, timeframe, start)
            series = await load_bars(db, key, timeframe, warm, body.end,
                                     ctx.settings.signals_max_bars)  # fmt: skip
            begin = int(np.searchsorted(series.ts, int(start.timestamp())))
            if begin >= len(series):
                raise InvalidInput(
                    f"no {timeframe.value} bars of {key} after the model's training window "
                    f"(it ends {model.window_end.isoformat()}): train on an earlier window, "
                    "or give start (a run over trained bars is flagged in_sample_bars)"
                )
            prices = price_bars(series, timeframe)
            execution = Execution(body.order_type, body.order_offset_bps)
            day_ends = None if body.order_type == "market" else day_ends_of(row, prices)
            for threshold in body.thresholds or [spec.threshold]:
                label = key if not body.thresholds else f"{key} threshold {threshold:g}"
                tasks.append(BacktestTask(
                    label=label,
                    contract=contract_of(row),
                    bars=prices, float_bars=float_bars(series),
                    artifact=model.artifact, digest=model.artifact_digest,
                    features=spec.features, quantity=body.quantity, capital=body.capital,
                    threshold=threshold,
                    allow_short=spec.allow_short if body.allow_short is None else body.allow_short,
                    fill_model=body.fill_model, half_spread_ticks=body.half_spread_ticks,
                    charges=charge_schedule(row, body.product) if body.charges else None,
                    periods_per_year=PERIODS_PER_YEAR[timeframe], start_index=begin,
                    margin_rates=margin_rates(ctx.settings),
                    price_band_pct=ctx.settings.trading_price_band_pct,
                    execution=execution, day_ends=day_ends,
                ))  # fmt: skip
    outcomes: list[BacktestOutcome] = await compute.map(backtest_task, tasks, progress)
    runs = [
        o.result | {
            "fills_per_second": o.fills_per_second,
            # Bars the model was fitted on: their signal is in sample, not a forecast.
            "in_sample_bars": sum(1 for t in o.result["t"] if t <= trained_until),
        }
        for o in outcomes
    ]  # fmt: skip
    return {"runs": runs, "compute": compute.name}, outcomes[0].svg if outcomes else None


async def _run_schedule(
    ctx: AppContext, compute: Compute, job: SignalJobRow, body: BacktestIn, progress: Progress
) -> tuple[dict[str, Any], str | None]:
    """A saved strategy's legs held through ``[start, end)`` on the engine, daily bars."""
    assert body.strategy_id is not None  # noqa: S101 - checked by the caller
    async with ctx.database.session() as db:
        repo = SavedStrategyRepository(db)
        strategy = await repo.get_for_owner(job.owner_id, body.strategy_id)
        if strategy is None:
            raise NotFound("the strategy was deleted")
        saved_legs = (await repo.legs([strategy.id]))[strategy.id]
        rows = await instrument_rows(db, [leg.instrument for leg in saved_legs])
        legs = []
        for leg in saved_legs:
            row = rows[leg.instrument]
            series = await load_bars(db, leg.instrument, Timeframe.D1, body.start, body.end,
                                     ctx.settings.signals_max_bars)  # fmt: skip
            prices = price_bars(series, Timeframe.D1)
            legs.append(ScheduledLeg(
                contract_of(row), prices, leg.quantity * row.lot_size,
                charge_schedule(row, body.product) if body.charges else None,
                day_ends=None if body.order_type == "market" else day_ends_of(row, prices),
            ))  # fmt: skip
        spots = await _spot_bars(db, list(rows.values()), body.start, body.end,
                                 ctx.settings.signals_max_bars)  # fmt: skip
    task = ScheduleTask(strategy.name, tuple(legs), body.capital, body.fill_model,
                        body.half_spread_ticks, PERIODS_PER_YEAR[Timeframe.D1],
                        spots=tuple(spots.items()), margin_rates=margin_rates(ctx.settings),
                        price_band_pct=ctx.settings.trading_price_band_pct,
                        execution=Execution(body.order_type, body.order_offset_bps))  # fmt: skip
    (outcome,) = await compute.map(schedule_task, [task], progress)
    run = outcome.result | {"fills_per_second": outcome.fills_per_second}
    return {"runs": [run], "compute": compute.name}, outcome.svg


async def _spot_bars(
    db: AsyncSession, rows: Sequence[InstrumentRow], start: dt.datetime | None,
    end: dt.datetime | None, limit: int,
) -> dict[str, PriceBars]:  # fmt: skip
    """The daily bars of each F&O leg's underlying, by its symbol: an option's margin marks
    its spot, and an expiry settles at the spot's close (found as paper trading finds it,
    lifecycle._settlement_prices: the first candidate spot the master lists)."""
    out: dict[str, PriceBars] = {}
    for row in rows:
        if row.underlying is None or row.underlying in out or row.type not in ("future", "option"):
            continue
        try:
            candidates = spot_candidates(row.underlying, Exchange(row.exchange))
        except ValueError:
            continue
        known = await InstrumentService(db).get_rows(candidates)
        for key in candidates:
            if key not in known:
                continue
            series = await BarStore(db).series(key, Timeframe.D1, start=start, end=end,
                                               limit=min(limit, MAX_LIMIT))  # fmt: skip
            if len(series):
                out[row.underlying] = price_bars(series, Timeframe.D1)
                break
    return out


WARMUP_BARS = 60  # the longest feature window (50) and then some


async def _warmup_start(
    db: AsyncSession, key: str, timeframe: Timeframe, start: dt.datetime | None
) -> dt.datetime | None:
    """Where to read from so that features are warm at ``start``."""
    if start is None:
        return None
    before = await BarStore(db).series(key, timeframe, end=start, limit=WARMUP_BARS)
    return _when(int(before.ts[0])) if len(before) else start


# --- serving -------------------------------------------------------------------------------
async def find_model(
    db: AsyncSession, owner_id: uuid.UUID, ref: str, instrument: str | None = None
) -> SignalModelRow:
    """A model by id, or by name: its latest version on ``instrument`` (else anywhere)."""
    models = ModelRepository(db)
    try:
        found = await models.get_for_owner(owner_id, uuid.UUID(ref))
    except ValueError:
        found = await models.latest_named(owner_id, ref, instrument)
    if found is None:
        raise NotFound(f"no model {ref}")
    return found


def series_values(
    model: SignalModelRow, bars: Bars, skip: int
) -> tuple[list[int], dict[str, list[float | None]]]:
    from threadpoolctl import threadpool_limits

    loaded = artifacts.load_model(model.artifact, model.artifact_digest)
    spec = spec_from_dict(model.spec)
    with threadpool_limits(limits=1):
        probability = predict(loaded, bars, model.features)[skip:]
    known = np.isfinite(probability)
    signal = positions(np.nan_to_num(probability, nan=0.5), spec.threshold, spec.allow_short)

    def column(values: np.ndarray[Any, Any]) -> list[float | None]:
        return [float(v) if ok else None for v, ok in zip(values.tolist(), known, strict=True)]

    return bars.ts[skip:].tolist(), {"probability": column(probability), "signal": column(signal)}


async def signal_inputs(
    db: AsyncSession, owner_id: uuid.UUID, ref: str, instrument: str, timeframe: Timeframe | None,
    start: dt.datetime | None, end: dt.datetime | None, limit: int,
) -> tuple[SignalModelRow, str, Timeframe, Bars | None, int]:  # fmt: skip
    """The model, the bars to predict over (warm-up bars first) and how many to skip; run
    :func:`series_values` on them off the event loop."""
    key = canonical(instrument)
    model = await find_model(db, owner_id, ref, key)
    chosen = timeframe or Timeframe(model.timeframe)
    await instrument_rows(db, [key])
    main = await BarStore(db).series(key, chosen, start=start, end=end, limit=limit)
    if len(main) == 0:
        return model, key, chosen, None, 0
    before = await BarStore(db).series(key, chosen, end=_when(int(main.ts[0])),
                                       limit=WARMUP_BARS)  # fmt: skip
    bars = float_bars(before) if len(before) else None
    joined = float_bars(main) if bars is None else Bars(*(
        np.concatenate([a, b]) for a, b in zip(bars.columns(), float_bars(main).columns(),
                                               strict=True)
    ))  # fmt: skip
    return model, key, chosen, joined, len(before)


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


__all__ = [
    "JobQueue",
    "JobRepository",
    "ModelRepository",
    "find_model",
    "run_backtest",
    "run_training",
    "signal_inputs",
    "submit_backtest",
    "submit_training",
]
