"""Queries of identity tables.  Everything a user owns is fetched *with* its owner's id, so
another user's session or key is as missing as one that never existed (404)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.db import utcnow
from quantdesk.platform.pagination import CursorCodec, split_page
from quantdesk.platform.repository import OwnerScopedRepository
from quantdesk.security.models import SecurityEvent
from quantdesk.users.models import ApiKey, AuthSession, RecoveryCode, RefreshToken, User

# Users oldest first: (created_at, id); security events newest first: id.
USER_CURSOR = CursorCodec("users", 2)
SECURITY_EVENT_CURSOR = CursorCodec("security-events", 1)


def _user_position(created: str, last_id: str) -> tuple[dt.datetime, uuid.UUID]:
    return dt.datetime.fromisoformat(created), uuid.UUID(last_id)


def _event_position(last_id: str) -> int:
    # int() alone would also take " 7", "+7" and "٧"; the cursor holds what str(id) wrote.
    if not (last_id.isascii() and last_id.isdigit()):
        raise ValueError(last_id)
    return int(last_id)


class UserRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        """``for_update`` locks the row FOR NO KEY UPDATE: it serialises changes to the user
        while still letting other transactions insert rows that reference it (events)."""
        if not for_update:
            return await self.db.get(User, user_id)
        return await self.db.get(
            User, user_id, with_for_update={"key_share": True}, populate_existing=True
        )

    async def by_email_index(self, index: str) -> User | None:
        result = await self.db.execute(select(User).where(User.email_index == index))
        return result.scalar_one_or_none()

    async def page(self, *, limit: int, cursor: str | None) -> tuple[Sequence[User], str | None]:
        query = select(User).order_by(User.created_at, User.id).limit(limit + 1)
        if cursor:
            after_created, after_id = USER_CURSOR.decode_as(cursor, _user_position)
            query = query.where(
                (User.created_at > after_created)
                | ((User.created_at == after_created) & (User.id > after_id))
            )
        rows = (await self.db.execute(query)).scalars().all()
        return split_page(
            rows, limit, lambda last: USER_CURSOR.encode(last.created_at.isoformat(), str(last.id))
        )


class SessionRepository(OwnerScopedRepository[AuthSession]):
    model = AuthSession

    async def active_for_user(self, user_id: uuid.UUID) -> Sequence[AuthSession]:
        result = await self.db.execute(
            self.owned_by(user_id)
            .where(AuthSession.revoked_at.is_(None), AuthSession.expires_at > utcnow())
            .order_by(AuthSession.created_at.desc())
        )
        return result.scalars().all()

    async def all_for_user(self, user_id: uuid.UUID) -> Sequence[AuthSession]:
        return await self.list_for_owner(user_id, AuthSession.created_at.desc())

    async def revoke_all(
        self, user_id: uuid.UUID, *, reason: str, keep: uuid.UUID | None = None
    ) -> list[uuid.UUID]:
        """Revoke every live session of the user (but ``keep``); return the revoked ids."""
        query = select(AuthSession.id).where(
            AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
        )
        if keep is not None:
            query = query.where(AuthSession.id != keep)
        ids = list((await self.db.execute(query)).scalars().all())
        if ids:
            await self.db.execute(
                update(AuthSession)
                .where(AuthSession.id.in_(ids))
                .values(revoked_at=utcnow(), revoked_reason=reason)
            )
        return ids


class RefreshTokenRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def by_hash(self, token_hash: str) -> RefreshToken | None:
        # FOR UPDATE (ignored by SQLite, whose callers use an immediate transaction): two
        # refreshes racing with one token must see each other, the second as a reuse.
        query: Select[RefreshToken] = (
            select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
        )
        return (await self.db.execute(query)).scalar_one_or_none()


class RecoveryCodeRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def unused_for_user(self, user_id: uuid.UUID) -> Sequence[RecoveryCode]:
        result = await self.db.execute(
            select(RecoveryCode).where(
                RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
            )
        )
        return result.scalars().all()

    async def delete_for_user(self, user_id: uuid.UUID) -> None:
        from sqlalchemy import delete

        await self.db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


class ApiKeyRepository(OwnerScopedRepository[ApiKey]):
    model = ApiKey

    async def list_for_user(self, user_id: uuid.UUID) -> Sequence[ApiKey]:
        return await self.list_for_owner(user_id, ApiKey.created_at.desc())

    async def count_live(self, user_id: uuid.UUID) -> int:
        keys = await self.list_for_user(user_id)
        return sum(1 for key in keys if key.revoked_at is None)


class SecurityEventRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def page(
        self,
        *,
        limit: int,
        cursor: str | None,
        user_id: uuid.UUID | None = None,
        event_type: str | None = None,
    ) -> tuple[Sequence[SecurityEvent], str | None]:
        query = select(SecurityEvent).order_by(SecurityEvent.id.desc()).limit(limit + 1)
        if user_id is not None:
            query = query.where(SecurityEvent.user_id == user_id)
        if event_type is not None:
            query = query.where(SecurityEvent.event_type == event_type)
        if cursor:
            before = SECURITY_EVENT_CURSOR.decode_as(cursor, _event_position)
            query = query.where(SecurityEvent.id < before)
        rows = (await self.db.execute(query)).scalars().all()
        return split_page(rows, limit, lambda last: SECURITY_EVENT_CURSOR.encode(str(last.id)))

    async def for_user(self, user_id: uuid.UUID) -> Sequence[SecurityEvent]:
        result = await self.db.execute(
            select(SecurityEvent)
            .where(SecurityEvent.user_id == user_id)
            .order_by(SecurityEvent.id.desc())
        )
        return result.scalars().all()

    async def anonymise_for_user(self, user_id: uuid.UUID) -> None:
        await self.db.execute(
            update(SecurityEvent)
            .where(SecurityEvent.user_id == user_id)
            .values(ip=None, user_agent=None)
        )
