"""Where risk data comes from when it is not in the request: stored daily bars, and a paper
trading account's positions with the instrument master and the latest quotes.

Read-only.  A paper account is read through the trading feature's own use case
(``AccountService.positions``), so ownership is checked there: another user's account is a
404, as everywhere.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.analytics import returns as rt
from quantdesk.analytics import risk
from quantdesk.analytics.options import implied_vol
from quantdesk.derivatives.market_inputs import (
    DEFAULT_RATES,
    mark_price,
    spot_quote,
    years_to_expiry,
)
from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import Instrument, InstrumentType, OptionType, Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService, to_domain
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.platform.decimals import places_of
from quantdesk.platform.exceptions import InvalidInput, NotFound, QuantdeskError
from quantdesk.portfolios.valuation import PortfolioAnalytics
from quantdesk.risk.books import Book
from quantdesk.risk.service import Panel
from quantdesk.trading.service import AccountService

MIN_COMMON_DAYS = 3
CORRELATION_DAYS = 365
MIN_CORRELATION_DAYS = 30


async def bar_panel(
    db: AsyncSession, symbols: list[str], lookback_days: int, now: dt.datetime
) -> Panel:
    """Daily close-to-close returns of ``symbols`` over the days all of them have a bar."""
    store = BarStore(db)
    start = now - dt.timedelta(days=lookback_days)
    closes: dict[str, dict[int, float]] = {}
    last: dict[str, Decimal] = {}
    for key in dict.fromkeys(symbols):
        series = await store.series(key, Timeframe.D1, start=start, end=now, limit=10_000)
        if len(series) < 2:
            raise InvalidInput(
                f"{key} has {len(series)} daily bar(s) in the last {lookback_days} days; "
                "need at least two",
                field="symbols",
            )
        closes[series.key] = dict(zip(series.ts.tolist(), map(float, series.close), strict=True))
        last[series.key] = Decimal(series.close[-1])
    common = sorted(set.intersection(*(set(c) for c in closes.values())))
    if len(common) < MIN_COMMON_DAYS:
        raise InvalidInput(
            f"the symbols share only {len(common)} trading day(s) of bars", field="symbols"
        )
    names = list(closes)
    prices = np.array([[closes[n][t] for n in names] for t in common], dtype=np.float64)
    return Panel(names, rt.simple_returns(prices), last)


async def _instruments(db: AsyncSession, keys: list[str]) -> dict[str, Instrument]:
    rows = await InstrumentService(db).get_rows(keys)
    return {key: to_domain(row) for key, row in rows.items()}


async def account_panel(
    ctx: AppContext,
    db: AsyncSession,
    user_id: uuid.UUID,
    account_id: uuid.UUID,
    lookback_days: int,
    now: dt.datetime,
) -> tuple[Panel, dict[str, float], list[str]]:
    """Returns of the account's non-option positions and their weights by market value.

    Options are left out (their daily bars do not describe tomorrow's option; the scenario
    endpoint reprices them instead); so are positions without a price.  Weights are each
    position's market value over the sum of them (futures at notional value).
    """
    positions = (await AccountService(ctx, db).positions(user_id, account_id)).items
    instruments = await _instruments(db, [p.instrument for p in positions])
    values: dict[str, float] = {}
    skipped: list[str] = []
    for p in positions:
        listed = instruments.get(p.instrument)
        if p.quantity == 0:
            continue
        if listed is not None and listed.type is InstrumentType.OPTION:
            skipped.append(f"{p.instrument}: an option (see /scenarios)")
            continue
        if p.market_value is None:
            skipped.append(f"{p.instrument}: no price")
            continue
        if listed is not None and listed.type is InstrumentType.FUTURE and p.last_price:
            values[p.instrument] = float(p.quantity * p.last_price * listed.multiplier)
        else:
            values[p.instrument] = float(p.market_value)
    if not values:
        raise InvalidInput("the account holds no priced position other than options")
    panel, weights = await _weighted_panel(db, values, lookback_days, now, "account")
    return panel, weights, skipped


async def _weighted_panel(
    db: AsyncSession, values: dict[str, float], lookback_days: int, now: dt.datetime, what: str
) -> tuple[Panel, dict[str, float]]:
    """The bar panel of ``values``' instruments and each one's share of their net value."""
    total = sum(values.values())
    if not total > 0:
        raise InvalidInput(f"the {what}'s positions have no positive net market value")
    panel = await bar_panel(db, list(values), lookback_days, now)
    return panel, {n: values[n] / total for n in panel.names}


def _rate(currency: str) -> float:
    return DEFAULT_RATES.get(currency, DEFAULT_RATES["USD"])


@dataclass(frozen=True, slots=True)
class Position:
    instrument: str
    quantity: Decimal  # signed units (the instrument master's multiplier applies)
    mark: Decimal | None  # the latest price to imply an option's volatility from


async def account_book(
    ctx: AppContext, db: AsyncSession, user_id: uuid.UUID, account_id: uuid.UUID, now: dt.datetime
) -> Book:
    """A paper account's positions as an option book (see :func:`book_of`)."""
    account = await AccountService(ctx, db).get(user_id, account_id)
    items = (await AccountService(ctx, db).positions(user_id, account_id)).items
    positions = [Position(p.instrument, p.quantity, p.last_price) for p in items]
    return await book_of(ctx, db, positions, account.currency, now)


async def portfolio_book(
    ctx: AppContext,
    db: AsyncSession,
    user_id: uuid.UUID,
    portfolio_id: uuid.UUID,
    now: dt.datetime,
) -> Book:
    """A portfolio's holdings (its F&O positions and their underlyings) as an option book."""
    held = await PortfolioAnalytics(ctx, db).holdings(user_id, portfolio_id)
    positions = [Position(h.instrument, h.quantity, h.price) for h in held.items]
    return await book_of(ctx, db, positions, held.currency, now)


async def book_of(
    ctx: AppContext,
    db: AsyncSession,
    positions: list[Position],
    currency: str,
    now: dt.datetime,
) -> Book:
    """Positions as an option book: options with IVs implied from their marks at the
    underlying's spot (the currency's default rate, time to the expiry session's close),
    futures, and cash positions in any underlying of the book; the rest in ``skipped``."""
    instruments = await _instruments(db, [p.instrument for p in positions])
    quotes = QuoteService(ctx.cache, ctx.bus)
    rate = _rate(currency)
    legs: list[risk.BookLeg] = []
    spots: dict[str, float] = {}
    spot_keys: dict[str, str] = {}
    skipped: list[str] = []
    cash_positions: list[tuple[str, Instrument, float]] = []
    for p in positions:
        if p.quantity == 0:
            continue
        listed = instruments.get(p.instrument)
        if listed is None:
            skipped.append(f"{p.instrument}: not in the instrument master")
            continue
        units = float(p.quantity * listed.multiplier)
        if listed.type not in (InstrumentType.OPTION, InstrumentType.FUTURE):
            cash_positions.append((listed.symbol, listed, units))
            continue
        root = listed.underlying or listed.symbol
        if listed.expiry is None:
            skipped.append(f"{p.instrument}: no expiry in the instrument master")
            continue
        try:
            spot_row = await spot_quote(db, quotes, root, listed.exchange)
            years = years_to_expiry(listed.exchange, listed.expiry, now)
        except (NotFound, InvalidInput) as exc:
            skipped.append(f"{p.instrument}: {exc.detail}")
            continue
        spot = float(mark_price(spot_row, places_of(spot_row.last)) or spot_row.last)
        spots.setdefault(root, spot)
        spot_keys.setdefault(root, spot_row.key)
        if listed.type is InstrumentType.FUTURE:
            legs.append(risk.BookLeg(root, "future", units, expiry=years))
            continue
        kind: Literal["call", "put"] = "call" if listed.option_type is OptionType.CALL else "put"
        mark = p.mark
        if mark is None or listed.strike is None:
            skipped.append(f"{p.instrument}: no price to imply a volatility from")
            continue
        iv = implied_vol(float(mark), kind, spots[root], float(listed.strike), years, rate)
        vol = float(iv.vol)
        if not (math.isfinite(vol) and vol > 0):
            skipped.append(f"{p.instrument}: its price {mark} implies no volatility")
            continue
        legs.append(
            risk.BookLeg(root, kind, units, strike=float(listed.strike), expiry=years, iv=vol)
        )
    for symbol, listed, units in cash_positions:
        if symbol in spots:
            legs.append(risk.BookLeg(symbol, "underlying", units))
        else:
            skipped.append(f"{listed.key}: no derivative of it in the book")
    if not legs:
        raise InvalidInput(
            "the account holds no option or future to revalue"
            + (f" ({'; '.join(skipped)})" if skipped else "")
        )
    try:
        book = risk.OptionBook.of(legs, spots, rate=rate)
    except ValueError as exc:  # pragma: no cover - legs were validated one by one
        raise QuantdeskError(str(exc)) from exc
    return Book(book, skipped, await _correlation(db, book, spot_keys, now))


async def _correlation(
    db: AsyncSession, book: risk.OptionBook, spot_keys: dict[str, str], now: dt.datetime
) -> list[list[float]] | None:
    """Correlation of the book's underlyings over a year of their spots' daily bars; ``None``
    (independent) for one underlying or when the bars do not allow it."""
    if len(book.underlyings) < 2 or set(book.underlyings) - set(spot_keys):
        return None
    keys = [spot_keys[name] for name in book.underlyings]
    try:
        panel = await bar_panel(db, keys, CORRELATION_DAYS, now)
    except (InvalidInput, NotFound):
        return None
    if panel.returns.shape[0] < MIN_CORRELATION_DAYS:
        return None
    by_key = {key: i for i, key in enumerate(panel.names)}
    order = [by_key[key] for key in keys]
    corr = np.atleast_2d(np.corrcoef(panel.returns[:, order], rowvar=False))
    if not np.all(np.isfinite(corr)):
        return None
    return [[float(x) for x in row] for row in corr.tolist()]


# --- portfolios (issue 14's PortfolioAnalytics is the entry point) ------------------------


async def portfolio_panel(
    ctx: AppContext,
    db: AsyncSession,
    user_id: uuid.UUID,
    portfolio_id: uuid.UUID,
    lookback_days: int,
    today: dt.date,
) -> Panel:
    """The portfolio's daily time-weighted returns (its securities, flows removed).

    The portfolios feature answers one row per calendar day, carrying the last price over
    weekends, holidays and a today without a new price.  Rows on which nothing moved (the
    value equals the day before's, no money in or out) are those days and are dropped, as
    are the days before anything was held.
    """
    series = await PortfolioAnalytics(ctx, db).daily_series(
        user_id, portfolio_id, start=today - dt.timedelta(days=lookback_days), end=today
    )
    if len(series) == 0:
        raise InvalidInput("the portfolio has no transactions in the lookback window")
    previous = np.concatenate([[0.0], series.value[:-1]])
    quiet = (series.value == previous) & (series.inflow == 0) & (series.outflow == 0)
    keep = (previous > 0) & ~quiet
    returns = np.asarray(series.returns[keep], dtype=np.float64)
    if returns.size < MIN_COMMON_DAYS:
        raise InvalidInput(
            f"the portfolio has {returns.size} trading day(s) of returns in the window; "
            f"need at least {MIN_COMMON_DAYS}"
        )
    return Panel(["portfolio"], returns[:, None], {})


async def portfolio_weights(
    ctx: AppContext,
    db: AsyncSession,
    user_id: uuid.UUID,
    portfolio_id: uuid.UUID,
    lookback_days: int,
    now: dt.datetime,
) -> tuple[Panel, dict[str, float]] | str:
    """The daily bar returns of the portfolio's priced holdings and their weights by market
    value (shorts negative, options left out as for an account), for per-holding VaR
    components; or why there are none (fewer than two such holdings, too few bars)."""
    held = await PortfolioAnalytics(ctx, db).holdings(user_id, portfolio_id)
    instruments = await _instruments(db, [item.instrument for item in held.items])
    values: dict[str, float] = {}
    for item in held.items:
        listed = instruments.get(item.instrument)
        if item.quantity == 0 or item.market_value is None:
            continue
        if listed is None or listed.type is not InstrumentType.OPTION:
            values[item.instrument] = float(item.market_value)
    if len(values) < 2:
        return "components: fewer than two priced holdings (options aside)"
    try:
        return await _weighted_panel(db, values, lookback_days, now, "portfolio")
    except InvalidInput as exc:
        return f"components: {exc.detail}"


@dataclass(frozen=True, slots=True)
class Holding:
    quantity: Decimal  # units
    unit_value: Decimal  # price x multiplier x FX, in the portfolio's currency
    lot_size: int


async def portfolio_holdings(
    ctx: AppContext, db: AsyncSession, user_id: uuid.UUID, portfolio_id: uuid.UUID
) -> tuple[str, dict[str, Holding], list[str]]:
    """The portfolio's priced holdings (currency, by instrument key) and what was skipped."""
    held = await PortfolioAnalytics(ctx, db).holdings(user_id, portfolio_id)
    instruments = await _instruments(db, [item.instrument for item in held.items])
    out: dict[str, Holding] = {}
    skipped: list[str] = []
    for item in held.items:
        if item.price is None or item.market_value is None:
            skipped.append(f"{item.instrument}: no price")
            continue
        if item.quantity < 0:
            skipped.append(f"{item.instrument}: a short position (long-only optimisation)")
            continue
        listed = instruments.get(item.instrument)
        lot = int(listed.lot_size) if listed is not None and listed.lot_size >= 1 else 1
        out[item.instrument] = Holding(
            quantity=item.quantity,
            unit_value=item.price * item.multiplier * item.fx_rate,
            lot_size=lot,
        )
    return held.currency, out, skipped
