"""API keys (scopes, revocation, expiry) and the admin endpoints."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.security.policy import RequireTrader, RequireViewer
from quantdesk.security.principal import Principal, Role
from quantdesk.users import service
from quantdesk.users.models import ApiKey
from tests.conftest import TestUser, UserFactory
from tests.support.factories import Users


@pytest.fixture
def probe_app(app: FastAPI) -> FastAPI:
    """The app plus two endpoints guarded like the trading and market-data routers will be."""
    router = APIRouter(prefix="/api/v1/probe")

    @router.get("/quotes")
    async def quotes(principal: RequireViewer) -> dict[str, str]:
        return {"user": str(principal.user_id)}

    @router.post("/orders")
    async def orders(principal: RequireTrader) -> dict[str, str]:
        return {"user": str(principal.user_id)}

    app.include_router(router)
    return app


async def _key(
    client: httpx.AsyncClient, user: TestUser, scopes: list[str], **extra: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/api-keys", headers=user.headers, json={"name": "bot", "scopes": scopes, **extra}
    )


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_api_key_is_shown_once_and_authenticates(
    probe_app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user("trader")
    created = await _key(client, user, ["read", "trade"])
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith("qd_")
    assert key.startswith(body["prefix"])
    assert len(key) > 50
    listing = await client.get("/api/v1/api-keys", headers=user.headers)
    assert key not in listing.text
    assert listing.json()[0]["prefix"] == body["prefix"]
    me = await client.get("/api/v1/users/me", headers=_bearer(key))
    assert me.json()["id"] == str(user.id)
    assert (await client.post("/api/v1/probe/orders", headers=_bearer(key))).status_code == 200
    listing = await client.get("/api/v1/api-keys", headers=user.headers)
    assert listing.json()[0]["last_used_at"] is not None


async def test_scopes_are_enforced_like_roles(
    probe_app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    trader = await make_user("trader")
    read_only = (await _key(client, trader, ["read"])).json()["key"]
    assert (await client.get("/api/v1/probe/quotes", headers=_bearer(read_only))).status_code == 200
    assert (
        await client.post("/api/v1/probe/orders", headers=_bearer(read_only))
    ).status_code == 403
    # Keys cannot manage keys or sessions: that needs a signed-in person.
    assert (await _key(client, trader, ["read"])).status_code == 201
    by_key = await client.post(
        "/api/v1/api-keys", headers=_bearer(read_only), json={"name": "x", "scopes": ["read"]}
    )
    assert by_key.status_code == 403
    viewer = await make_user("viewer")
    assert (await _key(client, viewer, ["trade"])).status_code == 403
    assert (await _key(client, viewer, ["admin"])).status_code == 403
    assert (await _key(client, trader, ["admin"])).status_code == 403
    assert (await client.post("/api/v1/probe/orders", headers=viewer.headers)).status_code == 403


async def test_demoting_the_owner_demotes_the_key(
    probe_app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    admin = await make_user("admin")
    trader = await make_user("trader")
    key = (await _key(client, trader, ["read", "trade"])).json()["key"]
    assert (await client.post("/api/v1/probe/orders", headers=_bearer(key))).status_code == 200
    demoted = await client.patch(
        f"/api/v1/admin/users/{trader.id}", headers=admin.headers, json={"role": "viewer"}
    )
    assert demoted.status_code == 200
    assert demoted.json()["role"] == "viewer"
    assert (await client.post("/api/v1/probe/orders", headers=_bearer(key))).status_code == 403
    assert (await client.get("/api/v1/probe/quotes", headers=_bearer(key))).status_code == 200
    # The role lives in access tokens: the demoted user's sessions ended.
    assert (await client.get("/api/v1/users/me", headers=trader.headers)).status_code == 401


async def test_revoked_expired_and_forged_keys_are_refused(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    created = (await _key(client, user, ["read"])).json()
    key = created["key"]
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert (await client.get("/api/v1/users/me", headers=_bearer(forged))).status_code == 401
    assert (
        await client.get("/api/v1/users/me", headers=_bearer("qd_nothex_" + "a" * 43))
    ).status_code == 401
    revoke = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=user.headers)
    assert revoke.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=_bearer(key))).status_code == 401

    past = (utcnow() - dt.timedelta(minutes=1)).isoformat()
    assert (await _key(client, user, ["read"], expires_at=past)).status_code == 422
    soon = (utcnow() + dt.timedelta(days=1)).isoformat()
    expiring = (await _key(client, user, ["read"], expires_at=soon)).json()
    assert (
        await client.get("/api/v1/users/me", headers=_bearer(expiring["key"]))
    ).status_code == 200
    # A day later (moved in the database rather than waiting), the key is dead.
    ctx: AppContext = app.state.ctx
    async with ctx.database.session(immediate=True) as db:
        row = await db.get(ApiKey, uuid.UUID(expiring["id"]))
        assert row is not None
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
    await ctx.cache.delete(f"apikey:{expiring['prefix'][3:-1]}")
    assert (
        await client.get("/api/v1/users/me", headers=_bearer(expiring["key"]))
    ).status_code == 401


async def test_another_users_key_is_not_found(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    alice, bob = await make_user(), await make_user()
    key = (await _key(client, alice, ["read"])).json()
    response = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=bob.headers)
    assert response.status_code == 404
    assert (await client.get("/api/v1/users/me", headers=_bearer(key["key"]))).status_code == 200


async def test_admin_lists_users_and_events_with_cursors(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    admin = await make_user("admin")
    others = [await make_user() for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await client.get("/api/v1/admin/users", headers=admin.headers, params=params)
        assert page.status_code == 200
        seen.extend(item["email"] for item in page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [admin.email, *[user.email for user in others]]
    events = await client.get(
        "/api/v1/admin/security-events",
        headers=admin.headers,
        params={"user_id": str(others[0].id), "limit": "1"},
    )
    assert events.status_code == 200
    assert events.json()["items"][0]["event_type"] == "login_succeeded"
    assert events.json()["next_cursor"]
    bad = await client.get(
        "/api/v1/admin/security-events", headers=admin.headers, params={"cursor": "%%%"}
    )
    assert bad.status_code == 422


async def test_admin_disable_enable_and_self_protection(
    client: httpx.AsyncClient, users: Users
) -> None:
    admin = await users.admin()
    user = await users.logged_in()
    key = (await users.api_key(user, scopes=["read"])).key
    off = await client.patch(
        f"/api/v1/admin/users/{user.id}", headers=admin.headers, json={"is_active": False}
    )
    assert off.json()["is_active"] is False
    assert (await client.get("/api/v1/users/me", headers=_bearer(key))).status_code == 401
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401
    on = await client.patch(
        f"/api/v1/admin/users/{user.id}", headers=admin.headers, json={"is_active": True}
    )
    assert on.json()["is_active"] is True
    assert (await client.get("/api/v1/users/me", headers=_bearer(key))).status_code == 200
    myself = await client.patch(
        f"/api/v1/admin/users/{admin.id}", headers=admin.headers, json={"role": "viewer"}
    )
    assert myself.status_code == 409
    missing = await client.patch(
        f"/api/v1/admin/users/{uuid.uuid4()}", headers=admin.headers, json={"role": "viewer"}
    )
    assert missing.status_code == 404
    denied = await client.get("/api/v1/admin/users", headers=_bearer(key))
    assert denied.status_code == 403
    events = await client.get(
        "/api/v1/admin/security-events",
        headers=admin.headers,
        params={"event_type": "permission_denied"},
    )
    assert [e["user_id"] for e in events.json()["items"]] == [str(user.id)]


# -- decisions of issue 20 item 9 (docs/security.md, "API keys") ---------------------------


async def test_every_key_also_reads_but_admin_does_not_trade(
    probe_app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    admin = await make_user("admin")
    admin_only = (await _key(client, admin, ["admin"])).json()["key"]
    trade_only = (await _key(client, admin, ["trade"])).json()["key"]
    quotes, orders = "/api/v1/probe/quotes", "/api/v1/probe/orders"
    assert (await client.get(quotes, headers=_bearer(admin_only))).status_code == 200
    assert (await client.get(quotes, headers=_bearer(trade_only))).status_code == 200
    assert (await client.post(orders, headers=_bearer(admin_only))).status_code == 403
    assert (await client.post(orders, headers=_bearer(trade_only))).status_code == 200
    users = await client.get("/api/v1/admin/users", headers=_bearer(admin_only))
    assert users.status_code == 200, users.text
    assert (await client.get("/api/v1/admin/users", headers=_bearer(trade_only))).status_code == 403


async def test_logout_everywhere_revokes_api_keys(client: httpx.AsyncClient, users: Users) -> None:
    user = await users.logged_in("trader")
    key = (await users.api_key(user, scopes=["read"])).key
    assert (await client.get("/api/v1/users/me", headers=_bearer(key))).status_code == 200
    assert (await client.post("/api/v1/auth/logout-all", headers=user.headers)).status_code == 204
    assert (await client.get("/api/v1/users/me", headers=_bearer(key))).status_code == 401


async def test_password_change_revokes_api_keys(client: httpx.AsyncClient, users: Users) -> None:
    user = await users.logged_in("trader")
    key = (await users.api_key(user, scopes=["read"])).key
    assert (await client.get("/api/v1/users/me", headers=_bearer(key))).status_code == 200
    changed = await client.post(
        "/api/v1/users/me/password",
        headers=user.headers,
        json={"current_password": user.password, "new_password": user.password + " anew"},
    )
    assert changed.status_code == 204, changed.text
    assert (await client.get("/api/v1/users/me", headers=_bearer(key))).status_code == 401
    listing = await client.get("/api/v1/api-keys", headers=user.headers)
    assert all(item["revoked_at"] is not None for item in listing.json())


async def test_a_request_during_the_revocation_cannot_cache_the_key_again(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    # The cached record used to be dropped before the revocation committed: a request in
    # between cached the still-valid row again, and the key kept working for the cache's TTL.

    user = await make_user()
    response = await _key(client, user, ["read"])
    assert response.status_code == 201, response.text
    created = response.json()
    key = _bearer(created["key"])
    assert (await client.get("/api/v1/users/me", headers=key)).status_code == 200
    ctx = app.state.ctx
    owner = Principal(user_id=user.id, role=Role.TRADER, session_id=user.session_id)
    async with ctx.database.session() as db:
        await service.revoke_api_key(ctx, db, ClientInfo.none(), owner, uuid.UUID(created["id"]))
        # Not committed yet: the key still works, and this request caches its record.
        assert (await client.get("/api/v1/users/me", headers=key)).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=key)).status_code == 401
