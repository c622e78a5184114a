"""The order matcher: one task per app that feeds quotes and trades from the bus to a
matching engine per instrument and persists what the engines decide.

* Exactly once across processes: the matcher works only while it holds the
  ``trading-matcher`` lease (``platform.lease``: an advisory lock on PostgreSQL, a Redis
  key otherwise).  A process that takes the lease over restores every open order from the
  database first, so nothing the previous holder had in memory is needed.
* One inbox, handled in order: order notifications (``trading.orders``, sent after the API
  commits), each instrument's quotes and trades, and a clock (expiry of DAY orders at their
  session close, release of after-market orders at the open, the day's ends of
  ``trading.lifecycle``: intraday square-off and F&O expiry; futures' daily settlement, and
  a periodic resync against the database, since bus messages may be dropped).
* One transaction per account per tick: the account row and its orders are locked, every
  fill is checked against the order's stored version and status (a cancel or a modify that
  committed first wins; the stale fill is dropped and the engine reloads the order) and
  against its execution id (a fill already stored is skipped).  Fills, transitions,
  positions and balances go into the outbox in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.domain import Quote, Trade
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import (
    TRADES_PREFIX,
    QuoteService,
    decode_quote,
    decode_trade,
    quote_channel,
    trade_channel,
)
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import after_commit, utcnow
from quantdesk.platform.exceptions import InsufficientFunds, NotFound
from quantdesk.platform.lease import Lease, lease_for
from quantdesk.platform.logging import get_logger
from quantdesk.platform.tasks import cancel_and_wait
from quantdesk.trading.bookkeeping import (
    InstrumentFacts,
    book_fill,
    facts_of,
    release,
    settle_future,
)
from quantdesk.trading.engine.contingent import OrderGroup
from quantdesk.trading.engine.fill_models import fill_model_from_name
from quantdesk.trading.engine.matching import MatchingEngine
from quantdesk.trading.engine.mleg import Leg, MultiLegBook, MultiLegOrder
from quantdesk.trading.engine.positions import money, tidy
from quantdesk.trading.engine.state import status_after_fill
from quantdesk.trading.engine.types import (
    TERMINAL_STATUSES,
    EventKind,
    InstrumentSpec,
    Order,
    OrderClass,
    OrderEvent,
    OrderStatus,
    OrderType,
    QuoteTick,
    Side,
    TimeInForce,
    TradeTick,
)
from quantdesk.trading.events import MATCHER_CHANNEL, emit
from quantdesk.trading.lifecycle import (
    apply_corporate_actions,
    last_closed_session,
    settle_expiries,
    square_off_intraday,
)
from quantdesk.trading.margins import rebalance
from quantdesk.trading.metrics import trading_metrics
from quantdesk.trading.models import OrderRow, TradingAccount
from quantdesk.trading.orders import sync_plan, transition
from quantdesk.trading.repository import (
    CONTINGENT_CLASSES,
    AccountRepository,
    MatcherRepository,
)
from quantdesk.trading.service import account_document, fill_out, position_out
from quantdesk.trading.writes import PendingRows, RowSink

log = get_logger("quantdesk.trading.matcher")

LEASE_NAME = "trading-matcher"
UNLIMITED = Decimal("Infinity")
ZERO = Decimal(0)
CLOCK_S = 0.5
RESYNC_S = 15.0
SETTLE_S = 60.0
# How often open MIS positions are looked for in a square-off window (trading.lifecycle):
# outside the windows the look is a calendar lookup, inside them one query.
SQUARE_OFF_S = 1.0


def quote_tick(quote: Quote) -> QuoteTick:
    """The engine's view of a quote.  A source that gives only a last price is treated as a
    book at that price with no size limit."""
    source_id = getattr(quote, "source_id", None) or f"q:{quote.key}@{quote.ts.isoformat()}"
    return QuoteTick(
        bid=quote.bid if quote.bid is not None else quote.last,
        bid_size=quote.bid_size if quote.bid_size is not None else UNLIMITED,
        ask=quote.ask if quote.ask is not None else quote.last,
        ask_size=quote.ask_size if quote.ask_size is not None else UNLIMITED,
        ts=quote.ts,
        source_id=str(source_id),
        last=quote.last,
    )


def trade_tick(trade: Trade) -> TradeTick:
    return TradeTick(trade.price, trade.size, trade.ts, trade.source_id)


def _from_snapshot(
    order_id: str, instrument: str, snapshot: dict[str, Any]
) -> tuple[OrderRow, TradingAccount]:
    """The committed order of a ``trading.orders`` message, as detached rows."""

    def decimal(name: str) -> Decimal | None:
        value = snapshot.get(name)
        return None if value is None else Decimal(value)

    def instant(name: str) -> dt.datetime | None:
        value = snapshot[name]
        return None if value is None else dt.datetime.fromisoformat(value)

    parent = snapshot.get("parent_id")
    row = OrderRow(
        id=uuid.UUID(order_id),
        account_id=uuid.UUID(snapshot["account_id"]),
        instrument=instrument,
        side=snapshot["side"],
        type=snapshot["type"],
        order_class=snapshot.get("order_class", "simple"),
        parent_id=None if parent is None else uuid.UUID(parent),
        trail_price=decimal("trail_price"),
        trail_percent=decimal("trail_percent"),
        hwm=decimal("hwm"),
        time_in_force=snapshot["time_in_force"],
        quantity=Decimal(snapshot["quantity"]),
        limit_price=decimal("limit_price"),
        stop_price=decimal("stop_price"),
        filled_quantity=Decimal(snapshot["filled_quantity"]),
        triggered=snapshot["triggered"],
        status=snapshot["status"],
        version=snapshot["version"],
        created_at=dt.datetime.fromisoformat(snapshot["created_at"]),
        active_from=instant("active_from"),
        expires_at=instant("expires_at"),
    )
    account = TradingAccount(fill_model=snapshot["fill_model"], fill_seed=snapshot["fill_seed"])
    return row, account


def _was_matched(row: OrderRow) -> bool:
    """Has the order been through its arrival match?  A new order that has neither filled
    nor triggered may not have been (its notification missed, or no fresh quote then)."""
    return bool(row.filled_quantity) or row.triggered or row.version > 1


def _matched_on_restore(row: OrderRow) -> bool:
    """``matched`` for restoring the order: an untriggered stop needs no arrival match (it
    waits for its trigger either way; restored "unmatched", the engine would match it as a
    taker on the next quote, trigger or not)."""
    return (row.type in _STOP_TYPES and not row.triggered) or _was_matched(row)


_STOP_TYPES = frozenset({"stop", "stop_limit", "trailing_stop"})


def engine_order(row: OrderRow, account: TradingAccount, *, active: Decimal | None = None) -> Order:
    return Order(
        id=str(row.id),
        side=Side(row.side),
        type=OrderType(row.type),
        quantity=row.quantity,
        time_in_force=TimeInForce(row.time_in_force),
        limit_price=row.limit_price,
        stop_price=row.stop_price,
        filled_quantity=row.filled_quantity,
        triggered=row.triggered,
        version=row.version,
        priority=int(row.created_at.timestamp() * 1_000_000),
        fill_model=fill_model_from_name(account.fill_model, account.fill_seed),
        trail_price=row.trail_price,
        trail_percent=row.trail_percent,
        hwm=row.hwm,
        parent_id=None if row.parent_id is None else str(row.parent_id),
        active=active,
    )


def _is_grouped(row: OrderRow) -> bool:
    return row.order_class in CONTINGENT_CLASSES


def _root(row: OrderRow) -> str:
    """A group's id: its parent's (a bracket's or OTO's entry, an OCO's take-profit)."""
    return str(row.parent_id or row.id)


def group_from_rows(rows: list[OrderRow], account: TradingAccount) -> OrderGroup:
    """The engine's group of stored orders (the parent first): each member as stored, a
    terminal member with nothing more to fill, the entry ``entry_ended`` if terminal."""

    def member(row: OrderRow, active: Decimal | None) -> Order:
        order = engine_order(row, account, active=active)
        if row.status in TERMINAL_STATUSES:
            order = replace(order, quantity=row.filled_quantity)
        return order

    root, children = rows[0], rows[1:]
    order_class = OrderClass(root.order_class)
    if order_class is OrderClass.OCO:
        exits = (member(root, None), *(member(child, None) for child in children))
        return OrderGroup(order_class, None, exits)
    # A bracket's or OTO's exits are sized and activated by the entry's fills.
    return OrderGroup(
        order_class,
        engine_order(root, account),
        tuple(member(child, ZERO) for child in children),
        entry_ended=root.status in TERMINAL_STATUSES,
    )


@dataclass(slots=True)
class _Book:
    engine: MatchingEngine
    facts: InstrumentFacts
    pump: asyncio.Task[None] | None = None


@dataclass(slots=True)
class _Known:
    account_id: uuid.UUID
    instrument: str
    expires_at: dt.datetime | None
    mleg: bool = False  # a multi-leg order: in ``Matcher.mleg``, not an instrument's engine


class _Unaffordable(Exception):
    """A fill that would take the account's cash below zero (its transaction is undone)."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(execution_id)
        self.execution_id = execution_id


@dataclass(slots=True)
class MatcherStats:
    received: int = 0  # orders, quotes and trades taken off the bus
    ticks: int = 0
    fills: int = 0
    dropped: int = 0
    last_match_ms: float = 0.0


class Matcher:
    def __init__(self, ctx: AppContext, *, lease: Lease | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.max_quote_age = dt.timedelta(seconds=self.settings.trading_max_quote_age_s)
        self.lease = lease or lease_for(ctx, LEASE_NAME)
        self.leader = False
        self.inbox: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
        self.books: dict[str, _Book] = {}
        self.known: dict[str, _Known] = {}
        self.waiting: dict[str, dt.datetime] = {}  # after-market orders: id -> release time
        # Multi-leg orders, across instruments; how many of them each instrument is in.
        self.mleg = MultiLegBook(max_quote_age=self.max_quote_age)
        self.mleg_keys: Counter[str] = Counter()
        self.stats = MatcherStats()
        self.metrics = trading_metrics(ctx)
        self.metrics.follow_matcher(
            self.inbox.qsize, lambda: sum(len(book.engine) for book in self.books.values())
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._last_resync = 0.0
        self._last_settle = 0.0
        self._last_square_off = 0.0

    # --- life ----------------------------------------------------------------------------
    async def start(self) -> None:
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen(ready), name="matcher-orders"),
            asyncio.create_task(self._clock(), name="matcher-clock"),
            asyncio.create_task(self._work(), name="matcher-work"),
        ]
        await ready.wait()

    async def stop(self) -> None:
        tasks = self._tasks + [b.pump for b in self.books.values() if b.pump is not None]
        await cancel_and_wait(tasks)
        self.books.clear()
        await self.lease.release()

    async def _listen(self, ready: asyncio.Event) -> None:
        async with self.ctx.bus.subscribe([MATCHER_CHANNEL]) as subscription:
            ready.set()
            async for _channel, payload in subscription:
                message = orjson.loads(payload)
                # A unit of work's orders in one array; a lone object from a process of an
                # earlier release during a rolling upgrade.
                for item in message if isinstance(message, list) else [message]:
                    self.stats.received += 1
                    self.inbox.put_nowait(("order", item))

    async def _clock(self) -> None:
        while True:
            try:
                held = await self.lease.hold()
                if held and not self.leader:
                    log.info("matcher leads", process=id(self))
                    self.inbox.put_nowait(("resync", None))
                elif not held and self.leader:
                    log.warning("matcher lost the lease")
                    self.inbox.put_nowait(("abdicate", None))
                self.leader = held
                if held:
                    self.inbox.put_nowait(("clock", None))
            except Exception as exc:  # the clock must outlive any one failure
                log.exception("matcher clock failed", error=str(exc))
            await asyncio.sleep(CLOCK_S)

    async def _work(self) -> None:
        while True:
            kind, item = await self.inbox.get()
            try:
                await self._handle(kind, item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # One bad tick or order must not stop matching for everyone; the next resync
                # reloads whatever this left inconsistent in memory.
                log.exception("matcher step failed", kind=kind, error=str(exc))
                self._last_resync = 0.0
            finally:
                self.inbox.task_done()

    async def idle(self) -> None:
        """Wait until everything queued so far has been handled (tests, benchmarks)."""
        await self.inbox.join()

    async def _handle(self, kind: str, item: object) -> None:
        if kind == "resync":
            await self._resync()
            return
        if kind == "abdicate":
            await self._forget_all()
            return
        if not self.leader:
            return
        if kind == "order":
            assert isinstance(item, dict)  # noqa: S101
            await self._on_order(item)
        elif kind == "quote":
            assert isinstance(item, tuple)  # noqa: S101
            key, tick = item
            book = self.books.get(key)
            if book is not None:
                self.stats.ticks += 1
                await self._persist(book, book.engine.on_quote(tick))
            if self.mleg_keys[key]:
                await self._persist_mleg(self.mleg.on_quote(key, tick))
        elif kind == "trade":
            assert isinstance(item, tuple)  # noqa: S101
            key, trade = item
            book = self.books.get(key)
            if book is not None:
                self.stats.ticks += 1
                await self._persist(book, book.engine.on_trade(trade))
        elif kind == "clock":
            await self._on_clock()

    # --- orders and books ----------------------------------------------------------------
    async def _book(self, key: str) -> _Book:
        book = self.books.get(key)
        if book is not None:
            return book
        async with self.ctx.database.session() as db:
            facts = facts_of(await InstrumentService(db).get_row(key))
        engine = MatchingEngine(
            InstrumentSpec(key, facts.tick_size, facts.lot_size),
            max_quote_age=self.max_quote_age,
        )
        book = self.books[key] = _Book(engine, facts)
        ready = asyncio.Event()
        book.pump = asyncio.create_task(self._pump(key, ready), name=f"matcher-{key}")
        await ready.wait()
        # Seeded after subscribing, so no quote between the two is missed.
        quote = await QuoteService(self.ctx.cache, self.ctx.bus).get(key)
        if quote is not None:
            engine.on_quote(quote_tick(quote))  # empty book: nothing can fill
        return book

    async def _pump(self, key: str, ready: asyncio.Event) -> None:
        channels = [quote_channel(key), trade_channel(key)]
        async with self.ctx.bus.subscribe(channels) as subscription:
            ready.set()
            async for channel, payload in subscription:
                self.stats.received += 1
                try:
                    if channel.startswith(TRADES_PREFIX):
                        self.inbox.put_nowait(("trade", (key, trade_tick(decode_trade(payload)))))
                    else:
                        self.inbox.put_nowait(("quote", (key, quote_tick(decode_quote(payload)))))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("undecodable tick", channel=channel, error=str(exc))

    async def _load(self, order_id: uuid.UUID) -> tuple[OrderRow, TradingAccount] | None:
        async with self.ctx.database.session() as db:
            found = await MatcherRepository(db).orders_with_accounts(order_id=order_id)
        return found[0] if found else None

    async def _on_order(self, message: dict[str, Any]) -> None:
        order_id = message["order_id"]
        snapshot = message.get("order")
        if message.get("op") == "cancel" or (
            snapshot is not None and snapshot["status"] in TERMINAL_STATUSES
        ):
            self._forget(order_id, group=True)
            return
        if snapshot is not None:
            row, account = _from_snapshot(order_id, message["instrument"], snapshot)
        else:
            loaded = await self._load(uuid.UUID(order_id))
            if loaded is None or loaded[0].status in TERMINAL_STATUSES:
                self._forget(order_id, group=True)
                return
            row, account = loaded
        if row.order_class == "mleg":
            await self._place_mleg(_root(row), fresh=message.get("op") == "new")
        elif _is_grouped(row):
            await self._admit_member(row, account, fresh=message.get("op") == "new")
        else:
            await self._admit(row, account)

    # --- multi-leg orders (engine.mleg) ------------------------------------------------
    async def _place_mleg(self, root_id: str, *, fresh: bool) -> None:
        """Put a multi-leg order to work: its legs' instruments fed to the one multi-leg
        book (each instrument's engine subscribes to its quotes), added when new (filled at
        once if the quotes allow) or restored."""
        async with self.ctx.database.session() as db:
            rows = await MatcherRepository(db).family(uuid.UUID(root_id))
        if not rows or rows[0][0].parent_id is not None:
            return
        root = rows[0][0]
        self._forget_mleg(root_id)
        if root.status in TERMINAL_STATUSES:
            return
        legs = [row for row, _ in rows[1:]]
        order = MultiLegOrder(
            root_id,
            tuple(Leg(row.instrument, Side(row.side), row.ratio or 1) for row in legs),
            root.quantity,
            OrderType(root.type),
            root.limit_price,
            TimeInForce(root.time_in_force),
            root.version,
            int(root.created_at.timestamp() * 1_000_000),
        )
        for leg in order.legs:
            try:
                book = await self._book(leg.instrument)
            except NotFound:
                log.warning("mleg order on an unknown instrument", order_id=root_id)
                return
            if book.engine.quote is not None and leg.instrument not in self.mleg.quotes:
                self.mleg.quotes[leg.instrument] = book.engine.quote
        for leg in order.legs:
            self.mleg_keys[leg.instrument] += 1
        self.known[root_id] = _Known(root.account_id, "", root.expires_at, mleg=True)
        if fresh and root.version == 1:
            await self._persist_mleg(self.mleg.add(order, utcnow()))
        else:
            self.mleg.restore(order)

    def _forget_mleg(self, order_id: str) -> None:
        order = self.mleg.cancel(order_id)
        if order is not None:
            for leg in order.legs:
                self.mleg_keys[leg.instrument] -= 1
        self.known.pop(order_id, None)

    async def _persist_mleg(self, events: list[OrderEvent]) -> None:
        if not events:
            return
        by_account: defaultdict[uuid.UUID, list[OrderEvent]] = defaultdict(list)
        for event in events:
            known = self.known.get(event.order_id)
            if known is not None:
                by_account[known.account_id].append(event)
        stale: set[str] = set()
        for account_id, account_events in by_account.items():
            try:
                stale |= await self._persist_mleg_account(account_id, account_events)
            except Exception as exc:
                log.exception("persisting an mleg fill failed", account=str(account_id))
                log.debug("mleg failure", error=str(exc))
                stale |= {e.order_id for e in account_events}
        for order_id in stale:
            self.stats.dropped += 1
            await self._place_mleg(order_id, fresh=False)

    async def _persist_mleg_account(
        self, account_id: uuid.UUID, events: list[OrderEvent]
    ) -> set[str]:
        """One account's multi-leg fills (every leg, all or none) or cancels, in one
        transaction; returns the orders whose engine state was stale."""
        by_order: defaultdict[str, list[OrderEvent]] = defaultdict(list)
        for event in events:
            by_order[event.order_id].append(event)
        stale: set[str] = set()
        done: set[str] = set()
        async with self.ctx.database.session(immediate=True) as db:
            account = await AccountRepository(db).lock(account_id)
            if account is None:
                return set(by_order)
            repo = MatcherRepository(db)
            for order_id, order_events in by_order.items():
                parent = await repo.order(uuid.UUID(order_id), for_update=True)
                version = order_events[0].order_version
                if (
                    parent is None
                    or parent.status in TERMINAL_STATUSES
                    or parent.version != version
                ):
                    stale.add(order_id)
                    continue
                legs = [row for row, _ in (await repo.family(parent.id))[1:]]
                if await self._apply_mleg(db, account, parent, legs, order_events):
                    done.add(order_id)
                else:
                    stale.add(order_id)
            emit(db, account, "account", account_document(account), utcnow())
        for order_id in done:
            self._forget_mleg(order_id)
        return stale

    async def _apply_mleg(
        self,
        db: AsyncSession,
        account: TradingAccount,
        parent: OrderRow,
        legs: list[OrderRow],
        events: list[OrderEvent],
    ) -> bool:
        now = events[0].ts
        if events[0].kind is EventKind.CANCELED:
            await self._end_mleg(db, account, parent, legs, "canceled", events[0].reason, now)
            return True
        fills = [e.fill for e in events if e.fill is not None]
        if len(fills) != len(legs) or any(leg.status in TERMINAL_STATUSES for leg in legs):
            return False
        for fill in fills:
            if await MatcherRepository(db).fill_exists(fill.execution_id):
                return False  # stored before: never twice
        outcomes = []
        prices: dict[str, Decimal] = {}
        try:
            async with db.begin_nested():  # every leg or none
                for fill in fills:
                    assert fill.leg is not None  # noqa: S101 - an mleg fill names its leg
                    leg = legs[fill.leg]
                    book = await self._book(leg.instrument)
                    outcome = await book_fill(
                        db, self.settings, account, leg, book.facts,
                        execution_id=fill.execution_id, price=fill.price,
                        quantity=fill.quantity, liquidity=fill.liquidity.value,
                        source_id=_short_source(fill.source_id), ts=fill.ts,
                        hedged_margin=book.facts.is_derivative,
                    )  # fmt: skip
                    outcomes.append((leg, fill, outcome))
                    if book.facts.is_derivative:
                        prices[book.facts.key] = fill.price
                if prices:  # every F&O leg in, then the hedge-aware margin of the whole
                    await rebalance(db, self.ctx, self.settings, account, prices)
        except InsufficientFunds:
            await db.refresh(account)
            for row in (parent, *legs):
                await db.refresh(row)
            reason = "canceled: the legs' fills would take cash below zero"
            await self._end_mleg(db, account, parent, legs, "canceled", reason, now)
            return True
        net = ZERO
        for leg, fill, outcome in outcomes:
            if leg.reserved:
                await release(db, account, leg)
            transition(db, account, leg, "filled", "fill", now, execution_id=fill.execution_id)
            ratio = leg.ratio or 1
            net += ratio * fill.price if leg.side == "buy" else -ratio * fill.price
            emit(db, account, "fill", fill_out(outcome.fill).model_dump(mode="json"), now)
            emit(db, account, "position", _document(position_out(outcome.position, None, [])), now)
            self.stats.fills += 1
        parent.filled_quantity = parent.quantity
        parent.filled_value = tidy(net * parent.quantity)
        transition(db, account, parent, "filled", "fill", now)
        return True

    async def _end_mleg(
        self,
        db: AsyncSession,
        account: TradingAccount,
        parent: OrderRow,
        legs: list[OrderRow],
        status: str,
        reason: str | None,
        now: dt.datetime,
    ) -> None:
        for row in (*legs, parent):
            if row.status not in TERMINAL_STATUSES:
                await release(db, account, row)
                transition(db, account, row, status, status, now, reason=reason)

    async def _admit_member(self, row: OrderRow, account: TradingAccount, *, fresh: bool) -> None:
        """A member of a bracket, OCO or OTO: a modified one is replaced in its group (its
        quantity and active part are the group's), anything else (re)loads the group."""
        book = self.books.get(row.instrument)
        order_id = str(row.id)
        working = None if book is None else book.engine.get(order_id)
        if (
            book is not None
            and working is not None
            and book.engine.group_of(order_id) == _root(row)
        ):
            if working.version == row.version:
                return
            order = engine_order(row, account)
            if row.parent_id is not None or row.order_class == "oco":
                order = replace(order, quantity=working.quantity, active=working.active)
            await self._persist(book, book.engine.replace(order, utcnow()))
            return
        await self._place_group(_root(row), fresh=fresh)

    async def _place_group(self, root_id: str, *, fresh: bool) -> None:
        """Put a whole group to work as stored: added (its entry matched at once) when it is
        new, else restored; whatever of it the engine had before goes first."""
        async with self.ctx.database.session() as db:
            rows = await MatcherRepository(db).family(uuid.UUID(root_id))
        if not rows or rows[0][0].parent_id is not None:
            return
        root, account = rows[0]
        try:
            book = await self._book(root.instrument)
        except NotFound:
            return
        engine = book.engine
        engine.drop_group(root_id)
        for row, _ in rows:
            engine.cancel(str(row.id))
        open_rows = [row for row, _ in rows if row.status not in TERMINAL_STATUSES]
        for row, _ in rows:
            self.known.pop(str(row.id), None)
        if not open_rows:
            return
        for row in open_rows:
            self.known[str(row.id)] = _Known(row.account_id, row.instrument, row.expires_at)
        now = utcnow()
        if root.active_from is not None and root.active_from > now:
            self.waiting[root_id] = root.active_from
            return
        self.waiting.pop(root_id, None)
        group = group_from_rows([row for row, _ in rows], account)
        if fresh and not _was_matched(root):
            await self._persist(book, engine.add_group(group, now))
            return
        # One flag for the whole group: an exit is placed only once its entry has filled
        # (matched), and an OCO's stop-loss must not be matched as a taker; so an OCO is
        # restored as matched (its take-profit then fills as a maker).
        matched = root.order_class == "oco" or _matched_on_restore(root)
        engine.restore_group(group, matched=matched)
        # Exits the group has nothing left for (their entry ended short, a sibling filled)
        # while the database still has them open: their cancel was never stored.
        dropped = [row.id for row in open_rows if engine.get(str(row.id)) is None]
        if dropped:
            await self._cancel_dropped(account.id, dropped, now)

    async def _cancel_dropped(
        self, account_id: uuid.UUID, order_ids: list[uuid.UUID], now: dt.datetime
    ) -> None:
        async with self.ctx.database.session(immediate=True) as db:
            account = await AccountRepository(db).lock(account_id)
            if account is None:
                return
            for order_id in order_ids:
                row = await MatcherRepository(db).order(order_id, for_update=True)
                if row is None or row.status in TERMINAL_STATUSES:
                    continue
                await release(db, account, row)
                reason = "its group has nothing left for it to close"
                transition(db, account, row, "canceled", "canceled", now, reason=reason)
            emit(db, account, "account", account_document(account), now)
        for order_id in order_ids:
            self._forget(str(order_id))

    async def _admit(self, row: OrderRow, account: TradingAccount) -> None:
        """Put an open order (new, modified or restored) to work in its instrument's engine."""
        order_id = str(row.id)
        try:
            book = await self._book(row.instrument)
        except NotFound:
            log.warning("order on an unknown instrument", order_id=order_id)
            return
        self.known[order_id] = _Known(row.account_id, row.instrument, row.expires_at)
        now = utcnow()
        if row.active_from is not None and row.active_from > now:
            book.engine.cancel(order_id)
            self.waiting[order_id] = row.active_from
            return
        self.waiting.pop(order_id, None)
        working = book.engine.get(order_id)
        if working is not None and working.version == row.version:
            return
        order = engine_order(row, account)
        if working is not None:
            await self._persist(book, book.engine.replace(order, now))
        elif not _was_matched(row):
            await self._persist(book, book.engine.add(order, now))
        else:
            book.engine.restore(order)

    def _forget(self, order_id: str, *, group: bool = False) -> None:
        """Take an order out of the matcher; ``group``: its whole group with it (a cancel or
        an expiry of any member ends them all)."""
        known = self.known.pop(order_id, None)
        self.waiting.pop(order_id, None)
        if known is not None and known.mleg:
            self._forget_mleg(order_id)
            return
        if known is None or known.instrument not in self.books:
            return
        engine = self.books[known.instrument].engine
        if group and engine.group_of(order_id) is not None:
            for member in engine.drop_group(order_id):
                self.known.pop(member.id, None)
        else:
            engine.cancel(order_id)

    async def _forget_all(self) -> None:
        for book in self.books.values():
            if book.pump is not None:
                book.pump.cancel()
        self.books.clear()
        self.known.clear()
        self.waiting.clear()
        self.mleg = MultiLegBook(max_quote_age=self.max_quote_age)
        self.mleg_keys.clear()

    async def _resync(self) -> None:
        """Make the engines agree with the database: every open order working at its
        stored version, nothing else."""
        self._last_resync = time.monotonic()
        async with self.ctx.database.session() as db:
            rows = await MatcherRepository(db).orders_with_accounts()
        open_ids = {str(row.id) for row, _ in rows}
        for order_id in list(self.known):
            if order_id not in open_ids:
                self._forget(order_id)
        groups: set[str] = set()
        for row, account in rows:
            if row.order_class == "sliced":
                continue  # a plan: its children are the orders
            if row.order_class == "mleg":
                if row.parent_id is None:
                    working_mleg = self.mleg.get(str(row.id))
                    if working_mleg is None or working_mleg.version != row.version:
                        await self._place_mleg(str(row.id), fresh=False)
                continue  # a leg is no engine order of its own
            if _is_grouped(row):
                book = self.books.get(row.instrument)
                member = None if book is None else book.engine.get(str(row.id))
                if (
                    book is None
                    or member is None
                    or member.version != row.version
                    or book.engine.group_of(str(row.id)) != _root(row)
                ):
                    groups.add(_root(row))
                continue
            working = None
            book = self.books.get(row.instrument)
            if book is not None:
                working = book.engine.get(str(row.id))
            if working is None or working.version != row.version:
                if working is not None and book is not None:
                    book.engine.cancel(str(row.id))
                # Restored, not re-matched: a fill waits for the next tick.
                await self._restore(row, account)
        for root_id in sorted(groups):
            await self._place_group(root_id, fresh=False)

    async def _restore(self, row: OrderRow, account: TradingAccount) -> None:
        try:
            book = await self._book(row.instrument)
        except NotFound:
            return
        order_id = str(row.id)
        self.known[order_id] = _Known(row.account_id, row.instrument, row.expires_at)
        if row.active_from is not None and row.active_from > utcnow():
            self.waiting[order_id] = row.active_from
            return
        self.waiting.pop(order_id, None)
        book.engine.restore(engine_order(row, account), matched=_matched_on_restore(row))

    # --- the clock -----------------------------------------------------------------------
    async def _on_clock(self) -> None:
        now = utcnow()
        due = [order_id for order_id, at in self.waiting.items() if at <= now]
        for order_id in due:
            self.waiting.pop(order_id)
            loaded = await self._load(uuid.UUID(order_id))
            if loaded is not None and _is_grouped(loaded[0]):
                await self._place_group(_root(loaded[0]), fresh=True)
            elif loaded is not None and loaded[0].status not in TERMINAL_STATUSES:
                book = await self._book(loaded[0].instrument)
                released = engine_order(*loaded)
                if book.engine.get(released.id) is None:
                    await self._persist(book, book.engine.add(released, now))
        expired = [
            (order_id, known)
            for order_id, known in self.known.items()
            if known.expires_at is not None and known.expires_at <= now
        ]
        by_account: defaultdict[uuid.UUID, list[str]] = defaultdict(list)
        for order_id, known in expired:
            by_account[known.account_id].append(order_id)
        for account_id, order_ids in by_account.items():
            await self._expire(account_id, order_ids, now)
        tick = time.monotonic()
        if tick - self._last_resync >= RESYNC_S:
            await self._resync()
        if tick - self._last_square_off >= SQUARE_OFF_S:
            self._last_square_off = tick
            await square_off_intraday(self.ctx, now)
        if tick - self._last_settle >= SETTLE_S:
            self._last_settle = tick
            await settle_expiries(self.ctx, now)
            await self._settle_futures(now)
            await apply_corporate_actions(self.ctx, now)

    async def _expire(self, account_id: uuid.UUID, order_ids: list[str], now: dt.datetime) -> None:
        async with self.ctx.database.session(immediate=True) as db:
            account = await AccountRepository(db).lock(account_id)
            if account is not None:
                for order_id in order_ids:
                    row = await MatcherRepository(db).order(uuid.UUID(order_id), for_update=True)
                    if row is None or row.status in TERMINAL_STATUSES:
                        continue
                    reason = "day order expired at the session close"
                    members = [row]
                    if row.order_class == "mleg" and row.parent_id is None:
                        members += [
                            leg for leg, _ in (await MatcherRepository(db).family(row.id))[1:]
                        ]
                    for member in members:
                        if member.status not in TERMINAL_STATUSES:
                            await release(db, account, member)
                            transition(
                                db, account, member, "expired", "expired", now, reason=reason
                            )
                    await _sync_plans(db, account, members, now)
                emit(db, account, "account", account_document(account), now)
        for order_id in order_ids:
            self._forget(order_id, group=True)

    async def _settle_futures(self, now: dt.datetime) -> None:
        """Daily settlement: each futures position is marked to market into cash once per
        session, after its exchange's close, at the last price."""
        async with self.ctx.database.session() as db:
            positions = await MatcherRepository(db).futures_positions()
            due: list[tuple[uuid.UUID, str, str, dt.date]] = []
            for position in positions:
                row = await InstrumentService(db).get_row(position.instrument)
                day = last_closed_session(row.exchange, now)
                if position.settled_on is None or position.settled_on < day:
                    due.append((position.account_id, position.instrument, position.product, day))
        if not due:
            return
        quotes = await QuoteService(self.ctx.cache, self.ctx.bus).get_many(
            sorted({instrument for _, instrument, _, _ in due})
        )
        for account_id, instrument, product, day in due:
            quote = quotes.get(instrument)
            if quote is None:
                continue
            try:
                await self._settle_one(account_id, instrument, product, day, quote, now)
            except InsufficientFunds:
                # The loss exceeds the account's cash and the position's margin: it stays
                # unsettled (a margin call), and the other positions still settle.
                log.warning("settlement exceeds cash and margin", instrument=instrument)

    async def _settle_one(
        self,
        account_id: uuid.UUID,
        instrument: str,
        product: str,
        day: dt.date,
        quote: Quote,
        now: dt.datetime,
    ) -> None:
        async with self.ctx.database.session(immediate=True) as db:
            account = await AccountRepository(db).lock(account_id)
            held = await MatcherRepository(db).position(account_id, instrument, product)
            if account is None or held is None or held.quantity == 0:
                return
            if held.updated_at > quote.ts:
                return  # traded after this price: settle at a later one
            await settle_future(db, account, held, quote.last, day)
            emit(db, account, "position", _document(position_out(held, quote, [])), now)
            emit(db, account, "account", account_document(account), now)

    # --- persisting the engines' decisions -----------------------------------------------
    async def _persist(self, book: _Book, events: list[OrderEvent]) -> None:
        if not events:
            return
        started = time.perf_counter()
        by_account: defaultdict[uuid.UUID, list[OrderEvent]] = defaultdict(list)
        for event in events:
            known = self.known.get(event.order_id)
            if known is not None:
                by_account[known.account_id].append(event)
        stale: set[str] = set()
        for account_id, account_events in by_account.items():
            try:
                stale |= await self._persist_account(book, account_id, account_events)
            except Exception as exc:
                # Nothing of this account's share was stored (its transaction rolled back);
                # the engine applied it in memory, so its orders reload as stored.  Other
                # accounts' fills of the same tick are unaffected.
                log.exception("persisting a match failed", account=str(account_id), error=str(exc))
                stale |= {e.order_id for e in account_events}
        groups: set[str] = set()
        for order_id in stale:
            self.stats.dropped += 1
            gid = book.engine.group_of(order_id)
            if gid is None:
                await self._reload(book, order_id, groups)
            elif gid not in groups:
                groups.add(gid)
                await self._place_group(gid, fresh=False)
        self.stats.last_match_ms = (time.perf_counter() - started) * 1000

    async def _reload(self, book: _Book, order_id: str, groups: set[str]) -> None:
        book.engine.cancel(order_id)
        loaded = await self._load(uuid.UUID(order_id))
        if loaded is not None and _is_grouped(loaded[0]):
            gid = _root(loaded[0])
            if gid not in groups:
                groups.add(gid)
                await self._place_group(gid, fresh=False)
        elif loaded is None or loaded[0].status in TERMINAL_STATUSES:
            self._forget(order_id)
        else:
            book.engine.restore(engine_order(*loaded), matched=_matched_on_restore(loaded[0]))

    async def _persist_account(
        self, book: _Book, account_id: uuid.UUID, events: list[OrderEvent]
    ) -> set[str]:
        """Store one account's share of a match in one transaction; returns the orders whose
        engine state turned out stale (they are reloaded from the database).

        A fill the account cannot pay for rolls the whole transaction back, and it is done
        again with that fill's order canceled instead: rarer than a savepoint around every
        fill is dear (two round trips and a flush of their own on PostgreSQL)."""
        unaffordable: set[str] = set()
        while True:
            try:
                return await self._persist_account_once(book, account_id, events, unaffordable)
            except _Unaffordable as exc:
                if exc.execution_id in unaffordable:
                    raise  # the same fill again: never loop
                unaffordable.add(exc.execution_id)

    async def _persist_account_once(
        self,
        book: _Book,
        account_id: uuid.UUID,
        events: list[OrderEvent],
        unaffordable: set[str],
    ) -> set[str]:
        stale: set[str] = set()
        done: set[str] = set()
        # The match's new rows (fills, journal entries, events) go to the database through
        # Core at its end (trading.writes), not through the unit of work.
        pending = PendingRows()
        async with self.ctx.database.session(immediate=True) as db:
            account = await AccountRepository(db).lock(account_id)
            if account is None:
                return {e.order_id for e in events}
            fills = [e.fill.execution_id for e in events if e.fill is not None]
            found = await MatcherRepository(db).match_rows(
                {uuid.UUID(e.order_id) for e in events}, fills
            )
            rows = {str(order_id): row for order_id, row in found.orders.items()}
            # Fills to look up before booking: every one if any of them is stored already,
            # else none until booked here (a second event with the same id is then checked).
            unchecked = set() if found.any_stored else set(fills)
            touched = False
            applied = False
            # Flushed once, at the commit, not at each of the match's reads (the ORM's
            # autoflush wrote the reservation's release, then the fill, then the transition
            # as separate UPDATEs of the same rows); but before the next event's reads, which
            # must see this one's rows (a position it opened, the fill it stored).
            with db.no_autoflush:
                for event in events:
                    if event.order_id in stale:
                        continue
                    if applied:
                        await pending.write(db)
                        await db.flush()
                    row = rows.get(event.order_id)
                    if row is None:
                        stale.add(event.order_id)
                        continue
                    if row.status in TERMINAL_STATUSES or row.version != event.order_version:
                        # A cancel or a modify committed first: it wins over this computation.
                        stale.add(event.order_id)
                        continue
                    touched |= await self._apply(
                        db, pending, account, row, book.facts, event, stale, unaffordable, unchecked
                    )
                    applied = True
                    if row.status in TERMINAL_STATUSES:
                        done.add(event.order_id)
                await _sync_plans(db, account, rows.values(), utcnow(), pending=pending)
                if touched:
                    emit(pending, account, "account", account_document(account), utcnow())
                await pending.write(db)
        for order_id in done:
            self._forget(order_id)
        return stale

    async def _resize(
        self,
        sink: PendingRows,
        account: TradingAccount,
        row: OrderRow,
        event: OrderEvent,
        stale: set[str],
    ) -> bool:
        quantity = event.quantity
        if quantity is None or quantity <= row.filled_quantity:
            stale.add(event.order_id)  # the engine and the database disagree: reload
            return False
        released = await _resize_row(sink, account, row, quantity)
        transition(sink, account, row, row.status, "resized", event.ts)
        return released

    async def _apply(
        self,
        db: AsyncSession,
        sink: PendingRows,
        account: TradingAccount,
        row: OrderRow,
        facts: InstrumentFacts,
        event: OrderEvent,
        stale: set[str],
        unaffordable: set[str],
        unchecked: set[str],
    ) -> bool:
        now = event.ts
        if event.kind is EventKind.TRIGGERED:
            row.triggered = True
            transition(sink, account, row, row.status, "triggered", now)
            return False
        if event.kind is EventKind.CANCELED:
            await release(sink, account, row)
            transition(sink, account, row, "canceled", "canceled", now, reason=event.reason)
            return True
        if event.kind is EventKind.ACTIVATED:
            # A bracket's or OTO's exit may now trade event.quantity in all.
            status = "new" if row.status == "held" and event.quantity else row.status
            transition(sink, account, row, status, "activated", now)
            return False
        if event.kind is EventKind.RESIZED:
            return await self._resize(sink, account, row, event, stale)
        if event.kind is EventKind.TRAILED:
            row.stop_price = event.stop_price
            row.hwm = event.hwm
            transition(sink, account, row, row.status, "trailed", now)
            return False
        fill = event.fill
        if event.kind is not EventKind.FILL or fill is None:
            log.warning("engine event not stored", kind=str(event.kind), order_id=event.order_id)
            return False
        if fill.execution_id in unchecked:
            unchecked.discard(fill.execution_id)  # not stored when the transaction began
        elif await MatcherRepository(db).fill_exists(fill.execution_id):
            # Stored before a restart or by another matcher: never twice.  The engine counted
            # it again, so it reloads the order as stored.
            stale.add(event.order_id)
            return False
        if fill.quantity > row.quantity - row.filled_quantity:
            stale.add(event.order_id)
            return False
        status = status_after_fill(
            OrderStatus(row.status), row.quantity, row.filled_quantity, fill.quantity
        )
        if fill.execution_id in unaffordable:
            await release(sink, account, row)
            reason = "canceled: the fill would take cash below zero"
            transition(sink, account, row, "canceled", "canceled", now, reason=reason)
            stale.add(event.order_id)
            return True
        try:
            outcome = await book_fill(
                db,
                self.settings,
                account,
                row,
                facts,
                execution_id=fill.execution_id,
                price=fill.price,
                quantity=fill.quantity,
                liquidity=fill.liquidity.value,
                source_id=fill.source_id,
                ts=fill.ts,
                hedged_margin=facts.is_derivative,
                sink=sink,
            )
            if facts.is_derivative:  # F&O margin: the hedge-aware requirement
                await db.flush()  # rebalance reads the positions, this fill's among them
                await rebalance(db, self.ctx, self.settings, account, {facts.key: fill.price})
        except InsufficientFunds as exc:
            # Half of the fill may be in the session: the transaction is rolled back and done
            # again (``_persist_account``).
            raise _Unaffordable(fill.execution_id) from exc
        if status is OrderStatus.FILLED and row.reserved:
            await release(sink, account, row)
        transition(sink, account, row, status.value, "fill", now, execution_id=fill.execution_id)
        position = outcome.position
        if position.is_future and abs(position.quantity) == fill.quantity:
            # Opened by this fill: its first settlement is at the end of this session.
            position.settled_on = last_closed_session(facts.exchange, now)
        metrics, stats = self.metrics, self.stats

        async def count() -> None:
            # Counted once committed: quote-to-fill (benchmarks, the metric) ends there.
            stats.fills += 1
            metrics.fills.inc()
            metrics.quote_to_fill.observe(max((utcnow() - fill.ts).total_seconds(), 0.0))

        after_commit(db, count)
        emit(sink, account, "fill", fill_out(outcome.fill).model_dump(mode="json"), now)
        emit(
            sink,
            account,
            "position",
            position_out(outcome.position, None, []).model_dump(mode="json"),
            now,
        )
        return True


async def _resize_row(
    db: RowSink, account: TradingAccount, row: OrderRow, quantity: Decimal
) -> bool:
    """An exit's quantity set by its group; the reservation (if any) follows its open part."""
    open_before = row.quantity - row.filled_quantity
    open_after = quantity - row.filled_quantity
    released = False
    if row.reserved and open_after < open_before:
        await release(
            db, account, row, money(row.reserved * (open_before - open_after) / open_before)
        )
        released = True
    row.quantity = quantity
    return released


async def _sync_plans(
    db: AsyncSession,
    account: TradingAccount,
    rows: Iterable[OrderRow],
    now: dt.datetime,
    *,
    pending: PendingRows | None = None,
) -> None:
    """The plans of the sliced orders among ``rows`` follow their children (``pending``:
    the new rows not in the session yet)."""
    plans = {r.parent_id for r in rows if r.parent_id is not None and r.order_class == "simple"}
    if not plans:
        return
    if pending is not None:
        await pending.write(db)
    await db.flush()  # a plan sums its children as stored: these rows' changes first
    for plan_id in sorted(plans):
        plan = await MatcherRepository(db).order(plan_id, for_update=True)
        if plan is not None and plan.order_class == "sliced":
            await sync_plan(db, account, plan, now)
    # Stored before the events that follow the plans' (the outbox is read in id order).
    await db.flush()


def _short_source(source_id: str) -> str:
    """A fill's source id fits its column: an mleg fill's (its legs' quotes joined) may
    not, and is then named by its digest."""
    if len(source_id) <= 64:
        return source_id
    return "h:" + hashlib.sha256(source_id.encode()).hexdigest()[:62]


def _document(model: BaseModel) -> dict[str, object]:
    return model.model_dump(mode="json")


MATCHER = "trading_matcher"


@contextlib.asynccontextmanager
async def matcher_lifespan(ctx: AppContext) -> AsyncIterator[None]:
    if not ctx.settings.trading_matcher:
        yield
        return
    matcher = ctx.extensions[MATCHER] = Matcher(ctx)
    await matcher.start()
    try:
        yield
    finally:
        await ctx.extensions.pop(MATCHER).stop()
