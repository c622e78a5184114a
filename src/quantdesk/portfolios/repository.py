"""Queries of portfolios, every one scoped to an owner or to a portfolio already fetched
for its owner (accounts and transactions have no owner column of their own)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.pagination import CursorCodec, split_page
from quantdesk.platform.repository import OwnerScopedRepository
from quantdesk.portfolios.models import (
    FxRateRow,
    PortfolioAccountRow,
    PortfolioRow,
    PortfolioTransactionRow,
)

PORTFOLIO_CURSOR = CursorCodec("portfolios", 2)
TRANSACTION_CURSOR = CursorCodec("portfolio_transactions", 3)


def _created(created: str, row_id: str) -> tuple[dt.datetime, uuid.UUID]:
    return dt.datetime.fromisoformat(created), uuid.UUID(row_id)


def _dated(day: str, seq: str, row_id: str) -> tuple[dt.date, int, uuid.UUID]:
    return dt.date.fromisoformat(day), int(seq), uuid.UUID(row_id)


class PortfolioRepository(OwnerScopedRepository[PortfolioRow]):
    model = PortfolioRow

    async def page(
        self, owner_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> tuple[list[PortfolioRow], str | None]:
        query = self.owned_by(owner_id).order_by(PortfolioRow.created_at, PortfolioRow.id)
        if cursor:
            created, row_id = PORTFOLIO_CURSOR.decode_as(cursor, _created)
            query = query.where(
                (PortfolioRow.created_at > created)
                | ((PortfolioRow.created_at == created) & (PortfolioRow.id > row_id))
            )
        rows = (await self.db.execute(query.limit(limit + 1))).scalars().all()
        return split_page(
            rows,
            limit,
            lambda last: PORTFOLIO_CURSOR.encode(last.created_at.isoformat(), str(last.id)),
        )


class PortfolioContents:
    """Accounts and transactions of one portfolio (the caller fetched it for its owner)."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def accounts(self, portfolio_ids: Sequence[uuid.UUID]) -> list[PortfolioAccountRow]:
        if not portfolio_ids:
            return []
        query = (
            select(PortfolioAccountRow)
            .where(PortfolioAccountRow.portfolio_id.in_(portfolio_ids))
            .order_by(PortfolioAccountRow.created_at, PortfolioAccountRow.id)
        )
        return list((await self.db.execute(query)).scalars().all())

    async def transactions(self, portfolio_id: uuid.UUID) -> list[PortfolioTransactionRow]:
        query = (
            select(PortfolioTransactionRow)
            .where(PortfolioTransactionRow.portfolio_id == portfolio_id)
            .order_by(PortfolioTransactionRow.trade_date, PortfolioTransactionRow.seq)
        )
        return list((await self.db.execute(query)).scalars().all())

    async def transaction(
        self, portfolio_id: uuid.UUID, transaction_id: uuid.UUID
    ) -> PortfolioTransactionRow | None:
        query = select(PortfolioTransactionRow).where(
            PortfolioTransactionRow.portfolio_id == portfolio_id,
            PortfolioTransactionRow.id == transaction_id,
        )
        found: PortfolioTransactionRow | None = (await self.db.execute(query)).scalar_one_or_none()
        return found

    async def transactions_page(
        self,
        portfolio_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
        types: Sequence[str] | None = None,
        instrument: str | None = None,
        account_id: uuid.UUID | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> tuple[list[PortfolioTransactionRow], str | None]:
        """Newest first: (date, seq, id) descending."""
        t = PortfolioTransactionRow
        query = select(t).where(t.portfolio_id == portfolio_id)
        if types:
            query = query.where(t.type.in_(types))
        if instrument:
            query = query.where(t.instrument == instrument)
        if account_id:
            query = query.where(t.account_id == account_id)
        if since:
            query = query.where(t.trade_date >= since)
        if until:
            query = query.where(t.trade_date <= until)
        if cursor:
            day, seq, row_id = TRANSACTION_CURSOR.decode_as(cursor, _dated)
            query = query.where(
                (t.trade_date < day)
                | ((t.trade_date == day) & (t.seq < seq))
                | ((t.trade_date == day) & (t.seq == seq) & (t.id < row_id))
            )
        query = query.order_by(t.trade_date.desc(), t.seq.desc(), t.id.desc()).limit(limit + 1)
        rows = (await self.db.execute(query)).scalars().all()
        return split_page(
            rows,
            limit,
            lambda last: TRANSACTION_CURSOR.encode(
                last.trade_date.isoformat(), str(last.seq), str(last.id)
            ),
        )

    async def fingerprints(self, portfolio_id: uuid.UUID) -> set[str]:
        query = select(PortfolioTransactionRow.fingerprint).where(
            PortfolioTransactionRow.portfolio_id == portfolio_id
        )
        return set((await self.db.execute(query)).scalars().all())

    async def external_ids(self, portfolio_id: uuid.UUID) -> set[str]:
        query = select(PortfolioTransactionRow.external_id).where(
            PortfolioTransactionRow.portfolio_id == portfolio_id,
            PortfolioTransactionRow.external_id.is_not(None),
        )
        return {e for e in (await self.db.execute(query)).scalars().all() if e}

    async def count(self, portfolio_id: uuid.UUID) -> int:
        query = select(func.count()).where(PortfolioTransactionRow.portfolio_id == portfolio_id)
        return int((await self.db.execute(query)).scalar_one())


MANUAL_SOURCE = "manual"  # rates an admin posted: what no fetched or demo rate overwrites


class FxRates:
    """The FX rate table (shared market data, not user-owned)."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def on_or_before(self, base: str, quote: str, day: dt.date) -> Decimal | None:
        """1 ``base`` in ``quote`` on ``day`` (the latest rate on or before it; the inverse
        pair's rate inverted when only that is stored)."""
        for b, q, invert in ((base, quote, False), (quote, base, True)):
            query = (
                select(FxRateRow.rate)
                .where(FxRateRow.base == b, FxRateRow.quote == q, FxRateRow.day <= day)
                .order_by(FxRateRow.day.desc())
                .limit(1)
            )
            rate = (await self.db.execute(query)).scalar_one_or_none()
            if rate is not None:
                return (Decimal(1) / rate) if invert else rate
        return None

    async def series(self, base: str, quote: str) -> dict[dt.date, Decimal]:
        """Every stored day of 1 ``base`` in ``quote`` (from either direction)."""
        out: dict[dt.date, Decimal] = {}
        for b, q, invert in ((quote, base, True), (base, quote, False)):
            query = select(FxRateRow.day, FxRateRow.rate).where(
                FxRateRow.base == b, FxRateRow.quote == q
            )
            for day, rate in (await self.db.execute(query)).all():
                out[day] = (Decimal(1) / rate) if invert else rate
        return out

    async def upsert(self, rows: Sequence[tuple[str, str, dt.date, Decimal]]) -> int:
        for base, quote, day, rate in rows:
            existing = await self.db.get(FxRateRow, (base, quote, day))
            if existing is None:
                self.db.add(FxRateRow(base=base, quote=quote, day=day, rate=rate))
            else:
                existing.rate, existing.source = rate, MANUAL_SOURCE
        await self.db.flush()
        return len(rows)

    async def store_fetched(
        self, base: str, quote: str, rates: Sequence[tuple[dt.date, Decimal]], source: str
    ) -> tuple[int, int]:
        """Store a provider's rates of one pair: ``(stored, kept)``, where ``kept`` counts the
        days an admin's own rate (``manual``) stays, since the provider's never replaces it."""
        if not rates:
            return 0, 0
        days = [day for day, _ in rates]
        query = select(FxRateRow).where(
            FxRateRow.base == base, FxRateRow.quote == quote,
            FxRateRow.day >= min(days), FxRateRow.day <= max(days),
        )  # fmt: skip
        existing = {row.day: row for row in (await self.db.execute(query)).scalars()}
        stored = kept = 0
        for day, rate in rates:
            row = existing.get(day)
            if row is None:
                self.db.add(FxRateRow(base=base, quote=quote, day=day, rate=rate, source=source))
            elif row.source == MANUAL_SOURCE:
                kept += 1
                continue
            else:
                row.rate, row.source = rate, source
            stored += 1
        await self.db.flush()
        return stored, kept

    async def listing(self, base: str, quote: str, limit: int) -> list[FxRateRow]:
        query = (
            select(FxRateRow)
            .where(FxRateRow.base == base, FxRateRow.quote == quote)
            .order_by(FxRateRow.day.desc())
            .limit(limit)
        )
        return list((await self.db.execute(query)).scalars().all())
