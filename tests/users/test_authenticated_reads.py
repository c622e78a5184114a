"""Authenticated reads (issue 19): no database round trip once warm, security unchanged.

Speed itself is in ``benchmarks/bench_http.py``; these tests pin down what makes it (no
statement for a warm ``GET /users/me``, one signature check per token) and that nothing a
revocation, an expiry or a change of the profile must do was traded for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, update

from quantdesk.platform.refresh_ahead import stamped, unstamped
from quantdesk.security import sessions
from quantdesk.security.principal import Role
from quantdesk.security.services import security_services
from quantdesk.security.tokens import LEEWAY_S, issue_access_token
from quantdesk.users.models import AuthSession
from tests.support.factories import Users


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block."""
    seen: list[str] = []
    engine = app.state.ctx.database.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Not the requests': on PostgreSQL the matcher's lease holder checks its connection
        # with "SELECT 1" every few seconds, from a background task.
        if statement != "SELECT 1":
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_warm_reads_of_the_profile_run_no_sql(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.logged_in()  # has read /users/me once
    key = await users.api_key(user)
    for _ in range(2):  # the first use records last_used_at and drops the cached key record
        await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key.key}"})
    for headers in (user.headers, {"Authorization": f"Bearer {key.key}"}):
        with statements(app) as seen:
            for _ in range(3):
                response = await client.get("/api/v1/users/me", headers=headers)
                assert response.status_code == 200
                assert response.json()["email"] == user.email
        assert seen == []


async def test_an_access_token_is_verified_once(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.logged_in()
    settings = app.state.ctx.settings
    verified = security_services(app.state.ctx).keys.verified_access
    before = len(verified)
    for _ in range(3):
        assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    # Remembered at its first request (the factory's), not once per request.
    assert len(verified) == before
    principal = verified.get(
        user.access_token, audience=settings.jwt_audience, issuer=settings.token_issuer
    )
    assert principal is not None
    assert principal.user_id == user.id


async def test_logout_ends_a_remembered_token_at_once(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.logged_in()
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    logout = await client.post("/api/v1/auth/logout", headers=user.headers)
    assert logout.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401


async def test_a_remembered_token_expires_with_its_exp(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.logged_in()
    ctx = app.state.ctx
    # Issued so that PyJWT's exp + leeway is 1.5 s away.
    issued = time.time() - ctx.settings.access_token_ttl_s - LEEWAY_S + 1.5
    token = issue_access_token(
        security_services(ctx).keys,
        ctx.settings,
        user_id=user.id,
        session_id=user.session_id,
        role=Role(user.role),
        now=issued,
    )
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    await asyncio.sleep(
        max(0.0, issued + ctx.settings.access_token_ttl_s + LEEWAY_S - time.time()) + 0.6
    )
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 401


async def test_profile_changes_show_at_once(client: httpx.AsyncClient, users: Users) -> None:
    admin = await users.admin()
    trader = await users.logged_in()
    key = await users.api_key(trader)
    by_key = {"Authorization": f"Bearer {key.key}"}
    assert (await client.get("/api/v1/users/me", headers=by_key)).json()["role"] == "trader"
    demoted = await client.patch(
        f"/api/v1/admin/users/{trader.id}", headers=admin.headers, json={"role": "viewer"}
    )
    assert demoted.status_code == 200
    assert (await client.get("/api/v1/users/me", headers=by_key)).json()["role"] == "viewer"
    disabled = await client.patch(
        f"/api/v1/admin/users/{trader.id}", headers=admin.headers, json={"is_active": False}
    )
    assert disabled.status_code == 200
    assert (await client.get("/api/v1/users/me", headers=by_key)).status_code == 401


async def test_a_session_in_use_is_refreshed_ahead_of_its_expiry(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    """An entry due for a refresh answers the request and is read again beside it: a
    session in use never misses the cache (each miss cost the benchmark ~120 ms), and a
    revocation made elsewhere is still found by that read, within the entry's lifetime."""
    ctx = app.state.ctx
    user = await users.logged_in()
    key = sessions._key(user.session_id)

    async def age_entry() -> None:
        cached = await ctx.cache.get(key)
        assert cached is not None
        value, due = unstamped(cached)
        assert not due  # read just now
        await ctx.cache.set(key, stamped(value, 0), 30)  # due from now on

    await age_entry()
    with statements(app) as seen:
        assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
        await asyncio.gather(*ctx.background)
    reads = [statement for statement in seen if statement != "BEGIN"]  # SQLite's own BEGIN
    assert len(reads) == 1  # the one read, beside the request
    assert "FROM auth_sessions" in reads[0]
    refreshed = await ctx.cache.get(key)
    assert refreshed is not None
    value, due = unstamped(refreshed)
    assert (value, due) == (user.id.bytes, False)

    # Revoked in the database by another process (this one's cache not told): the refresh
    # that the next request starts finds it, and the request after that is refused.
    async with ctx.database.session(immediate=True) as db:
        await db.execute(
            update(AuthSession)
            .where(AuthSession.id == user.session_id)
            .values(revoked_at=dt.datetime.now(dt.UTC), revoked_reason="logout")
        )
    await age_entry()
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    await asyncio.gather(*ctx.background)
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401


async def test_a_refresh_under_way_never_undoes_a_logout(
    app: FastAPI, client: httpx.AsyncClient, users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh read the database before the logout committed; the logout's revoked
    marker, written meanwhile, must survive the refresh's write."""
    ctx = app.state.ctx
    user = await users.logged_in()
    key = sessions._key(user.session_id)
    credentials = security_services(ctx).credentials
    read_session = credentials.session
    gate = asyncio.Event()

    async def slow_read(session_id: Any, *, now: dt.datetime) -> Any:
        record = await read_session(session_id, now=now)  # live: read before the logout
        await gate.wait()
        return record

    cached = await ctx.cache.get(key)
    assert cached is not None
    await ctx.cache.set(key, stamped(unstamped(cached)[0], 0), 30)  # due now
    # The real store, slowed down so the logout lands while its read is under way.
    monkeypatch.setattr(credentials, "session", slow_read)
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 200
    for _ in range(20):  # the refresh has read the session, live, and waits
        await asyncio.sleep(0)
    assert ctx.background
    logout = await client.post("/api/v1/auth/logout", headers=user.headers)
    assert logout.status_code == 204, logout.text
    gate.set()
    await asyncio.gather(*ctx.background)
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401
