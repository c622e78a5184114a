"""Daily value series and returns: TWR, XIRR, Modified Dietz, ROAI, drawdown, benchmarks.

The series is built in NumPy float64 (as analytics are): quantities per instrument and day
from the book's deltas (cumulative sums), closes carried forward over calendar days, FX to
the portfolio's currency likewise.  Money that is reported goes back to decimals at a stated
number of places in ``platform.decimals``' one way.

Conventions (``docs/portfolios.md``):

* The securities are the portfolio measured: an external flow is money spent on them
  (buys, fees, buy-to-cover, securities transferred in) or paid out by them (sales,
  dividends, interest, securities transferred out).  Deposits and withdrawals only move
  cash, which is reported, not measured.
* TWR is linked daily, with Portfolio Performance's convention: inflows at the start of
  the day, outflows at its end, ``r_d = (MVE_d + out_d) / (MVE_{d-1} + in_d) - 1``
  (help.portfolio-performance.info, "Time-Weighted Rate of Return").  A day whose starting
  capital is not positive (nothing held, or a net short book) adds no return.
* XIRR: the investor's cash flows (flows in negative, out positive), the value at the
  start of the range as an investment on its first day and the value at its end as a
  final payment; actual/365 (as ``pyxirr.xirr`` and Excel's XIRR); SciPy's ``brentq``.
* Modified Dietz, the same timing: an inflow on day d weighs (T - t)/T with t its start
  (d - start), an outflow with t its end (d - start + 1); T the period's days.
* ROAI, as Ghostfolio defines it: net performance over the time-weighted average
  investment, the cost basis of what is held averaged over the days of the range from the
  first day anything is held.
* Annualised figures (where the range is longer than 365 days): ``(1 + r)^(365/days) - 1``.
* The currency effect, the standard local / currency decomposition of a holding's return
  (Bacon, *Practical Portfolio Performance Measurement and Attribution*, 2nd ed., ch. 7:
  ``1 + r = (1 + r_local)(1 + c)``), day by day: the asset's part of a day's gain is its
  local gain at the previous day's rate, the currency's the rest,
  ``(local value - local net inflow) x (rate_d - rate_{d-1})``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

from quantdesk.portfolios.accounting.lots import Effect
from quantdesk.portfolios.accounting.types import ZERO

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    key: str
    multiplier: float = 1.0
    is_future: bool = False
    currency: str = ""


@dataclass(frozen=True, slots=True)
class Observations:
    """A step series: ``values[k]`` holds from ``days[k]`` (date ordinals, ascending)."""

    days: IntArray
    values: FloatArray

    @classmethod
    def of(cls, points: Mapping[dt.date, float]) -> Observations:
        ordered = sorted(points.items())
        return cls(
            np.array([d.toordinal() for d, _ in ordered], dtype=np.int64),
            np.array([v for _, v in ordered], dtype=np.float64),
        )

    def on(self, days: IntArray) -> FloatArray:
        """The value in force on each of ``days`` (before the first: the first; none: NaN)."""
        if len(self.days) == 0:
            return np.full(len(days), np.nan)
        index = np.searchsorted(self.days, days, side="right") - 1
        found: FloatArray = self.values[np.clip(index, 0, None)]
        return found


@dataclass(frozen=True, slots=True)
class DailySeries:
    """One row per calendar day from the first transaction to ``end``."""

    days: IntArray  # date ordinals
    value: FloatArray  # market value of the securities, end of day
    inflow: FloatArray
    outflow: FloatArray
    investment: FloatArray  # cost basis of what is held, end of day
    returns: FloatArray  # the day's TWR
    instruments: tuple[str, ...]
    holding_values: FloatArray  # (days, instruments)
    holding_flows: FloatArray  # (days, instruments)
    # The part of each day's gain that is the FX move on what was held in other currencies.
    fx_gain: FloatArray

    def __len__(self) -> int:
        return int(self.days.shape[0])

    @property
    def net_contributions(self) -> FloatArray:
        return np.cumsum(self.inflow - self.outflow)

    @property
    def cumulative_twr(self) -> FloatArray:
        growth = np.cumprod(1.0 + self.returns)
        return np.asarray(growth - 1.0, dtype=np.float64)

    @property
    def drawdown(self) -> FloatArray:
        index = np.cumprod(1.0 + self.returns)
        return index / np.maximum.accumulate(index) - 1.0

    def dates(self) -> list[dt.date]:
        return [dt.date.fromordinal(int(d)) for d in self.days.tolist()]

    def index_of(self, day: dt.date) -> int:
        """Row of ``day`` clipped into the series (-1 for a day before it starts)."""
        return int(np.searchsorted(self.days, day.toordinal(), side="right")) - 1


@dataclass(frozen=True, slots=True)
class Holdings:
    """What the book held and what flowed, day by day: everything of the series that does
    not depend on prices (so it can be kept while quotes move)."""

    days: IntArray
    instruments: tuple[str, ...]
    futures: frozenset[str]
    quantity: FloatArray  # (days, instruments), end of day
    notional: FloatArray  # (days, instruments), futures only
    investment: FloatArray
    inflow: FloatArray
    outflow: FloatArray
    flows_by: FloatArray  # (days, instruments)


class _Changes(NamedTuple):
    """The effects' flows and position changes summed per day (not yet carried forward)."""

    inflow: FloatArray
    outflow: FloatArray
    flows_by: FloatArray  # (days, instruments)
    quantity: FloatArray  # (days, instruments)
    notional: FloatArray  # (days, instruments)
    cost: FloatArray


def _changes(
    effects: Sequence[Effect],
    rows: IntArray,
    column: Mapping[str, int],
    futures: frozenset[str],
    n_days: int,
) -> _Changes:
    """Each effect's flow and deltas added into its day's row (``rows``, one per effect).

    Column by column over every effect at once, summed by ``np.bincount`` (in order, as a
    loop adding into the arrays would): a Python loop over the effects, appending each
    flow and delta, cost as much as the lots.  Decimals go to floats together (``_floats``),
    and a notional only for a future (the only holding valued against it)."""
    n_inst = len(column)
    flow = _floats([e.flow for e in effects])
    inflow = _sum_by(rows, np.where(flow > 0, flow, 0.0), n_days)
    outflow = _sum_by(rows, np.where(flow < 0, -flow, 0.0), n_days)
    flows_by = np.zeros(n_days * n_inst)
    flow_columns = np.array([column.get(e.instrument or "", -1) for e in effects], np.int64)
    attributed = (flow_columns >= 0) & (flow != 0)
    if attributed.any():
        cells = rows[attributed] * n_inst + flow_columns[attributed]
        flows_by = _sum_by(cells, flow[attributed], n_days * n_inst)
    quantity = np.zeros(n_days * n_inst)
    notional = np.zeros(n_days * n_inst)
    cost = np.zeros(n_days)
    deltas = [delta for e in effects for delta in e.deltas]
    if deltas:
        delta_rows = np.repeat(rows, [len(e.deltas) for e in effects])
        # One list per field (not ``zip(*deltas)``, which makes an iterator per delta: as
        # many short-lived objects for the garbage collector to go through as deltas).
        keys = [delta.instrument for delta in deltas]
        costs = [delta.cost for delta in deltas]
        cells = delta_rows * n_inst + np.array([column[key] for key in keys], np.int64)
        quantity = _sum_by(cells, _floats([delta.quantity for delta in deltas]), n_days * n_inst)
        if futures and not futures.isdisjoint(keys):
            notionals = [d.notional if d.instrument in futures else ZERO for d in deltas]
            notional = _sum_by(cells, _floats(notionals), n_days * n_inst)
            # What ROAI calls the investment: the cost basis held (a future's: its fees).
            costs = [c - n for c, n in zip(costs, notionals, strict=True)]
        cost = _sum_by(delta_rows, _floats(costs), n_days)
    shape = (n_days, n_inst)
    return _Changes(
        inflow,
        outflow,
        flows_by.reshape(shape),
        quantity.reshape(shape),
        notional.reshape(shape),
        cost,
    )


def _sum_by(index: IntArray, weights: FloatArray, length: int) -> FloatArray:
    """``weights`` summed by ``index`` into ``length`` cells (in order, from 0.0)."""
    summed: FloatArray = np.bincount(index, weights, length).astype(np.float64, copy=False)
    return summed


def _floats(values: Sequence[Decimal]) -> FloatArray:
    # fromiter over float(): faster than np.array(dtype=float64) on Decimal objects.
    return np.fromiter(map(float, values), dtype=np.float64, count=len(values))


def holdings_by_day(
    effects: Sequence[Effect],
    instruments: Mapping[str, InstrumentInfo],
    end: dt.date,
    start: dt.date | None = None,
) -> Holdings:
    keys = tuple(sorted(instruments))
    futures = frozenset(key for key, info in instruments.items() if info.is_future)
    last = end.toordinal()
    ordinals = np.array([e.date.toordinal() for e in effects], np.int64)
    if start is not None:
        first = start.toordinal()
    else:
        first = int(ordinals.min()) if len(ordinals) else last
    first = min(first, last)
    days = np.arange(first, last + 1, dtype=np.int64)
    n_days = len(days)
    shown = ordinals <= last  # an effect after ``end`` is not in the series
    if not shown.all():
        effects = [e for e, keep in zip(effects, shown.tolist(), strict=True) if keep]
        ordinals = ordinals[shown]
    # An effect before ``start`` counts on its first day (what was held coming in).
    rows = np.maximum(ordinals - first, 0)
    changes = _changes(effects, rows, {key: n for n, key in enumerate(keys)}, futures, n_days)
    return Holdings(
        days,
        keys,
        futures,
        np.cumsum(changes.quantity, axis=0),
        np.cumsum(changes.notional, axis=0),
        np.cumsum(changes.cost),
        changes.inflow,
        changes.outflow,
        changes.flows_by,
    )


def with_effect(held: Holdings, effect: Effect) -> Holdings | None:
    """``held`` with one more effect, dated on or after every other (a new trade): the
    changes added from its day on, without going over the rest again.  None when the effect
    names an instrument ``held`` has no column for (then build the holdings again).

    The arrays are copied, not changed: a series valued from ``held`` may still be in use.
    """
    column = {key: n for n, key in enumerate(held.instruments)}
    touched = [d.instrument for d in effect.deltas]
    if effect.flow and effect.instrument is not None:
        touched.append(effect.instrument)
    if any(key not in column for key in touched):
        return None
    row = effect.date.toordinal() - int(held.days[0]) if len(held.days) else 0
    if row >= len(held.days):
        return held  # after the series' last day: the series does not show it
    row = max(row, 0)
    change = _changes([effect], np.zeros(1, np.int64), column, held.futures, 1)
    # The day's flows on its row; the changes of the position from it to every later day
    # (what the cumulative sums did).
    inflow, outflow, flows_by = held.inflow.copy(), held.outflow.copy(), held.flows_by.copy()
    inflow[row : row + 1] += change.inflow
    outflow[row : row + 1] += change.outflow
    flows_by[row : row + 1] += change.flows_by
    quantity, notional, investment = (
        held.quantity.copy(),
        held.notional.copy(),
        held.investment.copy(),
    )
    quantity[row:] += change.quantity
    notional[row:] += change.notional
    investment[row:] += change.cost
    return Holdings(
        held.days,
        held.instruments,
        held.futures,
        quantity,
        notional,
        investment,
        inflow,
        outflow,
        flows_by,
    )


def valued(
    held: Holdings,
    instruments: Mapping[str, InstrumentInfo],
    prices: Mapping[str, Observations],
    fx: Mapping[str, Observations],
) -> DailySeries:
    """``held`` at the day's closes and FX: the value and the daily TWR."""
    days, n_days = held.days, len(held.days)
    values = np.zeros((n_days, len(held.instruments)))
    rates = {currency: fx[currency].on(days) for currency in fx}
    exposure = {currency: np.zeros(n_days) for currency in fx}  # see _fx_exposure
    for i, key in enumerate(held.instruments):
        info = instruments[key]
        quantity = held.quantity[:, i]
        if not quantity.any():
            continue
        close = prices[key].on(days) if key in prices else np.full(n_days, np.nan)
        rate = rates.get(info.currency)
        local = quantity * close * info.multiplier
        value = local * rate if rate is not None else local
        if info.is_future:
            value = value - held.notional[:, i]
        is_held = np.abs(quantity) > 1e-12
        values[:, i] = np.where(is_held, np.nan_to_num(value), 0.0)
        if rate is not None:
            exposure[info.currency] += _fx_exposure(held, i, is_held, local, rate)
    fx_gain = np.zeros(n_days)
    for currency, held_over in exposure.items():
        if held_over.any():
            fx_gain += held_over * (rates[currency] - fx[currency].on(days - 1))
    value = values.sum(axis=1)
    start_capital = np.concatenate(([0.0], value[:-1])) + held.inflow
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(start_capital > 1e-9, (value + held.outflow) / start_capital - 1.0, 0.0)
    return DailySeries(
        days,
        value,
        held.inflow,
        held.outflow,
        held.investment,
        returns,
        held.instruments,
        values,
        held.flows_by,
        fx_gain,
    )


def _fx_exposure(
    held: Holdings, column: int, is_held: npt.NDArray[np.bool_], local: FloatArray, rate: FloatArray
) -> FloatArray:
    """What one holding had over each day's FX move, in its own currency.

    Inflows come at the start of the day at the day's rate and outflows leave at its end, so
    the move applies to the local value at the close less the day's local net inflow (a
    flow's local amount: its portfolio-currency amount at the day's rate).  Times the move,
    the currency's part of the day's gain; the rest is the asset's, at the previous day's
    rate."""
    held_local = np.where(is_held, np.nan_to_num(local), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        inflow_local = np.where(rate > 0, held.flows_by[:, column] / rate, 0.0)
    exposure: FloatArray = np.nan_to_num(held_local - inflow_local)
    return exposure


def daily_series(
    effects: Sequence[Effect],
    instruments: Mapping[str, InstrumentInfo],
    prices: Mapping[str, Observations],
    fx: Mapping[str, Observations],
    end: dt.date,
    start: dt.date | None = None,
) -> DailySeries:
    """The value, flows, investment and daily TWR of the securities, day by day."""
    return valued(holdings_by_day(effects, instruments, end, start), instruments, prices, fx)


# --- period figures ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Performance:
    start: dt.date
    end: dt.date
    days: int
    start_value: float
    end_value: float
    net_flows: float
    net_performance: float
    twr: float
    xirr: float | None
    modified_dietz: float | None
    roai: float | None
    annualised: bool
    twr_annualised: float | None
    modified_dietz_annualised: float | None
    fx_effect: float = 0.0  # the currency's part of net_performance
    twr_local: float = 0.0  # the TWR at the previous day's rates: the assets' own return

    @property
    def asset_performance(self) -> float:
        return self.net_performance - self.fx_effect

    @property
    def twr_fx(self) -> float:
        """The currency's part of the TWR: ``(1 + twr) = (1 + twr_local)(1 + twr_fx)``."""
        return (1.0 + self.twr) / (1.0 + self.twr_local) - 1.0 if self.twr_local > -1 else 0.0


def annualise(total: float, days: int) -> float:
    return float((1.0 + total) ** (365.0 / days) - 1.0)


def _window(series: DailySeries, start: dt.date, end: dt.date) -> tuple[int, int]:
    lo = max(0, int(np.searchsorted(series.days, start.toordinal(), side="left")))
    hi = int(np.searchsorted(series.days, end.toordinal(), side="right"))
    return lo, hi


def performance(series: DailySeries, start: dt.date, end: dt.date) -> Performance:
    """Every figure of ``[start, end]`` (both days' returns included)."""
    lo, hi = _window(series, start, end)
    start = max(start, dt.date.fromordinal(int(series.days[0]))) if len(series) else start
    days = max((end - start).days + 1, 1)
    if hi <= lo:
        return Performance(
            start, end, days, 0.0, 0.0, 0.0, 0.0, 0.0, None, None, None, False, None, None
        )
    start_value = float(series.value[lo - 1]) if lo > 0 else 0.0
    end_value = float(series.value[hi - 1])
    inflow, outflow = series.inflow[lo:hi], series.outflow[lo:hi]
    net_flows = float(inflow.sum() - outflow.sum())
    net = end_value - start_value - net_flows
    twr = float(np.prod(1.0 + series.returns[lo:hi]) - 1.0)
    fx_effect = float(series.fx_gain[lo:hi].sum())
    twr_local = float(np.prod(1.0 + local_returns(series)[lo:hi]) - 1.0)
    offsets = (series.days[lo:hi] - series.days[lo]).astype(np.float64)
    md = modified_dietz(start_value, end_value, inflow, outflow, offsets, float(days))
    irr = xirr_of_range(start_value, end_value, inflow, outflow, offsets, float(days))
    invested = series.investment[lo:hi]
    held = np.nonzero(np.abs(invested) > 1e-9)[0]
    roai = None
    if held.size:
        average = float(invested[held[0] :].mean())
        roai = net / average if average > 1e-9 else None
    long = days > 365
    return Performance(
        start,
        end,
        days,
        start_value,
        end_value,
        net_flows,
        net,
        twr,
        irr,
        md,
        roai,
        long,
        annualise(twr, days) if long and twr > -1 else None,
        annualise(md, days) if long and md is not None and md > -1 else None,
        fx_effect,
        twr_local,
    )


def local_returns(series: DailySeries) -> FloatArray:
    """Each day's TWR with the day's FX move taken out (the value at the close less the
    day's currency gain), on the same starting capital as ``returns``."""
    value = series.value
    start_capital = np.concatenate(([0.0], value[:-1])) + series.inflow
    with np.errstate(divide="ignore", invalid="ignore"):
        returns: FloatArray = np.where(
            start_capital > 1e-9,
            (value - series.fx_gain + series.outflow) / start_capital - 1.0,
            0.0,
        )
    return returns


def modified_dietz(
    start_value: float,
    end_value: float,
    inflow: FloatArray,
    outflow: FloatArray,
    offsets: FloatArray,
    days: float,
) -> float | None:
    """Modified Dietz with inflows at the start and outflows at the end of their day."""
    flows = inflow.sum() - outflow.sum()
    weighted = (inflow * (days - offsets) / days).sum() - (
        outflow * (days - offsets - 1.0) / days
    ).sum()
    capital = start_value + weighted
    if capital <= 1e-9:
        return None
    return float((end_value - start_value - flows) / capital)


def xirr_of_range(
    start_value: float,
    end_value: float,
    inflow: FloatArray,
    outflow: FloatArray,
    offsets: FloatArray,
    days: float,
) -> float | None:
    times = [0.0] if start_value else []
    amounts = [-start_value] if start_value else []
    net = outflow - inflow  # the investor's side: money in is negative
    for t, amount in zip(offsets.tolist(), net.tolist(), strict=True):
        if amount:
            times.append(t)
            amounts.append(amount)
    times.append(days - 1.0)
    amounts.append(end_value)
    return xirr(np.array(times), np.array(amounts))


def xirr(times_days: FloatArray, amounts: FloatArray) -> float | None:
    """The annual rate that makes the flows' net present value zero (actual/365), or None
    when there is none (all flows of one sign).  ``times_days`` are days from any origin.

    Flows that change sign more than once can have several roots: the one nearest zero is
    taken (as Newton's method from 0.1 finds, which pyxirr and Excel start from), bracketed
    on a grid of rates and polished by ``scipy.optimize.brentq``."""
    if not (amounts > 0).any() or not (amounts < 0).any():
        return None
    years = (times_days - times_days.min()) / 365.0

    def npv(rate: float) -> float:
        return float(np.sum(amounts * np.exp(-years * math.log1p(rate))))

    values = [(r, npv(r)) for r in _GRID]
    brackets = [
        (a, b)
        for (a, fa), (b, fb) in itertools.pairwise(values)
        if math.isfinite(fa) and math.isfinite(fb) and fa * fb <= 0
    ]
    if not brackets:
        return None
    lo, hi = min(brackets, key=lambda ab: min(abs(ab[0]), abs(ab[1])))
    if npv(lo) == 0:
        return lo
    root = brentq(npv, lo, hi, xtol=1e-14, rtol=1e-15, maxiter=500)
    return float(root)


_GRID = (
    -0.9999,
    -0.999,
    -0.99,
    -0.95,
    -0.9,
    -0.8,
    -0.6,
    -0.4,
    -0.2,
    -0.1,
    0.0,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    4.0,
    8.0,
    16.0,
    50.0,
    100.0,
    1e3,
    1e4,
    1e6,
    1e9,
    1e12,
    1e15,
)


# --- periods ----------------------------------------------------------------------------
PERIODS = ("today", "wtd", "mtd", "ytd", "1y", "3y", "5y", "max")


def period_start(period: str, today: dt.date, first: dt.date) -> dt.date:
    """First day of a named period ending ``today``."""
    if period == "today":
        return today
    if period == "wtd":
        return today - dt.timedelta(days=today.weekday())
    if period == "mtd":
        return today.replace(day=1)
    if period == "ytd":
        return today.replace(month=1, day=1)
    if period in ("1y", "3y", "5y"):
        years = int(period[0])
        try:
            back = today.replace(year=today.year - years)
        except ValueError:  # 29 February
            back = today.replace(year=today.year - years, day=28)
        return back + dt.timedelta(days=1)
    if period == "max":
        return first
    raise ValueError(f"unknown period {period!r}; one of {', '.join(PERIODS)}")


# --- contribution, benchmarks -------------------------------------------------------------
def contributions(series: DailySeries, start: dt.date, end: dt.date) -> dict[str, float]:
    """Each holding's P&L over the portfolio's Modified Dietz capital: they add up to the
    portfolio's Modified Dietz return."""
    lo, hi = _window(series, start, end)
    if hi <= lo:
        return {}
    days = float((end - start).days + 1)
    start_value = float(series.value[lo - 1]) if lo > 0 else 0.0
    offsets = (series.days[lo:hi] - series.days[lo]).astype(np.float64)
    inflow, outflow = series.inflow[lo:hi], series.outflow[lo:hi]
    weighted = (inflow * (days - offsets) / days).sum() - (
        outflow * (days - offsets - 1.0) / days
    ).sum()
    capital = start_value + weighted
    if capital <= 1e-9:
        return {}
    before = series.holding_values[lo - 1] if lo > 0 else np.zeros(len(series.instruments))
    pnl = series.holding_values[hi - 1] - before - series.holding_flows[lo:hi].sum(axis=0)
    return {
        key: float(pnl[i] / capital)
        for i, key in enumerate(series.instruments)
        if pnl[i] or series.holding_values[lo:hi, i].any()
    }


@dataclass(frozen=True, slots=True)
class BenchmarkComparison:
    benchmark_twr: float
    benchmark_value: float  # what the same flows would be worth in the benchmark
    benchmark_xirr: float | None
    excess_return: float
    beta: float | None
    tracking_error: float | None  # annualised, over the benchmark's trading days
    observations: int


def compare(
    series: DailySeries,
    closes: Observations,
    start: dt.date,
    end: dt.date,
    portfolio_twr: float,
) -> BenchmarkComparison:
    """The benchmark over the same flows: every inflow buys it at that day's close, every
    outflow sells it; its TWR is its price return; beta and tracking error from returns
    between its trading days."""
    lo, hi = _window(series, start, end)
    days = series.days[lo:hi]
    price = closes.on(days)
    start_price = closes.on(np.array([days[0] - 1]))[0] if len(days) else math.nan
    start_value = float(series.value[lo - 1]) if lo > 0 else 0.0
    units = start_value / start_price if start_value and start_price > 0 else 0.0
    net = series.inflow[lo:hi] - series.outflow[lo:hi]
    with np.errstate(divide="ignore", invalid="ignore"):
        units += float(np.nansum(np.where(price > 0, net / price, 0.0)))
    final_value = units * float(price[-1]) if len(price) else 0.0
    bench_twr = float(price[-1] / start_price - 1.0) if len(price) and start_price > 0 else 0.0
    offsets = (days - days[0]).astype(np.float64) if len(days) else np.zeros(0)
    period_days = float((end - start).days + 1)
    irr = xirr_of_range(
        start_value, final_value, series.inflow[lo:hi], series.outflow[lo:hi], offsets, period_days
    )
    # Returns between the benchmark's own trading days inside the range.
    trading = closes.days[(closes.days >= days[0]) & (closes.days <= days[-1])] if len(days) else []
    beta = tracking = None
    if len(trading) >= 3:
        rows = np.searchsorted(series.days, trading)
        index = np.cumprod(1.0 + series.returns)[rows]
        rp = index[1:] / index[:-1] - 1.0
        b = closes.on(np.asarray(trading))
        rb = b[1:] / b[:-1] - 1.0
        var = float(np.var(rb, ddof=1))
        if var > 0:
            beta = float(np.cov(rp, rb, ddof=1)[0, 1] / var)
        tracking = float(np.std(rp - rb, ddof=1) * math.sqrt(252))
    return BenchmarkComparison(
        bench_twr, final_value, irr, portfolio_twr - bench_twr, beta, tracking, len(trading)
    )
