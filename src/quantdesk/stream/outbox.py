"""The read side of paper trading's outbox (``trading_events``) for the stream.

Trading writes every order transition, fill, position and account change to the outbox in
the transaction that made it, numbered in the account's strictly increasing ``event_seq``.
Because that number is taken on the account row (locked by the writer), an account's events
commit in sequence order: whoever has read up to ``seq`` N of an account and finds
``trading_accounts.event_seq`` = M knows exactly which events exist in between.  That is
what makes delivery gapless without any coordination between processes: every process reads
the outbox for its own clients (``service.OutboxTail``), and this module is all it asks.

Read-only over trading's tables except ``prune`` (retention, run by one process at a time).
Every query that starts from a client's request is owner-scoped (``owned_account``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ARRAY, BigInteger, any_, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from quantdesk.trading.models import TradingAccount, TradingEvent


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    account_id: uuid.UUID
    user_id: uuid.UUID
    seq: int
    type: str
    payload: str
    created_at: dt.datetime


_COLUMNS = (
    TradingEvent.id,
    TradingEvent.account_id,
    TradingEvent.user_id,
    TradingEvent.seq,
    TradingEvent.type,
    TradingEvent.payload,
    TradingEvent.created_at,
)


def _events(rows: Iterable[Sequence[object]]) -> list[OutboxEvent]:
    return [OutboxEvent(*row) for row in rows]  # type: ignore[arg-type]


async def latest_id(db: AsyncSession) -> int:
    found = await db.scalar(select(func.max(TradingEvent.id)))
    return int(found or 0)


async def events_after_id(
    db: AsyncSession | AsyncConnection, after_id: int, limit: int
) -> list[OutboxEvent]:
    """Events with an id above ``after_id``, in id order (the tail's fast path).

    Ids are not a commit order across accounts (two writers may commit out of id order), so
    the tail never relies on them alone: see ``account_heads``."""
    rows = await db.execute(
        select(*_COLUMNS).where(TradingEvent.id > after_id).order_by(TradingEvent.id).limit(limit)
    )
    return _events(rows.all())


async def events_with_ids(db: AsyncConnection, ids: Collection[int]) -> list[OutboxEvent]:
    """The events among ``ids`` that have committed (the tail's open gaps), in id order."""
    if db.dialect.name == "postgresql":
        # One array parameter: the same statement (prepared once) whatever the number of ids.
        wanted = TradingEvent.id == any_(bindparam("ids", list(ids), type_=ARRAY(BigInteger)))
    else:
        wanted = TradingEvent.id.in_(ids)
    rows = await db.execute(select(*_COLUMNS).where(wanted).order_by(TradingEvent.id))
    return _events(rows.all())


async def events_of_account(
    db: AsyncSession,
    account_id: uuid.UUID,
    *,
    from_seq: int,
    to_seq: int | None = None,
    types: Sequence[str] | None = None,
    limit: int = 500,
) -> list[OutboxEvent]:
    """One account's events from ``from_seq`` (inclusive) to ``to_seq`` (inclusive), in order."""
    query = select(*_COLUMNS).where(
        TradingEvent.account_id == account_id, TradingEvent.seq >= from_seq
    )
    if to_seq is not None:
        query = query.where(TradingEvent.seq <= to_seq)
    if types is not None:
        query = query.where(TradingEvent.type.in_(types))
    rows = await db.execute(query.order_by(TradingEvent.seq).limit(limit))
    return _events(rows.all())


async def account_heads(db: AsyncSession, account_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The last committed event sequence number of each account."""
    if not account_ids:
        return {}
    rows = await db.execute(
        select(TradingAccount.id, TradingAccount.event_seq).where(
            TradingAccount.id.in_(account_ids)
        )
    )
    return {account_id: int(seq) for account_id, seq in rows.all()}


async def owned_account(db: AsyncSession, account_id: uuid.UUID, user_id: uuid.UUID) -> int | None:
    """The account's last event sequence number if ``user_id`` owns it; None otherwise
    (another user's account and a missing one look the same)."""
    seq = await db.scalar(
        select(TradingAccount.event_seq).where(
            TradingAccount.id == account_id, TradingAccount.user_id == user_id
        )
    )
    return None if seq is None else int(seq)


async def first_retained_seq(db: AsyncSession, account_id: uuid.UUID) -> int | None:
    found = await db.scalar(
        select(func.min(TradingEvent.seq)).where(TradingEvent.account_id == account_id)
    )
    return None if found is None else int(found)


async def prune(db: AsyncSession, before: dt.datetime) -> int:
    """Drop outbox events created before ``before``; returns how many.

    An account's newest event is always kept, so ``first_retained_seq`` can tell a cursor
    older than the retention (``resync_required``) from an account that has had no events."""
    heads = select(TradingAccount.event_seq).where(TradingAccount.id == TradingEvent.account_id)
    result = await db.execute(
        delete(TradingEvent).where(
            TradingEvent.created_at < before, TradingEvent.seq < heads.scalar_subquery()
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
