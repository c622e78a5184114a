"""One refresh token rotated by many requests at the same moment (docs/security.md, sessions).

The token is single use: the refresh that takes the token's row lock first (``SELECT ... FOR
UPDATE`` on PostgreSQL, the immediate transaction on SQLite) rotates it; every other one
then finds it spent, which is exactly what a copied token looks like, so each of them is a
reuse: 401, a ``refresh_token_reused`` event, and the whole session revoked -- including
the tokens the winner was just given.  Without the lock two of them could both see the
token unspent and both be issued a new one: a forked session that reuse detection never
sees.  Runs on SQLite and, in the PostgreSQL pass, with overlapping transactions.
"""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from quantdesk.platform.context import AppContext
from quantdesk.security.models import SecurityEvent
from tests.support.concurrency import Call, burst, repeat
from tests.support.factories import Users

RACERS = 8


async def _reuse_events(app: FastAPI, user_id: uuid.UUID) -> int:
    ctx: AppContext = app.state.ctx
    async with ctx.database.session() as db:
        query = (
            select(func.count())
            .select_from(SecurityEvent)
            .where(
                SecurityEvent.event_type == "refresh_token_reused",
                SecurityEvent.user_id == user_id,
            )
        )
        return int((await db.execute(query)).scalar_one())


async def test_concurrent_rotation_of_one_token_succeeds_once(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.logged_in()
    other_session = await users.sign_in(user)

    race = await repeat(
        client,
        Call("POST", "/api/v1/auth/refresh", json={"refresh_token": user.refresh_token}),
        RACERS,
    )

    assert race.status_counts() == {200: 1, 401: RACERS - 1}, race.statuses
    winner = race.only(200).body
    assert winner["session_id"] == str(user.session_id)
    assert winner["refresh_token"] != user.refresh_token
    for loser in race.with_status(401):
        assert loser.headers["content-type"].startswith("application/problem+json")
        assert loser.body["detail"] == "the refresh token is invalid or expired"
    # Every loser presented a spent token: each is recorded as a reuse.
    assert await _reuse_events(app, user.id) == RACERS - 1

    # The session is revoked as a whole: the winner's fresh tokens are dead too.
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": winner["refresh_token"]}
    )
    assert refreshed.status_code == 401
    for token in (user.access_token, winner["access_token"]):
        me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
    # The user's other session is untouched.
    assert (await client.get("/api/v1/users/me", headers=other_session.headers)).status_code == 200
    again = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other_session.refresh_token}
    )
    assert again.status_code == 200


async def test_concurrent_rotation_of_different_sessions_all_succeed(
    client: httpx.AsyncClient, users: Users
) -> None:
    """The lock is per token: sessions refreshing at the same time do not block each other
    into failure."""
    user = await users.logged_in()
    # Four sign-ins: the per-account login budget (5/minute) is not what this tests.
    sessions = [user, *[await users.sign_in(user) for _ in range(3)]]

    race = await burst(
        client,
        [
            Call("POST", "/api/v1/auth/refresh", json={"refresh_token": s.refresh_token})
            for s in sessions
        ],
    )
    assert race.statuses == [200] * len(sessions)
    assert [o.body["session_id"] for o in race.outcomes] == [str(s.session_id) for s in sessions]
