"""Registration, login, enumeration resistance, lockout, refresh rotation and logout."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from quantdesk.app import create_app
from quantdesk.platform.context import AppContext
from quantdesk.security.models import SecurityEvent
from quantdesk.settings import Settings
from quantdesk.users.models import User
from tests.conftest import TestUser, UserFactory
from tests.support.factories import Users

PASSWORD = "a sufficiently long passphrase"


def _without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "request_id"}


async def _events(app: FastAPI, event_type: str, user_id: uuid.UUID | None = None) -> int:
    ctx: AppContext = app.state.ctx
    async with ctx.database.session() as db:
        query = (
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.event_type == event_type)
        )
        if user_id is not None:
            query = query.where(SecurityEvent.user_id == user_id)
        return int((await db.execute(query)).scalar_one())


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_register_then_login_issues_a_token_pair(client: httpx.AsyncClient) -> None:
    email = f"Ada.{uuid.uuid4().hex[:6]}@Example.COM"
    created = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    assert created.json()["email"] == email.lower()
    assert created.json()["role"] == "trader"
    # Addresses are matched case-insensitively.
    response = await _login(client, email.upper(), PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["refresh_token"].startswith("qd_rt_")
    assert len(body["refresh_token"]) >= 6 + 43  # 256 bits, base64url
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["id"] == created.json()["id"]


async def test_email_is_stored_encrypted_and_indexed(app: FastAPI, make_user: UserFactory) -> None:
    user = await make_user()
    ctx: AppContext = app.state.ctx
    async with ctx.database.session() as db:
        row = await db.get(User, user.id)
    assert row is not None
    assert row.email_encrypted is not None
    assert user.email not in row.email_encrypted
    assert row.email_encrypted.startswith("dev1:")
    assert len(row.email_index) == 64
    assert user.email not in row.email_index
    assert row.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short pass", "at least 12"),
        ("x" * 129, "at most 128"),
        ("Password1234", "too common"),
        ("correct horse battery staple", "too common"),
    ],
)
async def test_password_policy(client: httpx.AsyncClient, password: str, reason: str) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": "p@example.com", "password": password}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert reason in response.json()["detail"]


async def test_duplicate_registration_conflicts(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    response = await client.post(
        "/api/v1/auth/register", json={"email": user.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 409


async def test_unknown_email_and_wrong_password_look_the_same(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    wrong = await _login(client, user.email, "not the right passphrase")
    unknown = await _login(client, "nobody-here@example.com", "not the right passphrase")
    assert wrong.status_code == unknown.status_code == 401
    assert _without_request_id(wrong.json()) == _without_request_id(unknown.json())
    assert wrong.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")
    assert await _events(app, "login_failed", user.id) == 1
    assert await _events(app, "login_failed") == 2


@pytest.fixture
async def lockout_app(settings: Settings) -> AsyncIterator[FastAPI]:
    # The per-account rate limit would answer 429 before the lockout shows; lift it here.
    tuned = settings.model_copy(update={"rate_limit_login_account": "1000/minute"})
    application = create_app(tuned)
    async with application.router.lifespan_context(application):
        yield application


async def test_brute_force_locks_the_account_progressively(lockout_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=lockout_app, client=("198.51.100.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.post(
            "/api/v1/auth/register", json={"email": "v@example.com", "password": PASSWORD}
        )
        for _ in range(5):
            assert (await _login(client, "v@example.com", "guess guess guess")).status_code == 401
        locked = await _login(client, "v@example.com", PASSWORD)
        assert locked.status_code == 429
        assert locked.json()["type"] == "urn:quantdesk:problem:account-locked"
        assert 14 * 60 <= int(locked.headers["retry-after"]) <= 15 * 60
        ctx: AppContext = lockout_app.state.ctx
        async with ctx.database.session() as db:
            user = (await db.execute(select(User))).scalar_one()
            assert user.lockouts == 1
        assert await _events(lockout_app, "locked_out", user.id) == 1

        # An admin unlock lets the right password in again; the next lockout lasts longer.
        from quantdesk.users.admin import unlock_user

        async with ctx.database.session(immediate=True) as db:
            await unlock_user(ctx, db, None, None, user.id)
            row = await db.get(User, user.id)
            assert row is not None
            row.lockouts = 1  # unlock resets; simulate a second offence within the history
        for _ in range(5):
            await _login(client, "v@example.com", "guess guess guess")
        second = await _login(client, "v@example.com", PASSWORD)
        assert second.status_code == 429
        assert 29 * 60 <= int(second.headers["retry-after"]) <= 30 * 60


async def test_unknown_accounts_lock_out_too(lockout_app: FastAPI) -> None:
    """A lockout answer must not reveal that an account exists."""
    transport = httpx.ASGITransport(app=lockout_app, client=("198.51.100.8", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.post(
            "/api/v1/auth/register", json={"email": "r@example.com", "password": PASSWORD}
        )
        answers = []
        for email in ("r@example.com", "ghost@example.com"):
            for _ in range(5):
                await _login(client, email, "guess guess guess")
            answers.append(await _login(client, email, PASSWORD))
        real, ghost = answers
        assert real.status_code == ghost.status_code == 429
        assert _without_request_id(real.json()) == _without_request_id(ghost.json())


async def test_login_rate_limit_per_account(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await _login(client, "someone@example.com", "guess guess guess")).status_code == 401
    limited = await _login(client, "someone@example.com", "guess guess guess")
    assert limited.status_code == 429
    assert limited.json()["type"] == "urn:quantdesk:problem:rate-limited"
    assert limited.headers["ratelimit-limit"] == "5"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(limited.headers["retry-after"]) <= 60


async def test_disabled_account_cannot_sign_in(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    from quantdesk.users import admin, schemas

    user = await make_user()
    ctx: AppContext = app.state.ctx
    async with ctx.database.session(immediate=True) as db:
        await admin.update_user(
            ctx, db, None, None, user.id, schemas.AdminUserUpdate(is_active=False)
        )
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401
    assert (await _login(client, user.email, user.password)).status_code == 403


# -- refresh -------------------------------------------------------------------------------


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_reuse_revokes_the_family(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    first = await _refresh(client, user.refresh_token)
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != user.refresh_token
    assert rotated["session_id"] == str(user.session_id)
    second = await _refresh(client, rotated["refresh_token"])
    assert second.status_code == 200
    latest = second.json()

    # The first token comes back: someone copied it.  The whole session dies.
    reuse = await _refresh(client, user.refresh_token)
    assert reuse.status_code == 401
    assert await _events(app, "refresh_token_reused", user.id) == 1
    assert (await _refresh(client, latest["refresh_token"])).status_code == 401
    for token in (user.access_token, latest["access_token"]):
        response = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401
    # Other sessions of the same user are untouched.
    other = await _login(client, user.email, user.password)
    assert (await _refresh(client, other.json()["refresh_token"])).status_code == 200


@pytest.mark.parametrize("token", ["", "qd_rt_" + "A" * 43, "not-a-token", "qd_abc"])
async def test_refresh_with_garbage_is_401(client: httpx.AsyncClient, token: str) -> None:
    assert (await _refresh(client, token)).status_code == 401


async def test_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    response = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {user.refresh_token}"}
    )
    assert response.status_code == 401


async def test_refresh_after_idle_lifetime_fails(settings: Settings) -> None:
    tuned = settings.model_copy(update={"refresh_token_idle_ttl_s": 300})
    application = create_app(tuned)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.post(
                "/api/v1/auth/register", json={"email": "i@example.com", "password": PASSWORD}
            )
            tokens = (await _login(client, "i@example.com", PASSWORD)).json()
            assert tokens["refresh_expires_in"] == 300
            ctx: AppContext = application.state.ctx
            from datetime import timedelta

            from quantdesk.users.models import AuthSession

            async with ctx.database.session(immediate=True) as db:
                session = await db.get(AuthSession, uuid.UUID(tokens["session_id"]))
                assert session is not None
                session.last_used_at -= timedelta(seconds=301)
            assert (await _refresh(client, tokens["refresh_token"])).status_code == 401


# -- logout and sessions -------------------------------------------------------------------


async def test_logout_revokes_the_access_token_at_once(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    assert (await client.post("/api/v1/auth/logout", headers=user.headers)).status_code == 204
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401
    assert (await _refresh(client, user.refresh_token)).status_code == 401


async def test_logout_all_and_session_listing(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    second = (await _login(client, user.email, user.password)).json()
    sessions = (await client.get("/api/v1/users/me/sessions", headers=user.headers)).json()
    assert {s["id"] for s in sessions} == {str(user.session_id), second["session_id"]}
    assert [s["current"] for s in sessions if s["id"] == str(user.session_id)] == [True]
    assert all(s["ip"] == "203.0.113.10" for s in sessions)

    # End the other session from this one.
    gone = await client.delete(
        f"/api/v1/users/me/sessions/{second['session_id']}", headers=user.headers
    )
    assert gone.status_code == 204
    second_headers = {"Authorization": f"Bearer {second['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=second_headers)).status_code == 401

    third = (await _login(client, user.email, user.password)).json()
    assert (await client.post("/api/v1/auth/logout-all", headers=user.headers)).status_code == 204
    for headers in (user.headers, {"Authorization": f"Bearer {third['access_token']}"}):
        assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 401


async def test_another_users_session_is_not_found(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    alice, bob = await make_user(), await make_user()
    response = await client.delete(
        f"/api/v1/users/me/sessions/{alice.session_id}", headers=bob.headers
    )
    assert response.status_code == 404
    missing = await client.delete(f"/api/v1/users/me/sessions/{uuid.uuid4()}", headers=bob.headers)
    assert _without_request_id(missing.json()) | {"instance": ""} == _without_request_id(
        response.json()
    ) | {"instance": ""}
    assert (await client.get("/api/v1/users/me", headers=alice.headers)).status_code == 200


async def test_password_change_needs_the_old_password_and_ends_other_sessions(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    other = (await _login(client, user.email, user.password)).json()
    wrong = await client.post(
        "/api/v1/users/me/password",
        headers=user.headers,
        json={"current_password": "wrong wrong wrong", "new_password": "a brand new passphrase"},
    )
    assert wrong.status_code == 401
    weak = await client.post(
        "/api/v1/users/me/password",
        headers=user.headers,
        json={"current_password": user.password, "new_password": "password1234"},
    )
    assert weak.status_code == 422
    changed = await client.post(
        "/api/v1/users/me/password",
        headers=user.headers,
        json={"current_password": user.password, "new_password": "a brand new passphrase"},
    )
    assert changed.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    other_headers = {"Authorization": f"Bearer {other['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=other_headers)).status_code == 401
    assert (await _login(client, user.email, user.password)).status_code == 401
    assert (await _login(client, user.email, "a brand new passphrase")).status_code == 200


# -- personal data -------------------------------------------------------------------------


async def test_export_contains_the_users_data_only(client: httpx.AsyncClient, users: Users) -> None:
    alice, bob = await users.logged_in(), await users.logged_in()
    await users.api_key(alice, name="bot", scopes=["read"])
    export = await client.get("/api/v1/users/me/export", headers=alice.headers)
    assert export.status_code == 200
    body = export.json()
    assert body["user"]["email"] == alice.email
    assert [key["name"] for key in body["api_keys"]] == ["bot"]
    assert {s["id"] for s in body["sessions"]} == {str(alice.session_id)}
    assert {e["event_type"] for e in body["security_events"]} >= {
        "registered",
        "login_succeeded",
        "api_key_created",
    }
    assert bob.email not in export.text


async def test_erasure_removes_personal_data_and_credentials(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    user: TestUser = await users.logged_in()
    key = (await users.api_key(user, scopes=["read"])).key
    refused = await client.request(
        "DELETE", "/api/v1/users/me", headers=user.headers, json={"password": "wrong wrong wrong"}
    )
    assert refused.status_code == 401
    erased = await client.request(
        "DELETE", "/api/v1/users/me", headers=user.headers, json={"password": user.password}
    )
    assert erased.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401
    key_headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/users/me", headers=key_headers)).status_code == 401
    assert (await _login(client, user.email, user.password)).status_code == 401
    ctx: AppContext = app.state.ctx
    async with ctx.database.session() as db:
        row = await db.get(User, user.id)
        assert row is not None  # the row stays for the integrity of what references it
        assert row.email_encrypted is None
        assert row.erased_at is not None
        assert not row.is_active
        assert row.password_hash == "!erased"
        events = (
            (await db.execute(select(SecurityEvent).where(SecurityEvent.user_id == user.id)))
            .scalars()
            .all()
        )
        assert events
        assert all(e.ip is None and e.user_agent is None for e in events[:-1])
    # The address is free again.
    again = await client.post(
        "/api/v1/auth/register", json={"email": user.email, "password": PASSWORD}
    )
    assert again.status_code == 201
