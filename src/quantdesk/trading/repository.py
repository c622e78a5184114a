"""Queries of paper trading, every one scoped to an owner or to an account the caller holds.

Accounts are owner-scoped (another user's account is ``None``, hence a 404); orders, fills,
positions and ledger entries are reached only through an account already fetched for its
owner, so they need no owner column of their own in their queries.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from quantdesk.marketdata.models import CorporateActionRow
from quantdesk.platform.db import ExactDecimal
from quantdesk.platform.pagination import CursorCodec, split_page
from quantdesk.platform.repository import OwnerScopedRepository
from quantdesk.trading.models import (
    CorporateActionApplied,
    FillRow,
    LedgerEntry,
    LedgerPosting,
    OrderEventRow,
    OrderRow,
    PositionRow,
    TradingAccount,
    TradingEvent,
)

ACCOUNT_CURSOR = CursorCodec("trading_accounts", 2)
ORDER_CURSOR = CursorCodec("orders", 2)
FILL_CURSOR = CursorCodec("fills", 1)
LEDGER_CURSOR = CursorCodec("ledger", 1)

OPEN_STATUSES = (
    "pending_new",
    "held",
    "new",
    "partially_filled",
    "pending_cancel",
    "pending_replace",
)
# Orders whose children are exits sharing the parent's quantity: the children close what
# the parent opens (or, an OCO's stop-loss, what its take-profit closes), so they claim no
# position of their own.
CONTINGENT_CLASSES = ("bracket", "oco", "oto")


def _claims_position() -> ColumnElement[bool]:
    """Not a contingent group's child (an exit claims nothing of its own), nor a sliced
    order's plan (its children claim)."""
    return and_(
        or_(OrderRow.parent_id.is_(None), OrderRow.order_class.not_in(CONTINGENT_CLASSES)),
        OrderRow.order_class != "sliced",
    )


# A placement batch's reads, built once: building a statement (its IN lists, its claims
# expression) cost the placement path more than compiling it, which SQLAlchemy caches.  The
# lists are expanding parameters, filled at execution.
_ACCOUNTS: BindParameter[uuid.UUID] = bindparam("accounts", expanding=True)
_INSTRUMENTS: BindParameter[str] = bindparam("instruments", expanding=True)
_OPEN_GROUP = (OrderRow.account_id, OrderRow.instrument, OrderRow.product, OrderRow.side)
_OPEN_WHERE = (
    OrderRow.account_id.in_(_ACCOUNTS),
    OrderRow.instrument.in_(_INSTRUMENTS),
    OrderRow.status.in_(OPEN_STATUSES),
    _claims_position(),
)
# PostgreSQL sums them (NUMERIC is exact): one row per key, not one per open order, which
# a placement batch would otherwise read and convert every time.
_OPEN_SUMMED = (
    select(
        *_OPEN_GROUP,
        func.sum(OrderRow.quantity - OrderRow.filled_quantity, type_=ExactDecimal),
    )
    .where(*_OPEN_WHERE)
    .group_by(*_OPEN_GROUP)
)
# SQLite's SUM over exact decimals (TEXT) would go through floats: summed in Python.
_OPEN_EACH = select(*_OPEN_GROUP, OrderRow.quantity, OrderRow.filled_quantity).where(*_OPEN_WHERE)
_HELD = select(
    PositionRow.account_id, PositionRow.instrument, PositionRow.product, PositionRow.quantity
).where(PositionRow.account_id.in_(_ACCOUNTS), PositionRow.instrument.in_(_INSTRUMENTS))


def _position(created: str, row_id: str) -> tuple[dt.datetime, uuid.UUID]:
    return dt.datetime.fromisoformat(created), uuid.UUID(row_id)


def _newest_first(query: Select[OrderRow], cursor: str | None) -> Select[OrderRow]:
    if cursor:
        created, row_id = ORDER_CURSOR.decode_as(cursor, _position)
        query = query.where(
            (OrderRow.created_at < created)
            | ((OrderRow.created_at == created) & (OrderRow.id < row_id))
        )
    return query.order_by(OrderRow.created_at.desc(), OrderRow.id.desc())


def child_order(row: OrderRow) -> tuple[int, int, dt.datetime, str]:
    """Children in a stable order: legs by their place, a take-profit (a limit) before a
    stop-loss, slices by their number."""
    return (row.leg if row.leg is not None else 0, row.type != "limit", row.created_at, str(row.id))


class AccountRepository(OwnerScopedRepository[TradingAccount]):
    model = TradingAccount

    async def page(
        self, owner_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> tuple[list[TradingAccount], str | None]:
        query = self.owned_by(owner_id).order_by(TradingAccount.created_at, TradingAccount.id)
        if cursor:
            created, row_id = ACCOUNT_CURSOR.decode_as(cursor, _position)
            query = query.where(
                (TradingAccount.created_at > created)
                | ((TradingAccount.created_at == created) & (TradingAccount.id > row_id))
            )
        rows = (await self.db.execute(query.limit(limit + 1))).scalars().all()
        return split_page(
            rows,
            limit,
            lambda last: ACCOUNT_CURSOR.encode(last.created_at.isoformat(), str(last.id)),
        )

    async def lock(self, account_id: uuid.UUID) -> TradingAccount | None:
        """The account row, locked for this transaction (the matcher's way in: no owner)."""
        found: TradingAccount | None = (
            await self.db.execute(_LOCK_ACCOUNT, {"account_id": account_id})
        ).scalar_one_or_none()
        return found


class TradingRepository:
    """Rows under one account (the caller has fetched and, to write, locked the account)."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def order(
        self, account_id: uuid.UUID, order_id: uuid.UUID, *, for_update: bool = False
    ) -> OrderRow | None:
        query = select(OrderRow).where(OrderRow.account_id == account_id, OrderRow.id == order_id)
        if for_update:
            query = query.with_for_update()
        found: OrderRow | None = (await self.db.execute(query)).scalar_one_or_none()
        return found

    async def orders_page(
        self,
        account_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
        statuses: Sequence[str] | None = None,
        instrument: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> tuple[list[OrderRow], str | None]:
        query = select(OrderRow).where(OrderRow.account_id == account_id)
        if statuses:
            query = query.where(OrderRow.status.in_(statuses))
        if instrument:
            query = query.where(OrderRow.instrument == instrument)
        if since:
            query = query.where(OrderRow.created_at >= since)
        if until:
            query = query.where(OrderRow.created_at < until)
        rows = (await self.db.execute(_newest_first(query, cursor).limit(limit + 1))).scalars()
        return split_page(
            rows.all(),
            limit,
            lambda last: ORDER_CURSOR.encode(last.created_at.isoformat(), str(last.id)),
        )

    async def children(
        self, parent_ids: Collection[uuid.UUID], *, for_update: bool = False
    ) -> dict[uuid.UUID, list[OrderRow]]:
        """The orders hanging from each parent, in their legs' order (exits: the
        take-profit first), by parent id."""
        if not parent_ids:
            return {}
        query = select(OrderRow).where(OrderRow.parent_id.in_(list(parent_ids)))
        if for_update:
            query = query.with_for_update()
        found: dict[uuid.UUID, list[OrderRow]] = {}
        for row in (await self.db.execute(query)).scalars():
            assert row.parent_id is not None  # noqa: S101 - selected by it
            found.setdefault(row.parent_id, []).append(row)
        for rows in found.values():
            rows.sort(key=child_order)
        return found

    async def open_orders(self, account_id: uuid.UUID) -> Sequence[OrderRow]:
        query = (
            select(OrderRow)
            .where(OrderRow.account_id == account_id, OrderRow.status.in_(OPEN_STATUSES))
            .order_by(OrderRow.created_at, OrderRow.id)
        )
        return (await self.db.execute(query)).scalars().all()

    async def open_quantity(
        self,
        account_id: uuid.UUID,
        instrument: str,
        product: str,
        side: str,
        exclude: uuid.UUID | None = None,
    ) -> Decimal:
        """Units still to fill on the account's open orders for one instrument, product and
        side (two columns read, no order objects: this runs on every placement)."""
        query = select(OrderRow.quantity, OrderRow.filled_quantity).where(
            OrderRow.account_id == account_id,
            OrderRow.status.in_(OPEN_STATUSES),
            OrderRow.instrument == instrument,
            OrderRow.product == product,
            OrderRow.side == side,
            _claims_position(),
        )
        if exclude is not None:
            query = query.where(OrderRow.id != exclude)
        # Summed in Python: SQLite's SUM over exact decimals (TEXT) would go through floats.
        return sum((q - f for q, f in await self.db.execute(query)), Decimal(0))

    async def open_quantities(
        self, account_ids: Collection[uuid.UUID], instruments: Collection[str]
    ) -> dict[tuple[uuid.UUID, str, str, str], Decimal]:
        """``open_quantity`` for every (account, instrument, product, side) at once."""
        params = {"accounts": list(account_ids), "instruments": list(instruments)}
        totals: dict[tuple[uuid.UUID, str, str, str], Decimal] = {}
        if self.db.get_bind().dialect.name == "postgresql":
            for account_id, instrument, product, side, total in await self.db.execute(
                _OPEN_SUMMED, params
            ):
                totals[(account_id, instrument, product, side)] = total
            return totals
        for account_id, instrument, product, side, quantity, filled in await self.db.execute(
            _OPEN_EACH, params
        ):
            key = (account_id, instrument, product, side)
            totals[key] = totals.get(key, Decimal(0)) + quantity - filled
        return totals

    async def held_quantities(
        self, account_ids: Collection[uuid.UUID], instruments: Collection[str]
    ) -> dict[tuple[uuid.UUID, str, str], Decimal]:
        """Position quantities by (account, instrument, product)."""
        params = {"accounts": list(account_ids), "instruments": list(instruments)}
        rows = await self.db.execute(_HELD, params)
        return {(a, i, p): quantity for a, i, p, quantity in rows}

    async def orders_by_client_id(
        self, wanted: Collection[tuple[uuid.UUID, str]]
    ) -> dict[tuple[uuid.UUID, str], OrderRow]:
        """The orders of the (account, client_order_id) pairs that exist."""
        if not wanted:
            return {}
        query = select(OrderRow).where(
            OrderRow.account_id.in_({account for account, _ in wanted}),
            OrderRow.client_order_id.in_({client_id for _, client_id in wanted}),
        )
        found = {}
        for order in (await self.db.execute(query)).scalars():
            assert order.client_order_id is not None  # noqa: S101 - selected by it
            key = (order.account_id, order.client_order_id)
            if key in wanted:
                found[key] = order
        return found

    async def events(self, order_id: uuid.UUID) -> Sequence[OrderEventRow]:
        query = (
            select(OrderEventRow)
            .where(OrderEventRow.order_id == order_id)
            .order_by(OrderEventRow.id)
        )
        return (await self.db.execute(query)).scalars().all()

    async def fills_page(
        self,
        account_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
        order_id: uuid.UUID | None = None,
    ) -> tuple[list[FillRow], str | None]:
        query = select(FillRow).where(FillRow.account_id == account_id)
        if order_id is not None:
            query = query.where(FillRow.order_id == order_id)
        if cursor:
            (after,) = FILL_CURSOR.decode_as(cursor, lambda part: (int(part),))
            query = query.where(FillRow.id < after)
        rows = await self.db.execute(query.order_by(FillRow.id.desc()).limit(limit + 1))
        return split_page(
            rows.scalars().all(), limit, lambda last: FILL_CURSOR.encode(str(last.id))
        )

    async def fills_since(self, account_id: uuid.UUID, since: dt.datetime) -> Sequence[FillRow]:
        query = select(FillRow).where(FillRow.account_id == account_id, FillRow.ts >= since)
        return (await self.db.execute(query)).scalars().all()

    async def fill_exists(self, execution_id: str) -> bool:
        query = select(FillRow.id).where(FillRow.execution_id == execution_id)
        return (await self.db.execute(query)).first() is not None

    async def delivery_buys(
        self, account_id: uuid.UUID, since: dt.datetime, instrument: str | None = None
    ) -> dict[str, list[tuple[dt.datetime, Decimal]]]:
        """(time, quantity) of the account's delivery (CNC) buy fills since ``since``, by
        instrument: what T+1 settlement has still to move into holdings."""
        query = select(FillRow.instrument, FillRow.ts, FillRow.quantity).where(
            FillRow.account_id == account_id,
            FillRow.product == "cnc",
            FillRow.side == "buy",
            FillRow.ts >= since,
        )
        if instrument is not None:
            query = query.where(FillRow.instrument == instrument)
        found: dict[str, list[tuple[dt.datetime, Decimal]]] = {}
        for key, ts, quantity in (await self.db.execute(query)).all():
            found.setdefault(key, []).append((ts, quantity))
        return found

    async def positions(self, account_id: uuid.UUID) -> Sequence[PositionRow]:
        query = (
            select(PositionRow)
            .where(PositionRow.account_id == account_id)
            .order_by(PositionRow.instrument, PositionRow.product)
        )
        return (await self.db.execute(query)).scalars().all()

    async def position(
        self, account_id: uuid.UUID, instrument: str, product: str
    ) -> PositionRow | None:
        return await self.db.get(PositionRow, (account_id, instrument, product))

    async def ledger_page(
        self, account_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> tuple[list[tuple[LedgerEntry, list[LedgerPosting]]], str | None]:
        query = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
        if cursor:
            (after,) = LEDGER_CURSOR.decode_as(cursor, lambda part: (int(part),))
            query = query.where(LedgerEntry.id < after)
        entries = (
            (await self.db.execute(query.order_by(LedgerEntry.id.desc()).limit(limit + 1)))
            .scalars()
            .all()
        )
        page, next_cursor = split_page(
            entries, limit, lambda last: LEDGER_CURSOR.encode(str(last.id))
        )
        lines: dict[int, list[LedgerPosting]] = {entry.id: [] for entry in page}
        if lines:
            postings = await self.db.execute(
                select(LedgerPosting)
                .where(LedgerPosting.entry_id.in_(list(lines)))
                .order_by(LedgerPosting.id)
            )
            for posting in postings.scalars():
                lines[posting.entry_id].append(posting)
        return [(entry, lines[entry.id]) for entry in page], next_cursor

    async def wipe(self, account_id: uuid.UUID) -> None:
        """Everything under the account but the account and its outbox (a reset)."""
        for model in (FillRow, OrderEventRow, OrderRow, PositionRow, LedgerPosting, LedgerEntry):
            await self.db.execute(delete(model).where(model.account_id == account_id))


# A match's reads, built once as the placement's are: built and keyed anew they cost about
# half a millisecond of every fill.
_LOCK_ACCOUNT = (
    select(TradingAccount).where(TradingAccount.id == bindparam("account_id")).with_for_update()
)


def _match_rows(stored: ColumnElement[bool]) -> Select[OrderRow, PositionRow, bool]:
    held = and_(
        PositionRow.account_id == OrderRow.account_id,
        PositionRow.instrument == OrderRow.instrument,
        PositionRow.product == OrderRow.product,
    )
    return (
        select(OrderRow, PositionRow, stored.label("stored"))
        .outerjoin(PositionRow, held)
        .where(OrderRow.id.in_(bindparam("orders", expanding=True)))
        .with_for_update(of=OrderRow)
    )


_MATCH_ROWS = _match_rows(
    exists().where(FillRow.execution_id.in_(bindparam("fills", expanding=True)))
)
_MATCH_ROWS_NO_FILLS = _match_rows(literal(False))


@dataclass(slots=True)
class MatchRows:
    orders: dict[uuid.UUID, OrderRow]
    # Held for the transaction: the session keeps an unchanged row only while something
    # refers to it, and ``book_fill`` looks the position up in the session.
    positions: list[PositionRow]
    any_stored: bool


class MatcherRepository:
    """What the matcher reads across accounts: it serves every user's orders."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def orders_with_accounts(
        self, *, order_id: uuid.UUID | None = None
    ) -> list[tuple[OrderRow, TradingAccount]]:
        """One order (any status) or every open order, oldest first, with its account."""
        query = select(OrderRow, TradingAccount).join(
            TradingAccount, TradingAccount.id == OrderRow.account_id
        )
        if order_id is not None:
            query = query.where(OrderRow.id == order_id)
        else:
            query = query.where(OrderRow.status.in_(OPEN_STATUSES))
        rows = await self.db.execute(query.order_by(OrderRow.created_at, OrderRow.id))
        return [(order, account) for order, account in rows]

    async def family(self, root_id: uuid.UUID) -> list[tuple[OrderRow, TradingAccount]]:
        """A group: its parent and every order hanging from it (any status), the parent
        first, with its account."""
        query = (
            select(OrderRow, TradingAccount)
            .join(TradingAccount, TradingAccount.id == OrderRow.account_id)
            .where(or_(OrderRow.id == root_id, OrderRow.parent_id == root_id))
        )
        rows = [(order, account) for order, account in await self.db.execute(query)]
        rows.sort(key=lambda pair: (pair[0].parent_id is not None, child_order(pair[0])))
        return rows

    async def match_rows(
        self, order_ids: Collection[uuid.UUID], execution_ids: Collection[str]
    ) -> MatchRows:
        """What storing a match of one account reads, in one query: its orders, locked; their
        positions, into the session (where ``book_fill`` finds them without a query of its
        own); and whether any of ``execution_ids`` is stored already (rarely: after a
        restart or by another matcher; only then is each fill looked up)."""
        if execution_ids:
            query, values = _MATCH_ROWS, {"orders": list(order_ids), "fills": list(execution_ids)}
        else:
            query, values = _MATCH_ROWS_NO_FILLS, {"orders": list(order_ids)}
        found = MatchRows({}, [], any_stored=False)
        for order, position, flag in await self.db.execute(query, values):
            found.orders[order.id] = order
            if position is not None:
                found.positions.append(position)
            found.any_stored = found.any_stored or bool(flag)
        return found

    async def order(self, order_id: uuid.UUID, *, for_update: bool = False) -> OrderRow | None:
        query = select(OrderRow).where(OrderRow.id == order_id)
        if for_update:
            query = query.with_for_update()
        found: OrderRow | None = (await self.db.execute(query)).scalar_one_or_none()
        return found

    async def expiring(self, now: dt.datetime) -> Sequence[OrderRow]:
        query = select(OrderRow).where(
            OrderRow.status.in_(OPEN_STATUSES), OrderRow.expires_at <= now
        )
        return (await self.db.execute(query)).scalars().all()

    async def fill_exists(self, execution_id: str) -> bool:
        query = select(FillRow.id).where(FillRow.execution_id == execution_id)
        return (await self.db.execute(query)).first() is not None

    async def position(
        self, account_id: uuid.UUID, instrument: str, product: str
    ) -> PositionRow | None:
        return await self.db.get(
            PositionRow, (account_id, instrument, product), with_for_update=True
        )

    async def pending_corporate_actions(
        self, until: dt.date
    ) -> Sequence[tuple[CorporateActionRow, PositionRow]]:
        """Actions with an ex-date up to ``until`` and the open delivery and intraday
        holdings of their instrument that they have not been applied to yet."""
        applied = CorporateActionApplied
        query = (
            select(CorporateActionRow, PositionRow)
            .join(PositionRow, PositionRow.instrument == CorporateActionRow.instrument)
            .outerjoin(
                applied,
                (applied.action_id == CorporateActionRow.id)
                & (applied.account_id == PositionRow.account_id)
                & (applied.product == PositionRow.product),
            )
            .where(
                CorporateActionRow.ex_date <= until,
                PositionRow.product.in_(["cnc", "mis"]),
                PositionRow.quantity != Decimal(0),
                applied.action_id.is_(None),
            )
            .order_by(CorporateActionRow.ex_date, CorporateActionRow.id)
        )
        return [(action, position) for action, position in (await self.db.execute(query)).all()]

    async def open_positions(self, products: Sequence[str]) -> Sequence[PositionRow]:
        query = select(PositionRow).where(
            PositionRow.product.in_(list(products)), PositionRow.quantity != Decimal(0)
        )
        return (await self.db.execute(query)).scalars().all()

    async def futures_positions(self) -> Sequence[PositionRow]:
        query = select(PositionRow).where(
            PositionRow.is_future.is_(True), PositionRow.quantity != Decimal(0)
        )
        return (await self.db.execute(query)).scalars().all()

    async def unpublished_events(self, limit: int) -> Sequence[TradingEvent]:
        query = (
            select(TradingEvent)
            .where(TradingEvent.published_at.is_(None))
            .order_by(TradingEvent.id)
            .limit(limit)
        )
        return (await self.db.execute(query)).scalars().all()
