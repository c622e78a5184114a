"""Owner-scoped repositories: another tenant's row is indistinguishable from a missing one,
and every table of user-owned rows is read through one."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from quantdesk.models import metadata
from quantdesk.platform.context import AppContext
from quantdesk.platform.repository import OwnerScopedRepository
from quantdesk.users.repository import ApiKeyRepository, SessionRepository
from tests.conftest import UserFactory

# Tables with a user_id that are not read per owner, and why.
NOT_OWNER_SCOPED = {
    "refresh_tokens": "looked up by the token's hash; the session it belongs to is owned",
    "recovery_codes": "read only inside the owner's MFA checks (RecoveryCodeRepository)",
    "security_events": "the audit log: admins read everyone's, users export their own",
    "orders": "reached through an owned trading account (AccountRepository); the matcher "
    "reads every user's open orders by design",
    "trading_events": "the outbox, written per owned account, delivered by the stream to "
    "the owner only",
    "kite_sessions": "the server's Kite login: user_id is Kite's id of the API subscriber, "
    "not a quantdesk user",
}


def test_every_user_owned_table_has_an_owner_scoped_repository() -> None:
    scoped = {str(cls.model.__tablename__) for cls in _subclasses(OwnerScopedRepository)}
    owned = {table.name for table in metadata.tables.values() if "user_id" in table.columns}
    assert owned - scoped - set(NOT_OWNER_SCOPED) == set()


def _subclasses(cls: type[OwnerScopedRepository[Any]]) -> list[type[OwnerScopedRepository[Any]]]:
    found: list[type[OwnerScopedRepository[Any]]] = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return [c for c in found if hasattr(c, "model")]


async def test_another_tenants_rows_are_none(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    alice, bob = await make_user(), await make_user()
    created = await client.post(
        "/api/v1/api-keys", headers=alice.headers, json={"name": "bot", "scopes": ["read"]}
    )
    assert created.status_code == 201, created.text
    key_id = uuid.UUID(created.json()["id"])
    ctx: AppContext = app.state.ctx
    async with ctx.database.session() as db:
        keys = ApiKeyRepository(db)
        assert (await keys.get_for_owner(alice.id, key_id)) is not None
        assert await keys.get_for_owner(bob.id, key_id) is None
        assert [k.id for k in await keys.list_for_user(bob.id)] == []
        sessions = SessionRepository(db)
        assert (await sessions.get_for_owner(alice.id, alice.session_id)) is not None
        assert await sessions.get_for_owner(bob.id, alice.session_id) is None
        locked = await sessions.get_for_owner(alice.id, alice.session_id, for_update=True)
        assert locked is not None
        assert locked.user_id == alice.id
