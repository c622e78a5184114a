"""How the Indian trading day ends, run by the matcher's clock (``trading.matcher``).

* Intraday square-off: from ``trading_square_off_before_close_min`` minutes before the
  close (15:15 IST on a normal NSE/BSE day) every open intraday (MIS) position on NSE, BSE
  and NFO is closed with a market order, its account's other open MIS orders on that
  instrument canceled first (so they cannot re-open it).  The order carries
  ``SQUARE_OFF_REASON``; new MIS exposure is refused in the window (``OrderService``).
* Expiry: once an F&O contract's last session has closed, each position in it is closed
  at the underlying's settlement price (its close on the expiry day): an option at its
  intrinsic value (exercised, assigned or worthless), a future at its final settlement
  price (``bookkeeping.settle_expiry``); the contract's open orders are canceled and the
  account's F&O margin is set again for what is left.

* Corporate actions: as a split's, bonus's or dividend's ex-date begins (before its first
  session), each open delivery or intraday holding of the instrument gets it once
  (``bookkeeping.apply_action``); a split or bonus cancels the account's open orders on
  the instrument (their prices are in the old shares).

Each account's work is one transaction under its row lock, so a restart in between
neither loses nor repeats a square-off or a settlement: what is due is found again from
the positions themselves.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.calendars.sessions import get_calendar
from quantdesk.marketdata.domain import Exchange, Quote, Timeframe, parse_key
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.instruments.underlyings import spot_candidates
from quantdesk.marketdata.models import CorporateActionRow
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import InsufficientFunds, QuantdeskError
from quantdesk.platform.logging import get_logger
from quantdesk.trading.bookkeeping import (
    SQUARE_OFF_EXCHANGES,
    SQUARE_OFF_REASON,
    InstrumentFacts,
    apply_action,
    facts_of,
    settle_expiry,
    square_off_from,
)
from quantdesk.trading.engine.types import TERMINAL_STATUSES
from quantdesk.trading.events import emit
from quantdesk.trading.margins import rebalance
from quantdesk.trading.models import (
    CorporateActionApplied,
    OrderRow,
    PositionRow,
    TradingAccount,
)
from quantdesk.trading.orders import OrderService, Placement, closing_order
from quantdesk.trading.repository import AccountRepository, MatcherRepository
from quantdesk.trading.service import account_document, position_out

log = get_logger("quantdesk.trading.lifecycle")

EXPIRED_REASON = "the contract expired"


def last_closed_session(exchange: str, now: dt.datetime) -> dt.date:
    """The local date of the exchange's latest session that has closed by ``now``."""
    calendar = get_calendar(exchange)
    day = calendar.local_date(now)
    sessions = calendar.sessions_on(day)
    if sessions and now >= sessions[-1].close_utc:
        return day
    return calendar.previous_trading_day(day)


# --- intraday square-off ------------------------------------------------------------------
async def square_off_intraday(ctx: AppContext, now: dt.datetime) -> list[uuid.UUID]:
    """Close every MIS position whose exchange is in its square-off window at ``now``;
    returns the ids of the orders placed."""
    minutes = ctx.settings.trading_square_off_before_close_min
    if minutes <= 0:
        return []
    # Outside every window (all day but its last minutes) this costs no query.
    if not any(square_off_from(ex, now, minutes) for ex in SQUARE_OFF_EXCHANGES):
        return []
    async with ctx.database.session() as db:
        positions = await MatcherRepository(db).open_positions(("mis",))
    due: defaultdict[uuid.UUID, list[str]] = defaultdict(list)
    for position in positions:
        if square_off_from(parse_key(position.instrument)[0], now, minutes) is not None:
            due[position.account_id].append(position.instrument)
    placed: list[uuid.UUID] = []
    for account_id, instruments in due.items():
        try:
            placed += await _square_off_account(ctx, account_id, instruments)
        except QuantdeskError as exc:  # a halt, say: the next clock tick tries again
            log.warning("square-off refused", account_id=str(account_id), error=exc.detail)
    return placed


async def _square_off_account(
    ctx: AppContext, account_id: uuid.UUID, instruments: Sequence[str]
) -> list[uuid.UUID]:
    async with ctx.database.session(immediate=True) as db:
        account = await AccountRepository(db).lock(account_id)
        if account is None:
            return []
        service = OrderService(ctx, db)
        open_orders = await service.rows.open_orders(account.id)
        squaring = {o.instrument for o in open_orders if o.reason == SQUARE_OFF_REASON}
        todo = [key for key in instruments if key not in squaring]
        intraday = [o for o in open_orders if o.instrument in todo and o.product == "mis"]
        await _cancel(service, account, intraday, "canceled for the intraday square-off")
        placements = []
        for key in todo:
            held = await MatcherRepository(db).position(account.id, key, "mis")
            if held is None or held.quantity == 0:
                continue
            body = closing_order(held)
            placements.append(Placement(account.user_id, account.id, body, square_off=True))
        results = await service.place_many(placements) if placements else []
    ids = []
    for placement, result in zip(placements, results, strict=True):
        if isinstance(result, QuantdeskError):
            log.warning(
                "square-off refused",
                account_id=str(account_id),
                instrument=placement.body.instrument,
                error=result.detail,
            )
        else:
            ids.append(result.id)
    if ids:
        log.info("intraday square-off", account_id=str(account_id), orders=len(ids))
    return ids


async def _cancel(
    service: OrderService, account: TradingAccount, orders: Iterable[OrderRow], reason: str
) -> None:
    """Cancel ``orders`` and, for a leg of a multi-leg order, the rest of that order (a
    combination cannot fill without one of its legs)."""
    now = utcnow()
    for order in orders:
        members = [order]
        if order.parent_id is not None:
            root = await service.rows.order(account.id, order.parent_id, for_update=True)
            if root is not None and root.order_class == "mleg":
                legs = await service.rows.children([root.id], for_update=True)
                members = [root, *legs.get(root.id, [])]
        for member in members:
            if member.status not in TERMINAL_STATUSES:
                await service.cancel_locked(account, member, reason, now)


# --- expiry -------------------------------------------------------------------------------
async def settle_expiries(ctx: AppContext, now: dt.datetime) -> int:
    """Settle every F&O position whose contract's last session has closed by ``now``;
    returns how many were settled.  One whose settlement price is not known yet (no daily
    bar or quote of the underlying from the expiry day) waits for a later tick."""
    async with ctx.database.session() as db:
        positions = await MatcherRepository(db).open_positions(("mis", "nrml"))
        keys = sorted({p.instrument for p in positions})
        rows = await InstrumentService(db).get_rows(keys) if keys else {}
        due: defaultdict[uuid.UUID, list[tuple[PositionRow, InstrumentFacts]]] = defaultdict(list)
        for position in positions:
            row = rows.get(position.instrument)
            if row is None or row.expiry is None:
                continue
            if row.expiry <= last_closed_session(row.exchange, now):
                due[position.account_id].append((position, facts_of(row)))
        if not due:
            return 0
        contracts = {facts.key: facts for held in due.values() for _, facts in held}
        prices = await _settlement_prices(ctx, db, contracts)
    for key in sorted(set(contracts) - set(prices)):
        log.warning("expired contract has no settlement price yet", instrument=key)
    settled = 0
    for account_id, held in due.items():
        priced = [(p.product, facts, prices[facts.key]) for p, facts in held if facts.key in prices]
        if not priced:
            continue
        try:
            settled += await _settle_account(ctx, account_id, priced, now)
        except InsufficientFunds as exc:
            # What a short owes exceeds cash and margin: it stays open (a margin call).
            log.warning(
                "expiry settlement exceeds cash and margin",
                account_id=str(account_id),
                error=exc.detail,
            )
    return settled


async def _settle_account(
    ctx: AppContext,
    account_id: uuid.UUID,
    priced: Sequence[tuple[str, InstrumentFacts, Decimal]],
    now: dt.datetime,
) -> int:
    settings = ctx.settings
    async with ctx.database.session(immediate=True) as db:
        account = await AccountRepository(db).lock(account_id)
        if account is None:
            return 0
        service = OrderService(ctx, db)
        expired = {facts.key for _, facts, _ in priced}
        open_orders = await service.rows.open_orders(account.id)
        await _cancel(
            service, account, [o for o in open_orders if o.instrument in expired], EXPIRED_REASON
        )
        settled = 0
        for product, facts, price in priced:
            held = await MatcherRepository(db).position(account.id, facts.key, product)
            if held is None or held.quantity == 0:
                continue  # settled by another process, or closed since
            assert facts.expiry is not None  # noqa: S101 - selected by it
            done = await settle_expiry(db, settings, account, held, facts, price, facts.expiry)
            log.info(
                "expiry settled",
                account_id=str(account.id),
                instrument=facts.key,
                quantity=str(done.quantity),
                price=str(done.price),
                cash=str(done.cash),
            )
            emit(db, account, "position", position_out(held, None, []).model_dump(mode="json"), now)
            settled += 1
        await rebalance(db, ctx, settings, account, {})
        emit(db, account, "account", account_document(account), now)
    return settled


async def _settlement_prices(
    ctx: AppContext, db: AsyncSession, contracts: dict[str, InstrumentFacts]
) -> dict[str, Decimal]:
    """Each contract's settlement price: its underlying's close on the expiry day (that
    day's daily bar, else the last quote if it is from that day); a future whose
    underlying has neither settles at its own close of that day."""
    candidates: dict[str, list[str]] = {}
    for key, facts in contracts.items():
        spots = (
            spot_candidates(facts.underlying, Exchange(facts.exchange)) if facts.underlying else []
        )
        candidates[key] = spots + ([key] if facts.kind == "future" else [])
    wanted = sorted({c for found in candidates.values() for c in found})
    quotes = await QuoteService(ctx.cache, ctx.bus).get_many(wanted)
    known = await InstrumentService(db).get_rows(wanted)
    prices: dict[str, Decimal] = {}
    for key, facts in contracts.items():
        assert facts.expiry is not None  # noqa: S101 - selected by it
        for candidate in candidates[key]:
            if candidate not in known:
                continue
            price = await _close_on(db, candidate, facts.expiry, quotes.get(candidate))
            if price is not None:
                prices[key] = price
                break
    return prices


async def _close_on(
    db: AsyncSession, key: str, day: dt.date, quote: Quote | None
) -> Decimal | None:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)  # daily bars: 00:00 UTC
    bars = await BarStore(db).series(
        key, Timeframe.D1, start=start, end=start + dt.timedelta(days=1), limit=1
    )
    if len(bars):
        return Decimal(bars.close[0])
    exchange = parse_key(key)[0]
    if quote is None:
        return None
    if exchange is Exchange.SIM:
        # Always open: its quotes never stop at a close, so the latest is the settlement
        # price (a moment after midnight IST, when the matcher settles the day).
        return quote.last
    if get_calendar(exchange.value).local_date(quote.ts) == day:
        return quote.last
    return None


# --- corporate actions --------------------------------------------------------------------
async def apply_corporate_actions(ctx: AppContext, now: dt.datetime) -> int:
    """Apply every corporate action whose ex-date has begun to the holdings it has not
    been applied to; returns how many holdings it changed."""
    tomorrow = now.date() + dt.timedelta(days=1)  # exchanges east of UTC are ahead
    async with ctx.database.session() as db:
        pending = await MatcherRepository(db).pending_corporate_actions(tomorrow)
    due: defaultdict[uuid.UUID, list[tuple[CorporateActionRow, str]]] = defaultdict(list)
    for action, position in pending:
        calendar = get_calendar(parse_key(action.instrument)[0].value)
        if action.ex_date <= calendar.local_date(now):
            due[position.account_id].append((action, position.product))
    applied = 0
    for account_id, items in due.items():
        try:
            applied += await _apply_account(ctx, account_id, items, now)
        except InsufficientFunds as exc:
            log.warning(
                "a short cannot pay its dividend", account_id=str(account_id), error=exc.detail
            )
    return applied


async def _apply_account(
    ctx: AppContext,
    account_id: uuid.UUID,
    items: Sequence[tuple[CorporateActionRow, str]],
    now: dt.datetime,
) -> int:
    async with ctx.database.session(immediate=True) as db:
        account = await AccountRepository(db).lock(account_id)
        if account is None:
            return 0
        service = OrderService(ctx, db)
        applied = 0
        for action, product in items:
            held = await MatcherRepository(db).position(account.id, action.instrument, product)
            done = await db.get(CorporateActionApplied, (action.id, account.id, product))
            if held is None or held.quantity == 0 or done is not None:
                continue
            calendar = get_calendar(parse_key(action.instrument)[0].value)
            start = dt.datetime.combine(action.ex_date, dt.time(), tzinfo=calendar.timezone)
            traded = [
                f
                for f in await service.rows.fills_since(account.id, start)
                if f.instrument == action.instrument and f.product == product
            ]
            if traded:
                # Recorded or reached too late: the holding at the ex-date's start is no
                # longer the position (an admin adjusts it by hand).
                log.warning(
                    "corporate action not applied: the holding traded on its ex-date",
                    account_id=str(account.id),
                    instrument=action.instrument,
                    kind=action.kind,
                )
                continue
            if action.kind != "dividend":
                orders = await service.rows.open_orders(account.id)
                reason = f"canceled for the {action.kind} (ex-date {action.ex_date.isoformat()})"
                await _cancel(
                    service,
                    account,
                    [o for o in orders if o.instrument == action.instrument],
                    reason,
                )
            await apply_action(db, account, held, action)
            db.add(CorporateActionApplied(action_id=action.id, account_id=account.id,
                                          product=product, applied_at=now))  # fmt: skip
            emit(db, account, "position", position_out(held, None, []).model_dump(mode="json"), now)
            applied += 1
        if applied:
            emit(db, account, "account", account_document(account), now)
    return applied
