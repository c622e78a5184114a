"""The base of every repository of user-owned rows: each query takes the owner.

Tenancy lives here, not in routers: a row of another user is indistinguishable from a
missing one (``get_for_owner`` answers ``None``, which the service turns into a 404), and
there is no method that fetches a user-owned row by id alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.db import Base

OwnedT = TypeVar("OwnedT", bound=Base)
_MANY_FOR_OWNERS: dict[tuple[type[Any], str, bool], Select[Any]] = {}


class OwnerScopedRepository(Generic[OwnedT]):
    """Queries over ``model`` rows owned through ``owner_column`` (``user_id`` by default)."""

    model: ClassVar[type[Any]]
    owner_column: ClassVar[str] = "user_id"

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    def owned_by(self, owner_id: uuid.UUID) -> Select[OwnedT]:
        """Every row of ``owner_id``, as a query to narrow further."""
        return select(self.model).where(getattr(self.model, self.owner_column) == owner_id)

    async def get_for_owner(
        self, owner_id: uuid.UUID, row_id: Any, *, for_update: bool = False
    ) -> OwnedT | None:
        """The row ``row_id`` if ``owner_id`` owns it, else ``None`` (whoever else does)."""
        query = self.owned_by(owner_id).where(self.model.id == row_id)
        if for_update:
            # SQLite ignores FOR UPDATE; its writers hold an immediate transaction instead.
            query = query.with_for_update()
        found: OwnedT | None = (await self.db.execute(query)).scalar_one_or_none()
        return found

    async def get_many_for_owners(
        self, pairs: Iterable[tuple[uuid.UUID, Any]], *, for_update: bool = False
    ) -> dict[tuple[uuid.UUID, Any], OwnedT]:
        """The rows of the (owner, id) pairs whose owner owns them, by (owner, id): a pair
        naming another user's row finds nothing, even when its owner's pair is asked too.

        Locked in id order, so two transactions locking overlapping sets cannot deadlock.
        """
        wanted = set(pairs)
        if not wanted:
            return {}
        params = {
            "ids": list({row_id for _, row_id in wanted}),
            "owners": list({owner_id for owner_id, _ in wanted}),
        }
        query = self._many_for_owners(for_update)
        found = {}
        for row in (await self.db.execute(query, params)).scalars():
            pair = (getattr(row, self.owner_column), row.id)
            if pair in wanted:
                found[pair] = row
        return found

    @classmethod
    def _many_for_owners(cls, for_update: bool) -> Select[Any]:
        # Built once per repository class (order placement asks for every batch): building
        # the statement cost more than running it; its id lists are expanding parameters.
        key = (cls.model, cls.owner_column, for_update)
        query = _MANY_FOR_OWNERS.get(key)
        if query is None:
            owner = getattr(cls.model, cls.owner_column)
            query = (
                select(cls.model)
                .where(cls.model.id.in_(bindparam("ids", expanding=True)))
                .where(owner.in_(bindparam("owners", expanding=True)))
                .order_by(cls.model.id)
            )
            if for_update:
                query = query.with_for_update()
            _MANY_FOR_OWNERS[key] = query
        return query

    async def list_for_owner(self, owner_id: uuid.UUID, *order_by: Any) -> Sequence[OwnedT]:
        return (await self.db.execute(self.owned_by(owner_id).order_by(*order_by))).scalars().all()
