"""Queries of saved strategies, scoped to their owner; legs through a strategy fetched for
its owner; linked paper orders through the same owner."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select

from quantdesk.platform.pagination import CursorCodec, split_page
from quantdesk.platform.repository import OwnerScopedRepository
from quantdesk.strategies.models import SavedStrategyLegRow, SavedStrategyRow
from quantdesk.trading.models import OrderRow

STRATEGY_CURSOR = CursorCodec("saved_strategies", 2)


def _position(created: str, row_id: str) -> tuple[dt.datetime, uuid.UUID]:
    return dt.datetime.fromisoformat(created), uuid.UUID(row_id)


class SavedStrategyRepository(OwnerScopedRepository[SavedStrategyRow]):
    model = SavedStrategyRow
    owner_column = "owner_id"

    async def page(
        self, owner_id: uuid.UUID, *, limit: int, cursor: str | None, tag: str | None = None
    ) -> tuple[list[SavedStrategyRow], str | None]:
        query = self.owned_by(owner_id).order_by(SavedStrategyRow.created_at, SavedStrategyRow.id)
        if cursor:
            created, row_id = STRATEGY_CURSOR.decode_as(cursor, _position)
            query = query.where(
                (SavedStrategyRow.created_at > created)
                | ((SavedStrategyRow.created_at == created) & (SavedStrategyRow.id > row_id))
            )
        rows = list((await self.db.execute(query.limit(limit + 1 if tag is None else 1000)))
                    .scalars().all())  # fmt: skip
        if tag is not None:  # tags are a JSON list: filtered here, on both databases
            rows = [row for row in rows if tag in row.tags][: limit + 1]
        return split_page(
            rows, limit,
            lambda last: STRATEGY_CURSOR.encode(last.created_at.isoformat(), str(last.id)),
        )  # fmt: skip

    async def legs(
        self, strategy_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[SavedStrategyLegRow]]:
        out: dict[uuid.UUID, list[SavedStrategyLegRow]] = {i: [] for i in strategy_ids}
        if not strategy_ids:
            return out
        query = (
            select(SavedStrategyLegRow)
            .where(SavedStrategyLegRow.strategy_id.in_(strategy_ids))
            .order_by(SavedStrategyLegRow.strategy_id, SavedStrategyLegRow.position)
        )
        for leg in (await self.db.execute(query)).scalars():
            out[leg.strategy_id].append(leg)
        return out

    async def replace_legs(self, strategy_id: uuid.UUID, legs: list[SavedStrategyLegRow]) -> None:
        await self.db.execute(
            delete(SavedStrategyLegRow).where(SavedStrategyLegRow.strategy_id == strategy_id)
        )
        self.db.add_all(legs)

    async def orders(
        self, owner_id: uuid.UUID, order_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, OrderRow]:
        """The owner's paper orders among ``order_ids`` (another user's are not found)."""
        if not order_ids:
            return {}
        query = select(OrderRow).where(OrderRow.id.in_(order_ids), OrderRow.user_id == owner_id)
        return {row.id: row for row in (await self.db.execute(query)).scalars()}

    async def strategy_linked_to(
        self, owner_id: uuid.UUID, order_id: uuid.UUID
    ) -> SavedStrategyRow | None:
        """The owner's saved strategy with a leg following ``order_id``, if any."""
        query = (
            select(SavedStrategyRow)
            .join(SavedStrategyLegRow, SavedStrategyLegRow.strategy_id == SavedStrategyRow.id)
            .where(SavedStrategyLegRow.order_id == order_id, SavedStrategyRow.owner_id == owner_id)
            .limit(1)
        )
        found: SavedStrategyRow | None = (await self.db.execute(query)).scalar_one_or_none()
        return found
