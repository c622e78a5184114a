"""Use cases of paper-trading accounts: open, list, reset, deposit, withdraw, the ledger,
fills and positions, and the account's valuation at the latest quotes.

Every write locks the account row first (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite
the request's unit of work already holds the write lock), so the orders, cancels and fills
of one account are serialised and no update is lost.  Orders live in ``orders.py``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.domain import Quote
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import InsufficientFunds, NotFound
from quantdesk.trading import schemas
from quantdesk.trading.bookkeeping import T1_LOOKBACK, delivery_of
from quantdesk.trading.engine.positions import tidy
from quantdesk.trading.engine.types import OrderStatus, kite_status
from quantdesk.trading.events import emit
from quantdesk.trading.ledger import Book, EntryKind, move, post
from quantdesk.trading.margins import derivative_book, report_of
from quantdesk.trading.models import FillRow, OrderRow, PositionRow, TradingAccount
from quantdesk.trading.repository import AccountRepository, TradingRepository

ZERO = Decimal(0)
DEFAULT_STARTING_CASH = {"INR": Decimal(10_000_000), "USD": Decimal(100_000)}


def account_not_found(account_id: uuid.UUID) -> NotFound:
    return NotFound(f"no trading account {account_id}", account_id=str(account_id))


# --- documents -----------------------------------------------------------------------------
def order_out(order: OrderRow, legs: Sequence[OrderRow] | None = None) -> schemas.OrderOut:
    """An order as the API shows it; ``legs``: the orders hanging from it (Alpaca's)."""
    average = order.filled_value / order.filled_quantity if order.filled_quantity else None
    return schemas.OrderOut(
        id=order.id,
        account_id=order.account_id,
        client_order_id=order.client_order_id,
        instrument=order.instrument,
        side=order.side,
        type=order.type,
        order_class=order.order_class,
        parent_id=order.parent_id,
        time_in_force=order.time_in_force,
        product=order.product,
        quantity=order.quantity,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        trail_price=order.trail_price,
        trail_percent=order.trail_percent,
        hwm=order.hwm,
        ratio=order.ratio,
        status=order.status,
        kite_status=kite_status(OrderStatus(order.status), order.type, order.triggered),
        filled_quantity=order.filled_quantity,
        remaining_quantity=order.quantity - order.filled_quantity,
        average_fill_price=None if average is None else _average(average),
        triggered=order.triggered,
        reserved=order.reserved,
        after_market=order.after_market,
        active_from=order.active_from,
        expires_at=order.expires_at,
        reason=order.reason,
        created_at=order.created_at,
        updated_at=order.updated_at,
        legs=None if legs is None else [order_out(leg) for leg in legs],
    )


def _average(value: Decimal) -> Decimal:
    # Σp·q/Σq is exact when it terminates; otherwise 8 places, the precision prices accept.
    quantised = value.quantize(Decimal("1e-8"))
    return value if value == quantised else quantised


def order_document(order: OrderRow) -> dict[str, object]:
    return order_out(order).model_dump(mode="json")


def fill_out(fill: FillRow) -> schemas.FillOut:
    return schemas.FillOut(
        execution_id=fill.execution_id,
        order_id=fill.order_id,
        instrument=fill.instrument,
        side=fill.side,
        product=fill.product,
        price=fill.price,
        quantity=fill.quantity,
        fee=fill.fee,
        charges={name: Decimal(amount) for name, amount in orjson.loads(fill.charges).items()},
        realised_pnl=fill.realised_pnl,
        liquidity=fill.liquidity,
        ts=fill.ts,
    )


def _mark(quote: Quote | None) -> Decimal | None:
    return None if quote is None else quote.last


def position_out(
    position: PositionRow, quote: Quote | None, today_fills: Sequence[FillRow]
) -> schemas.PositionOut:
    mark = _mark(quote)
    qty = position.quantity
    average = abs(position.cost / (qty * position.multiplier)) if qty else None
    market_value = unrealised = day = None
    if mark is not None:
        value = qty * mark * position.multiplier
        market_value = tidy(value)
        unrealised = tidy(value - position.cost)
        day = tidy(_day_pnl(position, mark, quote, today_fills))
    return schemas.PositionOut(
        instrument=position.instrument,
        product=position.product,
        quantity=qty,
        average_price=None if average is None else _average(average),
        last_price=mark,
        market_value=market_value,
        unrealised_pnl=unrealised,
        realised_pnl=position.realised_pnl,
        day_pnl=day,
        margin=position.margin,
        updated_at=position.updated_at,
    )


def _day_pnl(
    position: PositionRow, mark: Decimal, quote: Quote | None, today_fills: Sequence[FillRow]
) -> Decimal:
    """Today's P&L: the carried quantity from the previous close, today's fills from their
    prices, both to ``mark`` (realised today included)."""
    mine = [
        f
        for f in today_fills
        if f.instrument == position.instrument and f.product == position.product
    ]
    traded = sum(((f.quantity if f.side == "buy" else -f.quantity) for f in mine), ZERO)
    carried = position.quantity - traded
    previous = quote.prev_close if quote is not None and quote.prev_close is not None else mark
    pnl = carried * (mark - previous)
    for fill in mine:
        signed = fill.quantity if fill.side == "buy" else -fill.quantity
        pnl += signed * (mark - fill.price)
    return pnl * position.multiplier


async def quotes_for(ctx: AppContext, keys: Iterable[str]) -> dict[str, Quote]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    return await QuoteService(ctx.cache, ctx.bus).get_many(wanted)


def start_of_day(now: dt.datetime) -> dt.datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def account_out(
    ctx: AppContext, db: AsyncSession, account: TradingAccount
) -> schemas.AccountOut:
    positions = await TradingRepository(db).positions(account.id)
    quotes = await quotes_for(ctx, (p.instrument for p in positions))
    today = await TradingRepository(db).fills_since(account.id, start_of_day(utcnow()))
    positions_value = unrealised = day = ZERO
    traded_today = {(f.instrument, f.product) for f in today}
    for position in positions:
        if not position.quantity:
            # Flat now, but traded today: its day P&L is its fills against the close.
            quote = quotes.get(position.instrument)
            if (position.instrument, position.product) in traded_today and quote is not None:
                day += _day_pnl(position, quote.last, quote, today)
            continue
        view = position_out(position, quotes.get(position.instrument), today)
        if view.market_value is None or view.unrealised_pnl is None:
            # No quote yet: carried at cost, so it adds nothing unrealised.
            if not position.is_future:
                positions_value += position.cost
            continue
        unrealised += view.unrealised_pnl
        day += view.day_pnl or ZERO
        if not position.is_future:
            positions_value += view.market_value
    futures_unrealised = sum(
        (
            (p.quantity * quotes[p.instrument].last * p.multiplier - p.cost)
            for p in positions
            if p.is_future
            and p.quantity
            and p.instrument in quotes
            and quotes[p.instrument].last is not None
        ),
        ZERO,
    )
    equity = account.cash + account.reserved + account.margin + positions_value + futures_unrealised
    return schemas.AccountOut(
        id=account.id,
        name=account.name,
        currency=account.currency,
        fill_model=account.fill_model,
        starting_cash=account.starting_cash,
        cash=account.cash,
        reserved=account.reserved,
        margin_used=account.margin,
        buying_power=account.cash,
        positions_value=tidy(positions_value),
        equity=tidy(equity),
        realised_pnl=account.realised_pnl,
        unrealised_pnl=tidy(unrealised),
        day_pnl=tidy(day),
        fees=account.fees,
        deposits=account.capital,
        version=account.version,
        created_at=account.created_at,
    )


def account_document(account: TradingAccount) -> dict[str, object]:
    """The account's balances for the outbox (valuation needs quotes: the stream adds it)."""
    return {
        "id": str(account.id),
        "cash": str(account.cash),
        "reserved": str(account.reserved),
        "margin_used": str(account.margin),
        "realised_pnl": str(account.realised_pnl),
        "fees": str(account.fees),
        "version": account.version,
    }


# --- accounts ------------------------------------------------------------------------------
class AccountService:
    def __init__(self, ctx: AppContext, db: AsyncSession) -> None:
        self.ctx = ctx
        self.db = db
        self.accounts = AccountRepository(db)
        self.rows = TradingRepository(db)

    async def owned(
        self, user_id: uuid.UUID, account_id: uuid.UUID, *, lock: bool = False
    ) -> TradingAccount:
        account = await self.accounts.get_for_owner(user_id, account_id, for_update=lock)
        if account is None:
            raise account_not_found(account_id)
        return account

    async def create(self, user_id: uuid.UUID, body: schemas.AccountIn) -> schemas.AccountOut:
        now = utcnow()
        cash = body.starting_cash or DEFAULT_STARTING_CASH[body.currency]
        account = TradingAccount(
            user_id=user_id,
            name=body.name,
            currency=body.currency,
            starting_cash=cash,
            fill_model=body.fill_model,
            fill_seed=body.fill_seed,
            cash=ZERO,
            reserved=ZERO,
            margin=ZERO,
            positions_cost=ZERO,
            capital=ZERO,
            realised_pnl=ZERO,
            fees=ZERO,
            event_seq=0,
            version=1,
            created_at=now,
        )
        self.db.add(account)
        await self.db.flush()
        await self._deposit(account, cash, "starting cash", now)
        return await account_out(self.ctx, self.db, account)

    async def page(
        self, user_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> schemas.AccountPage:
        rows, next_cursor = await self.accounts.page(user_id, limit=limit, cursor=cursor)
        return schemas.AccountPage(
            items=[await account_out(self.ctx, self.db, row) for row in rows],
            next_cursor=next_cursor,
        )

    async def get(self, user_id: uuid.UUID, account_id: uuid.UUID) -> schemas.AccountOut:
        return await account_out(self.ctx, self.db, await self.owned(user_id, account_id))

    async def reset(self, user_id: uuid.UUID, account_id: uuid.UUID) -> schemas.AccountOut:
        """Back to the starting cash: orders, fills, positions and the journal are dropped;
        the event sequence carries on (a stream client sees a ``reset`` event)."""
        account = await self.owned(user_id, account_id, lock=True)
        now = utcnow()
        await self.rows.wipe(account.id)
        for column in ("cash", "reserved", "margin", "positions_cost", "capital"):
            setattr(account, column, ZERO)
        account.realised_pnl = ZERO
        account.fees = ZERO
        account.version += 1
        account.reset_at = now
        await self.db.flush()
        await self._deposit(account, account.starting_cash, "reset to starting cash", now)
        emit(self.db, account, "account_reset", account_document(account), now)
        return await account_out(self.ctx, self.db, account)

    async def deposit(
        self, user_id: uuid.UUID, account_id: uuid.UUID, body: schemas.CashMovementIn
    ) -> schemas.AccountOut:
        account = await self.owned(user_id, account_id, lock=True)
        await self._deposit(account, body.amount, body.memo or "deposit", utcnow())
        return await account_out(self.ctx, self.db, account)

    async def withdraw(
        self, user_id: uuid.UUID, account_id: uuid.UUID, body: schemas.CashMovementIn
    ) -> schemas.AccountOut:
        account = await self.owned(user_id, account_id, lock=True)
        if body.amount > account.cash:
            raise InsufficientFunds(
                f"cannot withdraw {body.amount} {account.currency}: "
                f"{account.cash} is free (reserved and margin cash cannot be withdrawn)",
                available=str(account.cash),
            )
        now = utcnow()
        await post(
            self.db,
            account,
            EntryKind.WITHDRAWAL,
            move(body.amount, to=Book.CAPITAL, source=Book.CASH),
            memo=body.memo or "withdrawal",
        )
        emit(self.db, account, "account", account_document(account), now)
        return await account_out(self.ctx, self.db, account)

    async def _deposit(
        self, account: TradingAccount, amount: Decimal, memo: str, now: dt.datetime
    ) -> None:
        await post(
            self.db,
            account,
            EntryKind.DEPOSIT,
            move(amount, to=Book.CASH, source=Book.CAPITAL),
            memo=memo,
        )
        emit(self.db, account, "account", account_document(account), now)

    async def ledger(
        self, user_id: uuid.UUID, account_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> schemas.LedgerPage:
        account = await self.owned(user_id, account_id)
        entries, next_cursor = await self.rows.ledger_page(account.id, limit=limit, cursor=cursor)
        return schemas.LedgerPage(
            items=[
                schemas.LedgerEntryOut(
                    id=entry.id,
                    kind=entry.kind,
                    reference=entry.reference,
                    memo=entry.memo,
                    created_at=entry.created_at,
                    postings=[schemas.PostingOut(book=p.book, amount=p.amount) for p in lines],
                )
                for entry, lines in entries
            ],
            next_cursor=next_cursor,
        )

    async def fills(
        self,
        user_id: uuid.UUID,
        account_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
        order_id: uuid.UUID | None = None,
    ) -> schemas.FillPage:
        account = await self.owned(user_id, account_id)
        rows, next_cursor = await self.rows.fills_page(
            account.id, limit=limit, cursor=cursor, order_id=order_id
        )
        return schemas.FillPage(items=[fill_out(row) for row in rows], next_cursor=next_cursor)

    async def margins(self, user_id: uuid.UUID, account_id: uuid.UUID) -> schemas.MarginsOut:
        return await margins_out(self.ctx, self.db, await self.owned(user_id, account_id))

    async def positions(self, user_id: uuid.UUID, account_id: uuid.UUID) -> schemas.PositionList:
        account = await self.owned(user_id, account_id)
        rows = [p for p in await self.rows.positions(account.id) if p.quantity or p.realised_pnl]
        quotes = await quotes_for(self.ctx, (p.instrument for p in rows))
        today = await self.rows.fills_since(account.id, start_of_day(utcnow()))
        return schemas.PositionList(
            items=[position_out(p, quotes.get(p.instrument), today) for p in rows]
        )

    async def holdings(
        self, user_id: uuid.UUID, account_id: uuid.UUID
    ) -> schemas.DeliveryHoldingList:
        account = await self.owned(user_id, account_id)
        now = utcnow()
        rows = [
            p
            for p in await self.rows.positions(account.id)
            if p.product == "cnc" and p.quantity > 0 and not p.is_future
        ]
        quotes = await quotes_for(self.ctx, (p.instrument for p in rows))
        today = await self.rows.fills_since(account.id, start_of_day(now))
        buys = await self.rows.delivery_buys(account.id, now - T1_LOOKBACK)
        return schemas.DeliveryHoldingList(
            items=[holding_out(p, quotes.get(p.instrument), today, buys, now) for p in rows]
        )


def holding_out(
    position: PositionRow,
    quote: Quote | None,
    today_fills: Sequence[FillRow],
    buys: dict[str, list[tuple[dt.datetime, Decimal]]],
    now: dt.datetime,
) -> schemas.DeliveryHoldingOut:
    exchange = position.instrument.partition(":")[0]
    split = delivery_of(exchange, position.quantity, buys.get(position.instrument, []), now)
    shown = position_out(position, quote, today_fills)
    return schemas.DeliveryHoldingOut(
        instrument=position.instrument,
        quantity=position.quantity,
        settled_quantity=split.settled,
        t1_quantity=split.t1,
        t1_settles_on=split.settles_on,
        average_price=shown.average_price,
        last_price=shown.last_price,
        market_value=shown.market_value,
        unrealised_pnl=shown.unrealised_pnl,
        day_pnl=shown.day_pnl,
    )


async def margins_out(
    ctx: AppContext, db: AsyncSession, account: TradingAccount
) -> schemas.MarginsOut:
    """The account's F&O margin by the hedge-aware model (trading.margins) beside what
    the ledger blocks."""

    held, _ = await derivative_book(db, ctx, account.id)
    held = [h for h in held if h.leg.quantity]
    report = report_of(held, ctx.settings)
    positions = []
    for item in held:
        share = report.for_key(item.leg.key)
        positions.append(
            schemas.PositionMarginOut(
                instrument=item.position.instrument,
                product=item.position.product,
                quantity=item.position.quantity,
                price=item.leg.price,
                naked=ZERO if share is None else share.naked,
                required=ZERO if share is None else share.required,
                blocked=item.position.margin,
            )
        )
    return schemas.MarginsOut(
        currency=account.currency,
        used=account.margin,
        required=report.required,
        available=account.cash,
        positions=positions,
        groups=[
            schemas.MarginGroupOut(
                underlying=g.underlying,
                expiry=g.expiry,
                instruments=list(g.keys),
                naked=g.naked,
                worst_payout=g.worst_payout,
                required=g.required,
                hedged=g.hedged,
            )
            for g in report.groups
        ],
    )
