"""The independent tasks batch jobs are made of: one instrument's walk-forward training, one
backtest.  Plain picklable dataclasses in and out, and module-level functions, so the same
task runs in a thread, a process pool or on a Dask worker and gives the same result."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from quantdesk.signals.research import artifacts
from quantdesk.signals.research.account import PAPER_MARGIN_RATES, PAPER_PRICE_BAND_PCT
from quantdesk.signals.research.backtest import (
    MARKET_ORDERS,
    BacktestResult,
    Contract,
    Execution,
    PriceBars,
    ScheduledLeg,
    backtest_schedule,
    backtest_targets,
    targets_from_probability,
)
from quantdesk.signals.research.features import Bars
from quantdesk.signals.research.tearsheet import tearsheet_svg
from quantdesk.signals.research.training import TrainSpec, predict, train_walk_forward
from quantdesk.trading.engine.charges import ChargeSchedule
from quantdesk.trading.engine.fill_models import fill_model_from_name
from quantdesk.trading.engine.margin import MarginRates
from quantdesk.trading.engine.positions import tidy


@dataclass(frozen=True, slots=True)
class TrainTask:
    instrument: str
    bars: Bars
    spec: TrainSpec


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    instrument: str
    summary: dict[str, Any]
    artifact: bytes
    digest: str


def train_task(task: TrainTask) -> TrainOutcome:
    result = train_walk_forward(task.bars, task.spec)
    blob, digest = artifacts.dump_model(result.model)
    return TrainOutcome(task.instrument, result.summary(), blob, digest)


@dataclass(frozen=True, slots=True)
class BacktestTask:
    label: str  # what this run is in its batch (instrument, parameters)
    contract: Contract
    bars: PriceBars
    float_bars: Bars
    artifact: bytes
    digest: str
    features: tuple[str, ...]
    quantity: Decimal
    capital: Decimal
    threshold: float = 0.5
    allow_short: bool = False
    fill_model: str = "best_price"
    half_spread_ticks: int = 0
    charges: ChargeSchedule | None = None
    periods_per_year: float = 252.0
    start_index: int = 0  # the first bar traded (earlier bars only warm the features up)
    margin_rates: MarginRates = PAPER_MARGIN_RATES  # the settings' (trading.margins)
    price_band_pct: Decimal = PAPER_PRICE_BAND_PCT
    execution: Execution = MARKET_ORDERS
    day_ends: tuple[int, ...] | None = None  # per bar of ``bars``: a DAY order's expiry


@dataclass(frozen=True, slots=True)
class BacktestOutcome:
    label: str
    result: dict[str, Any]
    svg: str
    fills_per_second: float
    fills: int


def _text(value: Decimal) -> str:
    return format(tidy(value), "f")


def _body(label: str, result: BacktestResult) -> dict[str, Any]:
    return {
        "label": label,
        "measures": result.measures,
        "t": result.ts,
        "equity": [_text(e) for e in result.equity],
        "position": [_text(p) for p in result.position],
        "fills": [
            {"order_id": f.order_id, "side": f.side, "quantity": _text(f.quantity),
             "price": _text(f.price), "liquidity": f.liquidity, "ts": f.ts.isoformat(),
             "charges": _text(f.charges), "realised": _text(f.realised)}
            for f in result.fills
        ],
        "trades": [
            {key: (_text(v) if isinstance(v, Decimal) else v.isoformat()
                   if hasattr(v, "isoformat") else v) for key, v in trade.items()}
            for trade in result.trades
        ],
        "quotes": result.quotes,
        "final_equity": _text(result.equity[-1]) if result.equity else None,
        "cash": [_text(c) for c in result.cash],
        "margin": [_text(m) for m in result.margin],
        "rejections": [
            {"ts": r.ts.isoformat(), "instrument": r.key, "side": r.side,
             "quantity": _text(r.quantity), "code": r.code, "detail": r.detail}
            for r in result.rejections
        ],
        "settlements": [
            {"ts": s.ts.isoformat(), "instrument": s.key, "quantity": _text(s.quantity),
             "price": _text(s.price), "underlying_price": _text(s.underlying_price),
             "cash": _text(s.cash), "realised": _text(s.realised), "charges": _text(s.charges),
             "outcome": s.outcome}
            for s in result.settlements
        ],
        "account": {key: (_text(v) if isinstance(v, Decimal) else v)
                    for key, v in result.summary().items()},
    }  # fmt: skip


def backtest_task(task: BacktestTask) -> BacktestOutcome:
    from threadpoolctl import threadpool_limits

    model = artifacts.load_model(task.artifact, task.digest)
    with threadpool_limits(limits=1):
        probability = predict(model, task.float_bars, task.features)
    begin = task.start_index
    probability = probability[begin:]
    bars = PriceBars(
        task.bars.ts[begin:], task.bars.open[begin:], task.bars.high[begin:],
        task.bars.low[begin:], task.bars.close[begin:], task.bars.seconds,
    )  # fmt: skip
    targets = targets_from_probability(
        probability.tolist(), task.quantity, threshold=task.threshold,
        allow_short=task.allow_short,
    )  # fmt: skip
    result = backtest_targets(
        bars, targets, task.contract, capital=task.capital,
        fill_model=fill_model_from_name(task.fill_model), charges=task.charges,
        half_spread_ticks=task.half_spread_ticks, periods_per_year=task.periods_per_year,
        margin_rates=task.margin_rates, price_band_pct=task.price_band_pct,
        execution=task.execution,
        day_ends=None if task.day_ends is None else task.day_ends[begin:],
    )  # fmt: skip
    entries = []
    for before, after, ts in zip([Decimal(0), *result.position], result.position[1:],
                                 result.ts, strict=False):  # fmt: skip
        if after != before:
            entries.append((ts, "buy" if after > before else "sell"))
    svg = tearsheet_svg(
        f"{task.label}: backtest on the paper engine", result.ts,
        [float(e) for e in result.equity], entries=entries, measures=result.measures,
    )  # fmt: skip
    body = _body(task.label, result) | {
        "signal": [None if not math.isfinite(p) else float(p) for p in probability.tolist()],
    }
    return BacktestOutcome(task.label, body, svg, result.fills_per_second, len(result.fills))


def nan_free(values: np.ndarray[Any, Any]) -> list[float | None]:
    return [None if not math.isfinite(v) else float(v) for v in values.tolist()]


@dataclass(frozen=True, slots=True)
class ScheduleTask:
    label: str
    legs: tuple[ScheduledLeg, ...]
    capital: Decimal
    fill_model: str = "best_price"
    half_spread_ticks: int = 0
    periods_per_year: float = 252.0
    spots: tuple[tuple[str, PriceBars], ...] = ()  # the underlyings' bars, by symbol
    margin_rates: MarginRates = PAPER_MARGIN_RATES
    price_band_pct: Decimal = PAPER_PRICE_BAND_PCT
    execution: Execution = MARKET_ORDERS


def schedule_task(task: ScheduleTask) -> BacktestOutcome:
    result = backtest_schedule(
        task.legs, capital=task.capital, fill_model=fill_model_from_name(task.fill_model),
        half_spread_ticks=task.half_spread_ticks, periods_per_year=task.periods_per_year,
        spots=dict(task.spots), margin_rates=task.margin_rates,
        price_band_pct=task.price_band_pct, execution=task.execution,
    )  # fmt: skip
    entries = [(f.ts.timestamp(), f.side) for f in result.fills]
    marks = []
    for at, side in entries:  # a fill's marker on the bar it happened in
        bar = max((t for t in result.ts if t <= at), default=None)
        if bar is not None:
            marks.append((bar, side))
    svg = tearsheet_svg(
        f"{task.label}: the saved strategy held on the paper engine", result.ts,
        [float(e) for e in result.equity], entries=marks, measures=result.measures,
    )  # fmt: skip
    body = _body(task.label, result)
    return BacktestOutcome(task.label, body, svg, result.fills_per_second, len(result.fills))
