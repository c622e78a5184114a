"""``security.credentials.CredentialStore`` over the accounts tables.

The app factory builds one and gives it to ``install_security``; each call is a short unit
of work of its own, because verification runs before (and apart from) the request's.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update

from quantdesk.platform.db import Database
from quantdesk.security.credentials import ApiKeyRecord, SessionRecord
from quantdesk.security.principal import Role
from quantdesk.users.models import ApiKey, AuthSession, User


class UserCredentialStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def api_key(self, lookup: str) -> ApiKeyRecord | None:
        async with self.database.session() as db:
            row = (
                await db.execute(
                    select(ApiKey, User.role, User.is_active)
                    .join(User, User.id == ApiKey.user_id)
                    .where(ApiKey.lookup == lookup)
                )
            ).first()
        if row is None:
            return None
        key, role, active = row
        return ApiKeyRecord(
            id=key.id,
            user_id=key.user_id,
            secret_hash=key.secret_hash,
            scopes=key.scopes,
            expires_at=key.expires_at.timestamp() if key.expires_at else None,
            revoked=key.revoked_at is not None,
            last_used_at=key.last_used_at.timestamp() if key.last_used_at else None,
            role=Role(role),
            owner_active=bool(active),
        )

    async def touch_api_key(self, key_id: uuid.UUID, at: dt.datetime) -> None:
        async with self.database.session(immediate=True) as db:
            await db.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))

    async def session(self, session_id: uuid.UUID, *, now: dt.datetime) -> SessionRecord | None:
        async with self.database.session() as db:
            row = await db.get(AuthSession, session_id)
            if row is None:
                return None
            return SessionRecord(row.user_id, row.revoked_at is None and row.expires_at > now)
