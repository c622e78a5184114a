"""Backtests on the paper-trading engine: bars replayed as quotes on a virtual clock.

Each instrument trades on a :class:`~.book.PaperBook` (the matching engine paper trading
runs, fills identical to a paper session's: ``tests/signals/test_parity.py``), all of a
run's books on one :class:`~.account.MarginAccount` (paper trading's buying power, margin
and expiry settlement).

A bar becomes four quotes (bid = ask = last = the price, unless a half spread is given):
the open at the bar's open time, then the low and the high (the high first when the bar
closed below its open: the usual OHLC path rule), then the close one second before the bar
ends.  A signal is read at a bar's close; its order is placed at the bar's end, on a clock
that has moved past the close quote, and the engine's stale-quote rule (``max_quote_age``
zero) makes it wait for the next quote: the next bar's open.  No order fills at a price
that was known before it was placed.

Fills dated before the charge tables begin (:data:`CHARGES_FLOOR`) are charged at the
earliest rates they hold.  The money is paper trading's (:mod:`.account`): an order paper
would refuse for buying power is refused and recorded (the target stays unmet until it can
be paid), margin is blocked while a position is open and released as it closes, free cash
never goes below zero, and a saved strategy's leg that expires inside the window settles at
expiry as paper trading settles it.  Not modelled: ticks (stored bars are the only history
quantdesk keeps) and what :mod:`.account` lists.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Literal

import numpy as np

from quantdesk.analytics.returns import annual_return
from quantdesk.analytics.risk.measures import max_drawdown, sharpe, sortino, volatility
from quantdesk.analytics.risk.var import historical_cvar, historical_var
from quantdesk.signals.research.account import (
    PAPER_MARGIN_RATES,
    PAPER_PRICE_BAND_PCT,
    Contract,
    ExerciseCharging,
    MarginAccount,
    OrderRefused,
    Rejection,
    Settlement,
)
from quantdesk.signals.research.book import CHARGES_FLOOR, BookedFill, PaperBook
from quantdesk.trading.engine.charges import ChargeSchedule
from quantdesk.trading.engine.fees import FeeSchedule
from quantdesk.trading.engine.fill_models import BestPriceFillModel, FillModel
from quantdesk.trading.engine.margin import MarginRates
from quantdesk.trading.engine.positions import tidy
from quantdesk.trading.engine.types import OrderType, QuoteTick, Side, TimeInForce

ZERO = Decimal(0)
UNLIMITED = Decimal("Infinity")
BASIS_POINTS = Decimal(10_000)
MAX_OFFSET_BPS = Decimal(1_000)


@dataclass(frozen=True, slots=True)
class Execution:
    """How a signal's target (or a saved strategy's leg) becomes orders.

    ``market`` (the default): a market order, filled at the next quote (the next bar's
    open).  ``limit``: a limit order at the signal bar's close moved ``offset_bps`` basis
    points in the order's favour (a buy below the close, a sell above; a negative offset
    crosses the close by that much), rounded to the tick in the order's favour (a buy down,
    a sell up).  ``stop``: a stop-market order triggered at the close moved ``offset_bps``
    (0 or more) against the order (a buy at or above ``close x (1 + bps)``, a sell at or
    below ``close x (1 - bps)``), rounded to the tick away from the market (a buy up, a
    sell down).  Limits and stops are valid for the DAY as paper trading defines it: until
    the close of the session in force when placed, or of the next session when placed
    with the market shut (paper's after-market order).  They fill (and stops elect) as
    paper's resting orders do, on the matching engine, and one that expires unfilled is
    replaced at the next close while the target is still unmet."""

    order_type: Literal["market", "limit", "stop"] = "market"
    offset_bps: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.order_type not in ("market", "limit", "stop"):
            raise ValueError(f"order type is market, limit or stop, not {self.order_type!r}")
        if abs(self.offset_bps) > MAX_OFFSET_BPS:
            raise ValueError(f"offset_bps is within +/-{MAX_OFFSET_BPS}")
        if self.order_type == "market" and self.offset_bps != 0:
            raise ValueError("offset_bps is for limit orders and stops")
        if self.order_type == "stop" and self.offset_bps < 0:
            # Through the close a stop is elected by the last price as it is placed.
            raise ValueError("a stop's offset_bps is 0 or more")

    def limit_price(self, side: Side, close: Decimal, tick: Decimal) -> Decimal:
        return _on_tick(_moved(close, -self.offset_bps, side), tick, up=side is Side.SELL)

    def stop_price(self, side: Side, close: Decimal, tick: Decimal) -> Decimal:
        return _on_tick(_moved(close, self.offset_bps, side), tick, up=side is Side.BUY)

    def place(self, book: PaperBook, side: Side, quantity: Decimal, close: Decimal,
              now: dt.datetime) -> bool:  # fmt: skip
        """Place the order for ``quantity`` at a bar's end (``close``); True when it is a
        DAY order (its expiry is the caller's to track)."""
        tick = book.contract.tick_size
        if self.order_type == "market":
            book.order(side, quantity, now)
            return False
        if self.order_type == "limit":
            book.order(side, quantity, now, type=OrderType.LIMIT,
                       limit_price=self.limit_price(side, close, tick),
                       time_in_force=TimeInForce.DAY)  # fmt: skip
        else:
            book.order(side, quantity, now, type=OrderType.STOP,
                       stop_price=self.stop_price(side, close, tick),
                       time_in_force=TimeInForce.DAY)  # fmt: skip
        return True


def _moved(close: Decimal, against_bps: Decimal, side: Side) -> Decimal:
    """``close`` moved ``against_bps`` against an order of ``side`` (a buy up, a sell down)."""
    move = close * against_bps / BASIS_POINTS
    return close + move if side is Side.BUY else close - move


def _on_tick(price: Decimal, tick: Decimal, *, up: bool) -> Decimal:
    if tick <= 0:
        return price
    steps = (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return tidy(max(steps * tick, tick))


MARKET_ORDERS = Execution()


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
    equity: list[Decimal]  # at each bar's close: cash + reserved + margin + positions marked
    position: list[Decimal]
    fills: list[BookedFill]
    trades: list[dict[str, Any]]
    measures: dict[str, float | None]
    replay_seconds: float
    quotes: int
    cash: list[Decimal] = field(default_factory=list)  # free cash at each close
    margin: list[Decimal] = field(default_factory=list)  # blocked at each close
    rejections: list[Rejection] = field(default_factory=list)
    settlements: list[Settlement] = field(default_factory=list)
    expired: int = 0  # DAY limit and stop orders that expired unfilled

    @property
    def fills_per_second(self) -> float:
        return len(self.fills) / self.replay_seconds if self.replay_seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """What the account refused and settled: counts by reason, the settlements' P&L."""
        reasons: dict[str, int] = {}
        for rejection in self.rejections:
            reasons[rejection.code] = reasons.get(rejection.code, 0) + 1
        return {
            "rejected": len(self.rejections),
            "rejected_by_reason": reasons,
            "expired": self.expired,
            "settled": len(self.settlements),
            "settlement_cash": sum((s.cash for s in self.settlements), ZERO),
            "settlement_realised": sum((s.realised for s in self.settlements), ZERO),
            "settlement_charges": sum((s.charges for s in self.settlements), ZERO),
            "peak_margin": max(self.margin, default=ZERO),
            "lowest_cash": min(self.cash, default=ZERO),
        }


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


@dataclass(slots=True)
class _Lane:
    """One instrument's bars in a replay: traded towards ``targets`` on ``book``, or only
    marked (``book`` None: an option's underlying, ``spot`` its symbol)."""

    bars: PriceBars
    book: PaperBook | None = None
    targets: Sequence[Decimal] = ()
    spot: str | None = None
    expiry: tuple[dt.date, Decimal] | None = None  # (expiry day, settlement price)
    exercise: ExerciseCharging | None = None
    done: bool = False  # settled (or its settlement refused): no more orders
    execution: Execution = MARKET_ORDERS
    # Per bar: when a DAY order placed at its end expires (epoch seconds; an order is live
    # for the bars that open before it).  None: through the next bar only.
    day_ends: Sequence[int] | None = None
    expires: int | None = None  # the open DAY order's
    index: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.bars.ts)}


@dataclass(slots=True)
class _Replayed:
    ts: list[int] = field(default_factory=list)
    equity: list[Decimal] = field(default_factory=list)
    position: list[Decimal] = field(default_factory=list)
    cash: list[Decimal] = field(default_factory=list)
    margin: list[Decimal] = field(default_factory=list)
    quotes: int = 0
    expired: int = 0  # DAY orders that expired unfilled


def _replay(lanes: Sequence[_Lane], account: MarginAccount, half_spread_ticks: int) -> _Replayed:
    """Every lane's bars in time order on one account.  At each bar time: the bars' quotes
    (interleaved by time), then at the bars' end the expiries due, the equity at the
    closes, and each traded lane's order towards its target (the next bar's open fills it)."""
    out = _Replayed()
    traded = [lane for lane in lanes if lane.book is not None]
    grid = {t for lane in traded for t in lane.bars.ts}
    for t in sorted({t for lane in lanes for t in lane.bars.ts}):
        here = [(lane, lane.index[t]) for lane in lanes if t in lane.index]
        for lane in traded:
            out.expired += _expire_day_orders(lane, t)
        ticks = [(tick, lane) for lane, i in here for tick in bar_quotes(
            lane.bars, i, lane.book.contract.key if lane.book else lane.spot or "",
            lane.book.contract.tick_size if lane.book else Decimal(0), half_spread_ticks,
        )]  # fmt: skip
        ticks.sort(key=lambda item: item[0].ts)  # stable: lanes in order at equal times
        for tick, lane in ticks:
            if lane.book is not None:
                lane.book.quote(tick)
            elif lane.spot is not None and tick.last is not None:
                account.spots[lane.spot] = tick.last
            out.quotes += 1
        end = _instant(t + max(lane.bars.seconds for lane, _ in here))
        for lane in traded:
            if lane.expiry is not None and not lane.done and _instant(t).date() >= lane.expiry[0]:
                _settle(lane, account, end)
        if t in grid:
            out.ts.append(t)
            out.equity.append(account.equity())
            first = traded[0].book if traded else None  # a signal's one instrument
            out.position.append(first.position.quantity if first is not None else ZERO)
            out.cash.append(account.cash)
            out.margin.append(account.blocked())
        for lane, i in here:
            if lane.book is not None and not lane.done:
                # An order whose session closed during the bar is gone before the next one.
                out.expired += _expire_day_orders(lane, int(end.timestamp()))
                _towards(lane, i, end)
    return out


def _expire_day_orders(lane: _Lane, t: int) -> int:
    """Paper's DAY expiry at ``t`` (a bar's open, before its quotes, or its end, before the
    next order): an open order whose session has closed by then is canceled, its
    reservation released.  So a DAY order is live for the bars that open before it
    expires, and is replaced at the close of the bar its session closes in."""
    if lane.book is None or lane.expires is None or lane.expires > t:
        return 0
    lane.expires = None
    if not lane.book.engine.open_orders():
        return 0
    lane.book.cancel_all()
    return 1


def _day_end(lane: _Lane, i: int) -> int:
    if lane.day_ends is not None:
        return lane.day_ends[i]
    ts, seconds = lane.bars.ts, lane.bars.seconds
    return (ts[i + 1] if i + 1 < len(ts) else ts[i] + seconds) + seconds


def _towards(lane: _Lane, i: int, now: dt.datetime) -> None:
    """Trade towards the target of bar ``i`` with the lane's order type; an open order that
    no longer fits the target is canceled first.  A refused order is recorded and tried
    again at the next bar while the target is unmet."""
    book = lane.book
    assert book is not None  # noqa: S101 - only traded lanes trade
    want = lane.targets[i]
    if want == book.position.quantity + book.pending():
        return
    book.cancel_all()
    lane.expires = None
    change = want - book.position.quantity
    if change == 0:
        return
    side = Side.BUY if change > 0 else Side.SELL
    with contextlib.suppress(OrderRefused):  # recorded in the account's rejections
        if lane.execution.place(book, side, abs(change), lane.bars.close[i], now):
            lane.expires = _day_end(lane, i)


def _settle(lane: _Lane, account: MarginAccount, now: dt.datetime) -> None:
    """Paper trading's expiry after the expiry day's close: the contract's open orders
    canceled, the position settled (lifecycle.settle_expiries)."""
    assert lane.book is not None  # noqa: S101 - only traded lanes settle
    assert lane.expiry is not None  # noqa: S101 - and only those that expire
    lane.done = True
    lane.book.cancel_all()
    contract = lane.book.contract
    try:
        account.settle_expiry(contract, lane.expiry[1], now, lane.exercise)
    except OrderRefused as refused:  # a margin call: it stays open, marked at its last price
        held = account.position(contract.key).quantity
        side = Side.SELL if held > 0 else Side.BUY
        account.reject(now, contract.key, side, abs(held), refused)


def _result(
    replayed: _Replayed, account: MarginAccount, books: Sequence[PaperBook],
    started: float, periods_per_year: float,
) -> BacktestResult:  # fmt: skip
    elapsed = time.perf_counter() - started
    fills = sorted((f for book in books for f in book.fills), key=lambda f: f.ts)
    trades = []
    for book in books:  # per instrument, a settlement closing its last trade
        closes = [_settlement_fill(s) for s in account.settlements if s.key == book.contract.key]
        trades += round_trips(sorted([*book.fills, *closes], key=lambda f: f.ts))
    return BacktestResult(
        ts=replayed.ts, equity=replayed.equity, position=replayed.position, fills=fills,
        trades=trades, measures=risk_measures(replayed.equity, periods_per_year),
        replay_seconds=elapsed, quotes=replayed.quotes, cash=replayed.cash,
        margin=replayed.margin, rejections=list(account.rejections),
        settlements=list(account.settlements), expired=replayed.expired,
    )  # fmt: skip


def _settlement_fill(settled: Settlement) -> BookedFill:
    side = "sell" if settled.quantity > 0 else "buy"
    return BookedFill("expiry", side, settled.price, abs(settled.quantity), "expiry",
                      settled.ts, settled.charges, settled.realised, ZERO)  # fmt: skip


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
    margin_rates: MarginRates = PAPER_MARGIN_RATES,
    price_band_pct: Decimal = PAPER_PRICE_BAND_PCT,
    execution: Execution = MARKET_ORDERS,
    day_ends: Sequence[int] | None = None,
) -> BacktestResult:
    """Trade towards ``targets[i]`` (signed units, read at bar ``i``'s close) with the
    orders of ``execution`` (market by default) on an account of ``capital``, under paper
    trading's buying power and margin; an order still open when the target changes is
    canceled first.  ``day_ends[i]``: when a DAY limit placed at bar ``i``'s end expires
    (its session's close, :func:`day_order_ends`); without, it is live for the next bar."""
    if len(targets) != len(bars):
        raise ValueError("one target position per bar")
    if day_ends is not None and len(day_ends) != len(bars):
        raise ValueError("one DAY expiry per bar")
    account = MarginAccount(capital, margin_rates, price_band_pct)
    book = PaperBook(contract, ZERO, fill_model or BestPriceFillModel(), charges, fees,
                     account=account)  # fmt: skip
    started = time.perf_counter()
    lane = _Lane(bars, book, targets, execution=execution, day_ends=day_ends)
    replayed = _replay([lane], account, half_spread_ticks)
    return _result(replayed, account, [book], started, periods_per_year)


def day_order_ends(bars: PriceBars, session_closes: Sequence[int]) -> list[int]:
    """When a DAY order placed at each bar's end expires, as paper's ``_session_window``
    has it: the first session close after that instant (the session in force, or the next
    one when the market is shut then); ``session_closes`` ascending, epoch seconds."""
    import bisect

    closes = list(session_closes)
    out = []
    for t in bars.ts:
        k = bisect.bisect_right(closes, t + bars.seconds)
        out.append(closes[k] if k < len(closes) else 2**62)
    return out


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
    open of its second bar in the window to the open of its last (orders placed at the
    closes before, as a signal's are: market ones fill at those opens) -- or, when it
    expires inside the window, until its expiry, where it settles.  ``settlement_price``:
    the underlying's settlement price on the expiry day, if known otherwise than from the
    spot's bars."""

    contract: Contract
    bars: PriceBars
    units: Decimal
    charges: ChargeSchedule | None = None
    settlement_price: Decimal | None = None
    day_ends: Sequence[int] | None = None  # per bar: a DAY order's expiry (day_order_ends)


def settlement_price(
    leg: ScheduledLeg, spots: Mapping[str, PriceBars]
) -> tuple[dt.date, Decimal] | None:
    """The expiry day and settlement price of a leg that expires inside the window, as paper
    trading finds it (lifecycle._settlement_prices): its underlying's close on the expiry
    day; a future whose underlying has none settles at its own close of that day."""
    expiry = leg.contract.expiry
    if expiry is None or not leg.contract.is_derivative:
        return None
    if leg.settlement_price is not None:
        return expiry, leg.settlement_price
    candidates = [spots[u] for u in (leg.contract.underlying,) if u is not None and u in spots]
    if leg.contract.kind == "future":
        candidates.append(leg.bars)
    for bars in candidates:
        for t, close in zip(bars.ts, bars.close, strict=True):
            if _instant(t).date() == expiry:
                return expiry, close
    return None


def backtest_schedule(
    legs: Sequence[ScheduledLeg],
    *,
    capital: Decimal,
    fill_model: FillModel | None = None,
    half_spread_ticks: int = 0,
    periods_per_year: float = 252.0,
    spots: Mapping[str, PriceBars] | None = None,
    margin_rates: MarginRates = PAPER_MARGIN_RATES,
    price_band_pct: Decimal = PAPER_PRICE_BAND_PCT,
    execution: Execution = MARKET_ORDERS,
) -> BacktestResult:
    """Each leg on its own book of the engine, all on one account of ``capital`` (buying
    power, margin and the hedges between legs as paper trading has them); ``spots``: the
    underlyings' bars by symbol (an option's margin marks, the settlement price).  Entries
    and exits are orders of ``execution``, as a signal's (:func:`backtest_targets`).  The
    equity is taken at every bar time of any leg."""
    spots = spots or {}
    account = MarginAccount(capital, margin_rates, price_band_pct)
    lanes: list[_Lane] = []
    books: list[PaperBook] = []
    for leg in legs:
        n = len(leg.bars)
        if n < 3:
            raise ValueError(f"{leg.contract.key}: a schedule needs at least 3 bars")
        book = PaperBook(leg.contract, ZERO, fill_model or BestPriceFillModel(), leg.charges,
                         account=account)  # fmt: skip
        books.append(book)
        expiry = settlement_price(leg, spots)
        if expiry is None:
            lanes.append(_Lane(leg.bars, book, [leg.units] * (n - 2) + [ZERO, ZERO],
                               execution=execution, day_ends=leg.day_ends))  # fmt: skip
            continue
        # Held to expiry: no closing order; bars after the expiry day are not traded.
        kept = sum(1 for t in leg.bars.ts if _instant(t).date() <= expiry[0])
        b = leg.bars
        bars = PriceBars(b.ts[:kept], b.open[:kept], b.high[:kept], b.low[:kept],
                         b.close[:kept], b.seconds)  # fmt: skip
        charges = leg.charges
        exercise = None if charges is None else _exercise_stt(charges)
        ends = None if leg.day_ends is None else leg.day_ends[:kept]
        lanes.append(_Lane(bars, book, [leg.units] * kept, expiry=expiry, exercise=exercise,
                           execution=execution, day_ends=ends))  # fmt: skip
    lanes += [_Lane(bars, spot=symbol) for symbol, bars in spots.items()]
    started = time.perf_counter()
    replayed = _replay(lanes, account, half_spread_ticks)
    replayed.position = [ZERO] * len(replayed.ts)  # several instruments: no one position
    return _result(replayed, account, books, started, periods_per_year)


def _exercise_stt(schedule: ChargeSchedule) -> ExerciseCharging:
    def stt(value: Decimal, day: dt.date) -> Decimal:
        return schedule.exercise(intrinsic_value=value, day=max(day, CHARGES_FLOOR)).total

    return stt


__all__ = [
    "CHARGES_FLOOR",
    "MARKET_ORDERS",
    "BacktestResult",
    "BookedFill",
    "Contract",
    "Execution",
    "MarginAccount",
    "OrderRefused",
    "PaperBook",
    "PriceBars",
    "Rejection",
    "ScheduledLeg",
    "Settlement",
    "backtest_schedule",
    "backtest_targets",
    "bar_quotes",
    "day_order_ends",
    "risk_measures",
    "round_trips",
    "settlement_price",
    "targets_from_probability",
]
