"""Backtests on the paper-trading engine: bars replayed as quotes on a virtual clock.

:class:`PaperBook` is one instrument's paper book: the very
:class:`~quantdesk.trading.engine.matching.MatchingEngine` paper trading runs (same order
types, time in force, fill models, size tracking and stale-quote rule), positions at
average cost (:func:`~quantdesk.trading.engine.positions.apply_fill`, as the paper ledger
books them) and each fill's charges (the dated Indian/US tables of
:mod:`~quantdesk.trading.engine.charges`, or paper trading's flat
:class:`~quantdesk.trading.engine.fees.FeeSchedule`).  Fed the same quotes and orders as a
paper session, it fills identically (``tests/signals/test_parity.py``).

A bar becomes four quotes (bid = ask = last = the price, unless a half spread is given):
the open at the bar's open time, then the low and the high (the high first when the bar
closed below its open: the usual OHLC path rule), then the close one second before the bar
ends.  A signal is read at a bar's close; its order is placed at the bar's end, on a clock
that has moved past the close quote, and the engine's stale-quote rule (``max_quote_age``
zero) makes it wait for the next quote: the next bar's open.  No order fills at a price
that was known before it was placed.

Fills dated before the charge tables begin (:data:`CHARGES_FLOOR`) are charged at the
earliest rates they hold.  Not modelled here: margin blocking and buying-power checks (the
backtest account is sized by ``capital`` and may go negative in cash), expiry settlement
of derivatives (signals trade the instrument's own bars), and ticks: stored bars are the
only history quantdesk keeps.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from quantdesk.analytics.returns import annual_return
from quantdesk.analytics.risk.measures import max_drawdown, sharpe, sortino, volatility
from quantdesk.analytics.risk.var import historical_cvar, historical_var
from quantdesk.trading.engine.charges import ChargeSchedule
from quantdesk.trading.engine.fees import FeeSchedule
from quantdesk.trading.engine.fill_models import BestPriceFillModel, FillModel
from quantdesk.trading.engine.matching import MatchingEngine
from quantdesk.trading.engine.positions import Position, apply_fill, money
from quantdesk.trading.engine.types import (
    EventKind,
    InstrumentSpec,
    Order,
    OrderEvent,
    OrderType,
    QuoteTick,
    Side,
    TimeInForce,
    TradeTick,
)

ZERO = Decimal(0)
UNLIMITED = Decimal("Infinity")
# The charge tables start here (SEBI's uniform exchange charges, 2024-10-01): fills of older
# history are charged at the earliest rates the tables hold rather than not at all.
CHARGES_FLOOR = dt.date(2024, 10, 1)


@dataclass(frozen=True, slots=True)
class Contract:
    """What the replay needs to know of an instrument (from the instrument master)."""

    key: str
    tick_size: Decimal
    lot_size: Decimal = Decimal(1)
    multiplier: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class BookedFill:
    order_id: str
    side: str
    price: Decimal
    quantity: Decimal
    liquidity: str
    ts: dt.datetime
    charges: Decimal
    realised: Decimal
    position_after: Decimal


@dataclass(slots=True)
class PaperBook:
    contract: Contract
    cash: Decimal
    fill_model: FillModel = field(default_factory=BestPriceFillModel)
    charges: ChargeSchedule | None = None
    fees: FeeSchedule | None = None
    max_quote_age: dt.timedelta | None = dt.timedelta(0)
    size_tracking: bool = True
    engine: MatchingEngine = field(init=False)
    position: Position = field(default_factory=Position)
    fills: list[BookedFill] = field(default_factory=list)
    _sides: dict[str, Side] = field(default_factory=dict)
    _traded_value: dict[str, Decimal] = field(default_factory=dict)
    _sequence: int = 0

    def __post_init__(self) -> None:
        spec = InstrumentSpec(self.contract.key, self.contract.tick_size, self.contract.lot_size)
        self.engine = MatchingEngine(
            spec, size_tracking=self.size_tracking, max_quote_age=self.max_quote_age
        )

    # --- orders and ticks --------------------------------------------------------------
    def order(
        self,
        side: Side,
        quantity: Decimal,
        now: dt.datetime,
        *,
        type: OrderType = OrderType.MARKET,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        order_id: str | None = None,
    ) -> str:
        self._sequence += 1
        oid = order_id or f"bt-{self._sequence}"
        order = Order(
            id=oid,
            side=side,
            type=type,
            quantity=quantity,
            time_in_force=time_in_force,
            limit_price=limit_price,
            stop_price=stop_price,
            priority=self._sequence,
            fill_model=self.fill_model,
        )
        self._sides[oid] = side
        self._book(self.engine.add(order, now))
        return oid

    def cancel_all(self) -> None:
        for order in self.engine.open_orders():
            self.engine.cancel(order.id)

    def quote(self, tick: QuoteTick) -> None:
        self._book(self.engine.on_quote(tick))

    def trade(self, tick: TradeTick) -> None:
        self._book(self.engine.on_trade(tick))

    def pending(self) -> Decimal:
        """Signed units of the open orders."""
        total = ZERO
        for order in self.engine.open_orders():
            total += order.open_quantity if order.side is Side.BUY else -order.open_quantity
        return total

    def equity(self, mark: Decimal) -> Decimal:
        return self.cash + self.position.quantity * mark * self.contract.multiplier

    # --- bookkeeping ---------------------------------------------------------------------
    def _charge(self, side: Side, price: Decimal, quantity: Decimal, order_id: str,
                day: dt.date) -> Decimal:  # fmt: skip
        value = price * quantity * self.contract.multiplier
        before = self._traded_value.get(order_id, ZERO)
        self._traded_value[order_id] = before + value
        total = ZERO
        if self.charges is not None:
            total += self.charges.fill(
                side=side.value, price=price, quantity=quantity, day=max(day, CHARGES_FLOOR),
                multiplier=self.contract.multiplier, order_value_before=before,
            ).total  # fmt: skip
        if self.fees is not None:
            total += self.fees.fee(value)
        return total

    def _book(self, events: Sequence[OrderEvent]) -> None:
        for event in events:
            if event.kind is not EventKind.FILL or event.fill is None:
                continue
            fill = event.fill
            side = self._sides[fill.order_id]
            signed = fill.quantity if side is Side.BUY else -fill.quantity
            effect = apply_fill(self.position, signed, fill.price, self.contract.multiplier)
            charges = self._charge(side, fill.price, fill.quantity, fill.order_id,
                                   fill.ts.date())  # fmt: skip
            self.position = effect.position
            self.cash = money(self.cash - signed * fill.price * self.contract.multiplier - charges)
            self.fills.append(
                BookedFill(
                    fill.order_id, side.value, fill.price, fill.quantity,
                    fill.liquidity.value, fill.ts, charges, effect.realised,
                    effect.position.quantity,
                )
            )  # fmt: skip


# --- bars as quotes ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PriceBars:
    """Bars with exact prices: ``ts`` the bar open (epoch seconds), prices as Decimal."""

    ts: Sequence[int]
    open: Sequence[Decimal]
    high: Sequence[Decimal]
    low: Sequence[Decimal]
    close: Sequence[Decimal]
    seconds: int  # the bar's length

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def of_text(cls, ts: Sequence[int], open: Sequence[str], high: Sequence[str],
                low: Sequence[str], close: Sequence[str], seconds: int) -> PriceBars:  # fmt: skip
        return cls(list(map(int, ts)), [Decimal(v) for v in open], [Decimal(v) for v in high],
                   [Decimal(v) for v in low], [Decimal(v) for v in close], seconds)  # fmt: skip


def _instant(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def bar_quotes(
    bars: PriceBars, i: int, key: str, tick: Decimal, half_spread_ticks: int = 0
) -> list[QuoteTick]:
    start, length = bars.ts[i], bars.seconds
    o, h, lo, c = bars.open[i], bars.high[i], bars.low[i], bars.close[i]
    middle = (h, lo) if c < o else (lo, h)
    prices = (o, *middle, c)
    offsets = (0, length // 3, (2 * length) // 3, length - 1)
    half = tick * half_spread_ticks
    return [
        QuoteTick(
            bid=p - half, bid_size=UNLIMITED, ask=p + half, ask_size=UNLIMITED,
            ts=_instant(start + offset), source_id=f"{key}@{start}#{n}", last=p,
        )
        for n, (p, offset) in enumerate(zip(prices, offsets, strict=True))
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class BacktestResult:
    ts: list[int]  # bar open times
    equity: list[Decimal]  # at each bar's close
    position: list[Decimal]
    fills: list[BookedFill]
    trades: list[dict[str, Any]]
    measures: dict[str, float | None]
    replay_seconds: float
    quotes: int

    @property
    def fills_per_second(self) -> float:
        return len(self.fills) / self.replay_seconds if self.replay_seconds > 0 else 0.0


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def risk_measures(equity: Sequence[Decimal], periods_per_year: float) -> dict[str, float | None]:
    values = np.array([float(e) for e in equity], dtype=np.float64)
    if values.size < 3 or (values <= 0).any():
        return {"total_return": None}
    returns = values[1:] / values[:-1] - 1.0
    return {
        "total_return": _finite(values[-1] / values[0] - 1.0),
        "annual_return": _finite(annual_return(returns, periods_per_year)),
        "volatility": _finite(volatility(returns, periods_per_year)),
        "sharpe": _finite(sharpe(returns, periods_per_year=periods_per_year)),
        "sortino": _finite(sortino(returns, periods_per_year=periods_per_year)),
        "max_drawdown": _finite(max_drawdown(returns)),
        "var_95": _finite(historical_var(returns, 0.95)),
        "cvar_95": _finite(historical_cvar(returns, 0.95)),
    }


def round_trips(fills: Sequence[BookedFill]) -> list[dict[str, Any]]:
    """Trades from flat to flat (a fill through zero closes one and opens the next)."""
    trades: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    before = ZERO
    for fill in fills:
        if current is None:
            current = {"opened": fill.ts, "side": "long" if fill.side == "buy" else "short",
                       "pnl": ZERO, "charges": ZERO, "fills": 0}  # fmt: skip
        current["pnl"] += fill.realised
        current["charges"] += fill.charges
        current["fills"] += 1
        after = fill.position_after
        if after == 0 or (before != 0 and (after > 0) != (before > 0)):
            current["closed"] = fill.ts
            current["net_pnl"] = current["pnl"] - current["charges"]
            trades.append(current)
            current = None
            if after != 0:
                current = {"opened": fill.ts, "side": "long" if after > 0 else "short",
                           "pnl": ZERO, "charges": ZERO, "fills": 0}  # fmt: skip
        before = after
    if current is not None:
        current["closed"] = None
        current["net_pnl"] = current["pnl"] - current["charges"]
        trades.append(current)
    return trades


def backtest_targets(
    bars: PriceBars,
    targets: Sequence[Decimal],
    contract: Contract,
    *,
    capital: Decimal,
    fill_model: FillModel | None = None,
    charges: ChargeSchedule | None = None,
    fees: FeeSchedule | None = None,
    half_spread_ticks: int = 0,
    periods_per_year: float = 252.0,
) -> BacktestResult:
    """Trade towards ``targets[i]`` (signed units, read at bar ``i``'s close) with market
    orders; an order still open when the target changes is canceled first."""
    if len(targets) != len(bars):
        raise ValueError("one target position per bar")
    book = PaperBook(contract, capital, fill_model or BestPriceFillModel(), charges, fees)
    equity: list[Decimal] = []
    held: list[Decimal] = []
    quotes = 0
    started = time.perf_counter()
    for i in range(len(bars)):
        for tick in bar_quotes(bars, i, contract.key, contract.tick_size, half_spread_ticks):
            book.quote(tick)
            quotes += 1
        equity.append(book.equity(bars.close[i]))
        held.append(book.position.quantity)
        want = targets[i]
        if want != book.position.quantity + book.pending():
            book.cancel_all()
            change = want - book.position.quantity
            if change != 0:
                side = Side.BUY if change > 0 else Side.SELL
                book.order(side, abs(change), _instant(bars.ts[i] + bars.seconds))
    elapsed = time.perf_counter() - started
    return BacktestResult(
        ts=list(bars.ts),
        equity=equity,
        position=held,
        fills=book.fills,
        trades=round_trips(book.fills),
        measures=risk_measures(equity, periods_per_year),
        replay_seconds=elapsed,
        quotes=quotes,
    )


def targets_from_probability(
    probability: Sequence[float],
    quantity: Decimal,
    *,
    threshold: float = 0.5,
    allow_short: bool = False,
) -> list[Decimal]:
    """The signal's position in units: ``quantity`` long above the threshold, short below
    ``1 - threshold`` when allowed, else flat (and flat while the signal is unknown)."""
    out = []
    for p in probability:
        if not math.isfinite(p):
            out.append(ZERO)
        elif p > threshold:
            out.append(quantity)
        elif allow_short and p < 1 - threshold:
            out.append(-quantity)
        else:
            out.append(ZERO)
    return out


@dataclass(frozen=True, slots=True)
class ScheduledLeg:
    """One leg of a strategy's schedule: hold ``units`` (signed) of ``contract`` from the
    open of its second bar in the window to the open of its last (market orders placed at
    the closes before, as a signal's are)."""

    contract: Contract
    bars: PriceBars
    units: Decimal
    charges: ChargeSchedule | None = None


def backtest_schedule(
    legs: Sequence[ScheduledLeg],
    *,
    capital: Decimal,
    fill_model: FillModel | None = None,
    half_spread_ticks: int = 0,
    periods_per_year: float = 252.0,
) -> BacktestResult:
    """Each leg on its own book of the engine (cash pooled): the equity at each bar time of
    any leg is ``capital`` plus every leg's cash flows and its position at its last close."""
    runs = []
    for leg in legs:
        n = len(leg.bars)
        if n < 3:
            raise ValueError(f"{leg.contract.key}: a schedule needs at least 3 bars")
        targets = [leg.units] * (n - 2) + [ZERO, ZERO]
        runs.append(backtest_targets(
            leg.bars, targets, leg.contract, capital=ZERO, fill_model=fill_model,
            charges=leg.charges, half_spread_ticks=half_spread_ticks,
            periods_per_year=periods_per_year,
        ))  # fmt: skip
    grid = sorted({t for run in runs for t in run.ts})
    equity: list[Decimal] = []
    cursors = [0] * len(runs)
    last: list[Decimal] = [ZERO] * len(runs)
    for t in grid:
        for k, run in enumerate(runs):
            while cursors[k] < len(run.ts) and run.ts[cursors[k]] <= t:
                last[k] = run.equity[cursors[k]]
                cursors[k] += 1
        equity.append(capital + sum(last, ZERO))
    fills = sorted((f for run in runs for f in run.fills), key=lambda f: f.ts)
    trades = [trade for run in runs for trade in run.trades]
    return BacktestResult(
        ts=grid, equity=equity, position=[ZERO] * len(grid), fills=fills, trades=trades,
        measures=risk_measures(equity, periods_per_year),
        replay_seconds=sum(run.replay_seconds for run in runs),
        quotes=sum(run.quotes for run in runs),
    )  # fmt: skip
