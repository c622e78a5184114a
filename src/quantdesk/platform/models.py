"""Tables of the platform itself (not of any feature): stored idempotent responses.

The owner is a foreign key to ``users`` by table name, as every cross-feature reference is;
platform code never imports the users package.  The owner-scoped repository sits beside the
table, so that wherever the table is known its tenancy-checked queries are too.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Integer, String, Text, delete, tuple_
from sqlalchemy.orm import Mapped, mapped_column

from quantdesk.platform.db import Base, UTCDateTime
from quantdesk.platform.repository import OwnerScopedRepository

# How long a stored answer replays (Stripe's and the IETF draft's usual 24 hours).
TTL = dt.timedelta(hours=24)


class IdempotencyRecord(Base):
    """The answer given to one ``Idempotency-Key`` of one user (``platform/idempotency.py``).

    Written in the same transaction as the object the request created, so there is never an
    object without its record or a record without its object.
    """

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 (hex) of method, path, query and the canonical JSON body of the first request.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class IdempotencyRepository(OwnerScopedRepository[IdempotencyRecord]):
    model = IdempotencyRecord

    async def get(self, owner_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        query = self.owned_by(owner_id).where(IdempotencyRecord.key == key)
        # populate_existing: a record read before the lock was taken is read again.
        query = query.execution_options(populate_existing=True)
        return (await self.db.execute(query)).scalar_one_or_none()

    async def forget_expired(self, owner_id: uuid.UUID, now: dt.datetime) -> None:
        """Delete ``owner_id``'s records older than the TTL, skipping any another request
        holds (on PostgreSQL), so that two of the owner's requests never wait on -- or
        deadlock over -- each other's old keys."""
        expired = (
            self.owned_by(owner_id)
            .where(IdempotencyRecord.created_at <= now - TTL)
            .with_only_columns(IdempotencyRecord.user_id, IdempotencyRecord.key)
            .with_for_update(skip_locked=True)
        )
        await self.db.execute(
            delete(IdempotencyRecord).where(
                tuple_(IdempotencyRecord.user_id, IdempotencyRecord.key).in_(expired)
            )
        )
