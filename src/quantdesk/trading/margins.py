"""F&O margin with hedges recognised: the account's futures and options positions as
``engine.margin`` legs, the report of what they require, the pre-trade check of an order
against it, and the ledger kept equal to it.

The model is engine.margin's (a percentage model, not SPAN; docs/trading.md, "Margin"): each
leg's naked requirement, and per underlying and expiry the smaller of the legs' naked sum
and the group's worst payout at expiry.  The rates come from the trading settings
(``trading_margin_futures_pct`` for futures, ``trading_margin_short_options_pct`` for short
options, with a floor of 5% or that rate if lower).

The ledger follows the report: after every F&O fill the account's F&O positions block
exactly their share of the requirement (one ``margin`` journal entry moving the
difference between cash and the margin book), so a hedge placed after its naked leg
releases margin, and an iron condor blocks its maximum loss.  Marks: each position at its
last price (the filled instrument at its fill price); an option's underlying at its spot's
last price, or at the option's strike when the spot has never been quoted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.domain import Exchange
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.instruments.underlyings import spot_candidates
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.settings import Settings
from quantdesk.trading.bookkeeping import InstrumentFacts, facts_of
from quantdesk.trading.engine.margin import (
    MarginCheck,
    MarginLeg,
    MarginRates,
    MarginReport,
    margin_report,
    order_cash,
    with_order,
)
from quantdesk.trading.engine.positions import money
from quantdesk.trading.ledger import Book, EntryKind, move, post
from quantdesk.trading.models import PositionRow, TradingAccount

ZERO = Decimal(0)
FLOOR_PCT = Decimal(5)


def margin_rates(settings: Settings) -> MarginRates:
    short = settings.trading_margin_short_options_pct
    return MarginRates(
        futures_pct=settings.trading_margin_futures_pct,
        exposure_pct=ZERO,
        short_option_pct=short,
        short_option_floor_pct=min(FLOOR_PCT, short),
        intraday_pct=settings.trading_margin_intraday_pct,
    )


def _spot_keys(facts: InstrumentFacts) -> list[str]:
    if facts.kind != "option" or not facts.underlying:
        return []
    try:
        return spot_candidates(facts.underlying, Exchange(facts.exchange))
    except ValueError:
        return []


def margin_leg(
    facts: InstrumentFacts, quantity: Decimal, price: Decimal, spot: Decimal | None
) -> MarginLeg:
    """A signed quantity of an F&O instrument as the margin model sees it."""
    return MarginLeg(
        key=facts.key,
        kind=facts.kind,
        quantity=quantity,
        price=price,
        multiplier=facts.multiplier,
        underlying=facts.underlying,
        underlying_price=(spot if spot is not None else facts.strike)
        if facts.kind == "option"
        else None,
        strike=facts.strike,
        option_type=facts.option_type,
        expiry=facts.expiry,
    )


@dataclass(frozen=True, slots=True)
class Held:
    position: PositionRow
    facts: InstrumentFacts
    leg: MarginLeg


@dataclass(slots=True)
class Marks:
    """Last prices by instrument key, read once."""

    prices: dict[str, Decimal]

    def spot(self, facts: InstrumentFacts) -> Decimal | None:
        return next((self.prices[k] for k in _spot_keys(facts) if k in self.prices), None)


async def read_marks(ctx: AppContext, facts: Sequence[InstrumentFacts]) -> Marks:
    keys = sorted({f.key for f in facts} | {k for f in facts for k in _spot_keys(f)})
    quotes = await QuoteService(ctx.cache, ctx.bus).get_many(keys) if keys else {}
    return Marks({key: q.last for key, q in quotes.items() if q.last is not None})


async def derivative_book(
    db: AsyncSession,
    ctx: AppContext,
    account_id: uuid.UUID,
    *,
    prices: dict[str, Decimal] | None = None,
    extra: Sequence[InstrumentFacts] = (),
) -> tuple[list[Held], Marks]:
    """The account's F&O positions (and any holding margin) as margin legs at their marks;
    ``prices`` override the marks (a fill's price), ``extra``: instruments to mark too."""
    query = select(PositionRow).where(PositionRow.account_id == account_id)
    positions = [p for p in (await db.execute(query)).scalars() if p.quantity or p.margin]
    rows = await InstrumentService(db).get_rows(sorted({p.instrument for p in positions}))
    facts = {key: facts_of(row) for key, row in rows.items()}
    derivative = [
        p for p in positions if p.instrument in facts and facts[p.instrument].is_derivative
    ]
    marks = await read_marks(ctx, [*(facts[p.instrument] for p in derivative), *extra])
    marks.prices.update(prices or {})
    held = []
    for position in derivative:
        f = facts[position.instrument]
        price = marks.prices.get(f.key)
        if price is None:  # never quoted: at its average price
            units = position.quantity * position.multiplier
            price = abs(position.cost / units) if units else ZERO
        held.append(Held(position, f, margin_leg(f, position.quantity, price, marks.spot(f))))
    return held, marks


def report_of(held: Sequence[Held], settings: Settings) -> MarginReport:
    return margin_report([h.leg for h in held if h.leg.quantity], margin_rates(settings))


async def rebalance(
    db: AsyncSession,
    ctx: AppContext,
    settings: Settings,
    account: TradingAccount,
    prices: dict[str, Decimal],
) -> None:
    """Set each F&O position's blocked margin to its share of the hedge-aware requirement,
    in one balanced entry.  Raises ``InsufficientFunds`` when cash cannot cover an increase
    (the caller's savepoint rolls the fill back)."""
    held, _ = await derivative_book(db, ctx, account.id, prices=prices)
    report = report_of(held, settings)
    total = ZERO
    for item in held:
        share = report.for_key(item.leg.key) if item.leg.quantity else None
        target = ZERO if share is None else share.required
        total += target - item.position.margin
        item.position.margin = target
    if total == 0:
        return
    postings = (
        move(total, to=Book.MARGIN, source=Book.CASH)
        if total > 0
        else move(-total, to=Book.CASH, source=Book.MARGIN)
    )
    await post(
        db,
        account,
        EntryKind.MARGIN,
        postings,
        memo=f"F&O margin set to the requirement {report.required}",
    )


def order_check(
    held: Sequence[Held],
    orders: Sequence[MarginLeg],
    *,
    available: Decimal,
    charges: Decimal,
    settings: Settings,
) -> MarginCheck:
    """engine.margin.check_order for one or several order legs filling together (an mleg
    order's F&O legs): margin after less before, plus the premium, plus charges."""
    rates = margin_rates(settings)
    book = [h.leg for h in held if h.leg.quantity]
    before = margin_report(book, rates).required
    after_book = list(book)
    premium = ZERO
    for order in orders:
        after_book = with_order(after_book, order)
        premium += order_cash(order)
    after = margin_report(after_book, rates).required
    required = money(after - before + premium + charges)
    return MarginCheck(before, after, premium, charges, required, available)
