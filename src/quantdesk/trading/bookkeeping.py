"""What orders and fills do to an account's money: reservations, margin, positions, P&L.

Every function here runs inside the caller's transaction, with the account row locked, and
writes through ``ledger.post`` so each movement is a balanced journal entry (the books are
described in ``ledger``).  The rules:

* A buy of an equity or an option reserves its notional (limit price, or the last price
  plus the price band for market orders) plus its estimated charges; futures, short options and
  intraday (MIS) equity shorts reserve their margin: a percentage of notional per segment
  (short options: of strike x quantity).  The closing part of an order (it reduces an open
  position) reserves nothing.
* An equity short's proceeds are blocked with its margin until it is covered.
* A fill first releases the reservation of the filled part, then pays: an opening fill
  moves its value between cash and the ``positions`` book (futures pay nothing but their
  margin), a closing fill removes the proportional cost basis and realises the difference.
  Average cost: partial reductions remove cost in proportion, rounded to 4 places; the last
  unit removes what is left, so a closed position has no cost left.
* Every fill pays its charges (``charges_for``: the exchange's schedule by default), itemised
  on the fill and posted to the ``fees`` book.
* Futures are marked to market daily: the variation since the last settlement moves into
  cash (and realised P&L), and the position's cost is reset to the settlement price.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.calendars.sessions import get_calendar
from quantdesk.marketdata.models import CorporateActionRow, InstrumentRow
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.settings import Settings
from quantdesk.trading.engine.charges import DEFAULT_CHARGES, ChargesUnavailable, fill_charges
from quantdesk.trading.engine.fees import FeeSchedule
from quantdesk.trading.engine.positions import Position, apply_fill, money, split_open_close, tidy
from quantdesk.trading.engine.settlement import (
    ActionEffect,
    Bonus,
    CorporateAction,
    Dividend,
    ExpirySettlement,
    Split,
    apply_corporate_action,
    settle_option,
    settlement_day,
    unsettled_quantity,
)
from quantdesk.trading.engine.settlement import settle_future as settle_future_at_expiry
from quantdesk.trading.ledger import Book, EntryKind, Posting, move, post
from quantdesk.trading.models import FillRow, OrderRow, PositionRow, TradingAccount
from quantdesk.trading.writes import RowSink

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class InstrumentFacts:
    key: str
    exchange: str
    kind: str  # equity, etf, index, future, option
    currency: str
    tick_size: Decimal
    lot_size: Decimal
    multiplier: Decimal
    strike: Decimal | None
    expiry: dt.date | None
    active: bool
    underlying: str | None = None
    option_type: str | None = None

    @property
    def is_derivative(self) -> bool:
        return self.kind in ("future", "option")


def facts_of(row: InstrumentRow) -> InstrumentFacts:
    return InstrumentFacts(
        key=f"{row.exchange}:{row.symbol}",
        exchange=row.exchange,
        kind=row.type,
        currency=row.currency,
        tick_size=row.tick_size,
        lot_size=row.lot_size,
        multiplier=row.multiplier,
        strike=row.strike,
        expiry=row.expiry,
        active=row.active,
        underlying=row.underlying,
        option_type=row.option_type,
    )


def margin_rate(
    settings: Settings, facts: InstrumentFacts, product: str, opens_short: bool
) -> Decimal | None:
    """The fraction of notional an opening trade blocks, or None when it pays in full."""
    if facts.kind == "future":
        return settings.trading_margin_futures_pct / HUNDRED
    if facts.kind == "option":
        return settings.trading_margin_short_options_pct / HUNDRED if opens_short else None
    if opens_short:
        return settings.trading_margin_intraday_pct / HUNDRED
    return None


def margin_notional(facts: InstrumentFacts, units: Decimal, price: Decimal) -> Decimal:
    # Short options margin on the strike (the exposure), not on the premium received.
    basis = facts.strike if facts.kind == "option" and facts.strike is not None else price
    return units * basis * facts.multiplier


def charges_for(
    settings: Settings,
    facts: InstrumentFacts,
    *,
    product: str,
    side: str,
    price: Decimal,
    quantity: Decimal,
    day: dt.date,
    order_value_before: Decimal = ZERO,
) -> dict[str, Decimal]:
    """The itemised charges of a fill (or of a whole order, as an estimate), non-zero lines
    only: the exchange's schedule (``engine.charges``: brokerage, STT, exchange and SEBI
    fees, stamp duty, GST; SEC fee and TAF in the US), or the flat ``trading_fee_bps``
    schedule when ``trading_charges`` is ``flat`` or the exchange has no schedule."""
    if settings.trading_charges == "none":
        return {}
    if settings.trading_charges == "exchange":
        try:
            charges = fill_charges(
                exchange=facts.exchange,
                kind=facts.kind,
                product=product,
                side=side,
                price=price,
                quantity=quantity,
                day=day,
                multiplier=facts.multiplier,
                order_value_before=order_value_before,
            )
        except ChargesUnavailable:
            pass  # an exchange without a schedule (the demo's): the flat schedule
        else:
            return {name: amount for name, amount in charges.lines().items() if amount}
    value = quantity * price * facts.multiplier
    fee = FeeSchedule(settings.trading_fee_bps, settings.trading_fee_minimum).fee(value)
    return {"brokerage": fee} if fee else {}


def trading_day(facts: InstrumentFacts, at: dt.datetime) -> dt.date:
    """The exchange's local date of ``at``: the day whose rates apply."""
    return get_calendar(facts.exchange).local_date(at)


# Where intraday (MIS) positions are squared off before the close, as Indian brokers do.
SQUARE_OFF_EXCHANGES = frozenset({"NSE", "BSE", "NFO"})
SQUARE_OFF_REASON = "intraday (MIS) square-off before the close"


def square_off_from(exchange: str, now: dt.datetime, minutes: int) -> dt.datetime | None:
    """When the MIS square-off window of the session open at ``now`` began (``minutes``
    before its close), if ``now`` is inside that window; else ``None``."""
    if minutes <= 0 or exchange not in SQUARE_OFF_EXCHANGES:
        return None
    calendar = get_calendar(exchange)
    for session in calendar.sessions_on(calendar.local_date(now)):
        start = session.close_utc - dt.timedelta(minutes=minutes)
        if session.contains(now) and now >= start:
            return start
    return None


def required_reservation(
    settings: Settings,
    facts: InstrumentFacts,
    *,
    side: str,
    product: str,
    quantity: Decimal,
    price: Decimal,
    position_qty: Decimal,
) -> Decimal:
    """Cash to set aside for ``quantity`` at ``price`` given the current position."""
    signed = quantity if side == "buy" else -quantity
    _, opening = split_open_close(position_qty, signed)
    if opening == 0:
        return ZERO
    opens_short = signed < 0
    rate = margin_rate(settings, facts, product, opens_short)
    value = opening * price * facts.multiplier
    if rate is not None:
        needed = margin_notional(facts, opening, price) * rate
    else:
        needed = value if side == "buy" else ZERO
    charges = charges_for(
        settings, facts, product=product, side=side, price=price, quantity=opening,
        day=trading_day(facts, utcnow()),
    )  # fmt: skip
    return money(needed + sum(charges.values(), ZERO))


async def reserve(db: RowSink, account: TradingAccount, order: OrderRow, amount: Decimal) -> None:
    if amount <= 0:
        return
    await post(
        db,
        account,
        EntryKind.RESERVE,
        move(amount, to=Book.RESERVED, source=Book.CASH),
        reference=str(order.id),
        memo=f"reserved for {order.side} {order.quantity} {order.instrument}",
    )
    order.reserved += amount


async def release(
    db: RowSink, account: TradingAccount, order: OrderRow, amount: Decimal | None = None
) -> None:
    """Give back ``amount`` of the order's reservation (all of it by default)."""
    amount = order.reserved if amount is None else min(amount, order.reserved)
    if amount <= 0:
        return
    await post(
        db,
        account,
        EntryKind.RELEASE,
        move(amount, to=Book.CASH, source=Book.RESERVED),
        reference=str(order.id),
        memo=f"released from {order.side} {order.instrument}",
    )
    order.reserved = order.reserved - amount or ZERO  # "0", not "0.0000", once all is back


@dataclass(frozen=True, slots=True)
class FillOutcome:
    fill: FillRow
    position: PositionRow
    realised: Decimal


async def book_fill(
    db: AsyncSession,
    settings: Settings,
    account: TradingAccount,
    order: OrderRow,
    facts: InstrumentFacts,
    *,
    execution_id: str,
    price: Decimal,
    quantity: Decimal,
    liquidity: str,
    source_id: str,
    ts: dt.datetime,
    hedged_margin: bool = False,
    sink: RowSink | None = None,
) -> FillOutcome:
    """Book one fill of ``order``: reservation, position, cash, P&L, fee, the fill row.

    ``sink``: where the new rows (journal entries, the fill) go, ``db`` by default; the
    position is read and kept in ``db``.

    ``hedged_margin``: an F&O fill blocks no margin of its own here; the caller sets the
    account's F&O margin to the hedge-aware requirement afterwards (``margins.rebalance``).

    Raises ``InsufficientFunds`` (from ``ledger.post``) when the fill would take cash below
    zero; the caller rolls its savepoint back and cancels the rest of the order.
    """
    remaining_before = order.quantity - order.filled_quantity
    # Release the filled part's reservation (all of it on the last fill).
    share = (
        order.reserved
        if quantity >= remaining_before
        else money(order.reserved * quantity / remaining_before)
    )
    rows = db if sink is None else sink
    await release(rows, account, order, share)

    position = await db.get(PositionRow, (account.id, order.instrument, order.product))
    if position is None:
        position = PositionRow(
            account_id=account.id,
            instrument=order.instrument,
            product=order.product,
            quantity=ZERO,
            cost=ZERO,
            realised_pnl=ZERO,
            margin=ZERO,
            multiplier=facts.multiplier,
            is_future=facts.kind == "future",
            updated_at=ts,
        )
        db.add(position)
    signed = quantity if order.side == "buy" else -quantity
    held = abs(position.quantity)
    effect = apply_fill(
        Position(position.quantity, position.cost, position.realised_pnl),
        signed,
        price,
        facts.multiplier,
    )
    futures = facts.kind == "future"
    postings: list[Posting] = []
    if effect.closing:
        if futures:  # futures move only their P&L in cash; the notional never changed hands
            postings += [Posting(Book.CASH, effect.realised)]
        else:
            postings += [
                Posting(Book.CASH, effect.closing_value),
                Posting(Book.POSITIONS, -effect.removed_cost),
            ]
        postings.append(Posting(Book.REALISED_PNL, -effect.realised))
        freed = (
            position.margin
            if effect.closing == held
            else money(position.margin * effect.closing / held)
        )
        postings += move(freed, to=Book.CASH, source=Book.MARGIN)
        position.margin -= freed
    if effect.opening:
        if not futures:
            postings += [
                Posting(Book.POSITIONS, effect.opening_value),
                Posting(Book.CASH, -effect.opening_value),
            ]
        rate = margin_rate(settings, facts, order.product, signed < 0)
        blocked = ZERO
        if rate is not None and not (hedged_margin and facts.is_derivative):
            blocked = money(margin_notional(facts, effect.opening, price) * rate)
        if signed < 0 and not facts.is_derivative:
            # An equity short's proceeds are not buying power: they stay blocked until the
            # short is covered, so the cover can always be paid for.
            blocked += -effect.opening_value
        if blocked:
            postings += move(blocked, to=Book.MARGIN, source=Book.CASH)
            position.margin += blocked
    position.quantity = tidy(effect.position.quantity)
    position.cost = tidy(effect.position.cost)
    position.realised_pnl = tidy(effect.position.realised_pnl)
    realised = tidy(effect.realised)
    await post(
        rows,
        account,
        EntryKind.FILL,
        postings,
        reference=execution_id,
        memo=f"{order.side} {quantity} {order.instrument} @ {price}",
    )
    charges = charges_for(
        settings, facts, product=order.product, side=order.side, price=price,
        quantity=quantity, day=trading_day(facts, ts),
        order_value_before=order.filled_value * facts.multiplier,
    )  # fmt: skip
    fee = sum(charges.values(), ZERO)
    if fee:
        await post(
            rows,
            account,
            EntryKind.FEE,
            move(fee, to=Book.FEES, source=Book.CASH),
            reference=execution_id,
            memo=f"charges on {execution_id}: "
            + ", ".join(f"{name} {amount}" for name, amount in charges.items()),
        )
    position.updated_at = ts
    order.filled_value = tidy(order.filled_value + quantity * price)
    order.filled_quantity += quantity
    fill = FillRow(
        execution_id=execution_id,
        order_id=order.id,
        account_id=account.id,
        instrument=order.instrument,
        side=order.side,
        product=order.product,
        price=price,
        quantity=quantity,
        fee=fee,
        charges=orjson.dumps({name: str(amount) for name, amount in charges.items()}).decode(),
        realised_pnl=realised,
        liquidity=liquidity,
        source_id=source_id,
        ts=ts,
    )
    rows.add(fill)
    return FillOutcome(fill, position, realised)


async def settle_future(
    db: AsyncSession, account: TradingAccount, position: PositionRow, price: Decimal, day: dt.date
) -> Decimal:
    """Daily mark-to-market of one futures position at ``price``; returns the variation.

    A loss larger than the free cash is taken from the position's margin first (a margin
    call in a real account); the position's cost becomes its value at ``price``.
    """
    value = position.quantity * price * position.multiplier
    variation = value - position.cost
    postings = [Posting(Book.CASH, variation), Posting(Book.REALISED_PNL, -variation)]
    if variation < 0 and account.cash + variation < 0:
        shortfall = min(-(account.cash + variation), position.margin)
        postings += move(shortfall, to=Book.CASH, source=Book.MARGIN)
        position.margin -= shortfall
    await post(
        db,
        account,
        EntryKind.SETTLEMENT,
        postings,
        reference=f"{position.instrument}:{day.isoformat()}",
        memo=f"daily settlement of {position.quantity} {position.instrument} @ {price}",
    )
    position.cost = value
    position.realised_pnl += variation
    position.settled_on = day
    return variation


async def settle_expiry(
    db: AsyncSession,
    settings: Settings,
    account: TradingAccount,
    position: PositionRow,
    facts: InstrumentFacts,
    underlying_price: Decimal,
    day: dt.date,
) -> ExpirySettlement:
    """Close an expired F&O position: an option at its intrinsic value against the
    underlying's settlement price, a future at that price (its final settlement price).

    The position's blocked margin comes back to cash in the same entry (so a short's
    payout can use it); a long exercised in the money pays STT on its settlement value
    (``ChargeSchedule.exercise``) as a separate ``fee`` entry.  Raises ``InsufficientFunds``
    when even the margin cannot cover what a short owes (a margin call: it stays open).
    """
    held = Position(position.quantity, position.cost, position.realised_pnl)
    if facts.kind == "option":
        if facts.option_type is None or facts.strike is None:
            raise ValueError(f"{facts.key} is an option without a strike or a type")
        done = settle_option(
            held,
            option_type=facts.option_type,
            strike=facts.strike,
            underlying_settlement_price=underlying_price,
            multiplier=facts.multiplier,
        )
        postings = [
            Posting(Book.CASH, done.cash),
            Posting(Book.POSITIONS, -done.removed_cost),
        ]
    else:
        done = settle_future_at_expiry(
            held, final_settlement_price=underlying_price, multiplier=facts.multiplier
        )
        postings = [Posting(Book.CASH, done.cash)]
    postings.append(Posting(Book.REALISED_PNL, -done.realised))
    postings += move(position.margin, to=Book.CASH, source=Book.MARGIN)
    verb = "exercised" if done.exercised_value else "assigned" if done.assigned else "expired"
    await post(
        db,
        account,
        EntryKind.EXPIRY,
        postings,
        reference=f"{position.instrument}:{day.isoformat()}",
        memo=f"{position.quantity} {position.instrument} {verb} at expiry @ {done.price} "
        f"(underlying {underlying_price})",
    )
    position.margin = ZERO
    position.quantity = tidy(done.position.quantity)
    position.cost = tidy(done.position.cost)
    position.realised_pnl = tidy(done.position.realised_pnl)
    position.settled_on = day
    if done.exercised_value and settings.trading_charges == "exchange":
        try:
            schedule = DEFAULT_CHARGES.for_instrument(facts.exchange, facts.kind, position.product)
            stt = schedule.exercise(intrinsic_value=done.exercised_value, day=day)
        except ChargesUnavailable:
            stt = None
        if stt is not None and stt.total:
            await post(
                db,
                account,
                EntryKind.FEE,
                move(stt.total, to=Book.FEES, source=Book.CASH),
                reference=f"{position.instrument}:{day.isoformat()}",
                memo=f"stt on exercise of {position.instrument}: {stt.total}",
            )
    return done


def action_of(row: CorporateActionRow) -> CorporateAction:
    if row.kind == "split" and row.old is not None and row.new is not None:
        return Split(row.old, row.new)
    if row.kind == "bonus" and row.bonus is not None and row.held is not None:
        return Bonus(row.bonus, row.held)
    if row.kind == "dividend" and row.per_share is not None:
        return Dividend(row.per_share)
    raise ValueError(f"corporate action {row.id} lacks the terms of a {row.kind}")


async def apply_action(
    db: AsyncSession, account: TradingAccount, position: PositionRow, row: CorporateActionRow
) -> ActionEffect:
    """Apply a corporate action to one holding, as one ``corporate_action`` entry: a split or
    a bonus changes the quantity and keeps the cost (a fraction paid in lieu takes its share
    of the cost out and realises the difference); a dividend pays quantity x per share into
    cash and realised P&L (a short pays it).  Raises ``InsufficientFunds`` when a short
    cannot pay its dividend."""
    held = Position(position.quantity, position.cost, position.realised_pnl)
    effect = apply_corporate_action(held, action_of(row), fraction_price=row.fraction_price)
    if row.kind == "dividend":
        postings = [Posting(Book.CASH, effect.cash), Posting(Book.REALISED_PNL, -effect.cash)]
        realised = effect.cash
    else:
        removed = position.cost - effect.position.cost
        postings = [
            Posting(Book.CASH, effect.cash),
            Posting(Book.POSITIONS, -removed),
            Posting(Book.REALISED_PNL, -effect.realised),
        ]
        realised = effect.realised
    what = (
        f"dividend {row.per_share} per share"
        if row.kind == "dividend"
        else f"{row.kind} to {tidy(effect.position.quantity)}"
        + (f", {effect.fraction} in lieu @ {row.fraction_price}" if effect.cash else "")
    )
    await post(
        db,
        account,
        EntryKind.CORPORATE_ACTION,
        postings,
        reference=f"{row.instrument}:{row.kind}:{row.ex_date.isoformat()}",
        memo=f"{position.quantity} {row.instrument}: {what}",
    )
    position.quantity = tidy(effect.position.quantity)
    position.cost = tidy(effect.position.cost)
    position.realised_pnl = tidy(position.realised_pnl + realised)
    return effect


# Delivery buys newer than this may still be unsettled (T+1 across the longest holiday run).
T1_LOOKBACK = dt.timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery (CNC) holding split by settlement: what has settled into holdings and
    what was bought in the last session(s) and settles T+1 (``settles_on``)."""

    settled: Decimal
    t1: Decimal
    settles_on: dt.date | None


def delivery_of(
    exchange: str, quantity: Decimal, buys: Sequence[tuple[dt.datetime, Decimal]], now: dt.datetime
) -> Delivery:
    """Split a long delivery position of ``quantity`` given its recent buys ``(fill time,
    quantity)``.  Shares are credited at the end of their settlement day, so on T+1 itself
    they are still T1 (what BTST sells); a sale comes out of the settled shares first (as
    at Indian brokers), so the unsettled part is at most the position."""
    calendar = get_calendar(exchange)
    today = calendar.local_date(now)
    trades = [(calendar.local_date(at), q) for at, q in buys]
    # Unsettled at the start of today: settling today or later.
    yesterday = today - dt.timedelta(days=1)
    pending = unsettled_quantity(trades, yesterday, calendar.is_trading_day)
    t1 = min(max(quantity, ZERO), pending)
    settles = [settlement_day(day, calendar.is_trading_day) for day, _ in trades]
    due = [day for day in settles if day >= today]
    return Delivery(quantity - t1, t1, min(due) if t1 and due else None)


def check_not_worse_than_holdings(
    facts: InstrumentFacts, product: str, side: str, quantity: Decimal, long_free: Decimal
) -> None:
    """Delivery (CNC) equity cannot be sold short: at most what is held and not yet offered."""
    if side == "sell" and product == "cnc" and not facts.is_derivative and quantity > long_free:
        raise InvalidInput(
            f"a cnc sell of {quantity} exceeds the {long_free} units held and not already "
            "offered; use product mis to sell short intraday",
            field="quantity",
        )
