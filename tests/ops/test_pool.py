"""The connection pool at exhaustion: a request that cannot get a connection waits at most
QUANTDESK_DB_POOL_TIMEOUT_S, then answers a 503 problem naming the database; once a
connection is free again requests succeed (no hang, no 500, nothing to restart)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from quantdesk.app import create_app
from quantdesk.platform.context import DbSession
from quantdesk.settings import Settings

POOL_TIMEOUT_S = 0.5
POOL_SIZE = 3


def test_production_pool_default_is_100_connections_per_process() -> None:
    fields = Settings.model_fields
    assert fields["db_pool_size"].default + fields["db_max_overflow"].default == 100


@pytest.fixture
async def small_pool_app(settings: Settings) -> AsyncIterator[FastAPI]:
    tight = settings.model_copy(
        update={
            "db_pool_size": POOL_SIZE,
            "db_max_overflow": 0,
            "db_pool_timeout_s": POOL_TIMEOUT_S,
            "trading_matcher": False,
        }
    )
    app = create_app(tight)

    async def one(session: DbSession) -> dict[str, int]:
        return {"one": int((await session.execute(text("SELECT 1"))).scalar_one())}

    app.add_api_route("/t/db", one)
    async with app.router.lifespan_context(app):
        yield app


async def test_an_exhausted_pool_answers_503_after_a_bounded_wait(
    small_pool_app: FastAPI,
) -> None:
    database = small_pool_app.state.ctx.database
    transport = httpx.ASGITransport(app=small_pool_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/t/db")).json() == {"one": 1}
        # Units of work hold every connection (background work may hold one), as slow
        # requests would.
        async with contextlib.AsyncExitStack() as held:
            for _ in range(20):
                while database.pool_checked_out() < POOL_SIZE:
                    session = await held.enter_async_context(database.session())
                    await session.execute(text("SELECT 1"))
                # Bounded: the pool's timeout, never the test's (a hang fails here, not at
                # 180 s).
                refused = await asyncio.wait_for(client.get("/t/db"), POOL_TIMEOUT_S + 5)
                if refused.status_code != 200:
                    break
                # Background work handed its connection back meanwhile and the request took
                # it: hold that one too and ask again.
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["dependency"] == "database"
            assert int(refused.headers["retry-after"]) >= 1
            metrics = (await client.get("/metrics")).text
            assert f"quantdesk_db_pool_connections_in_use {POOL_SIZE}.0" in metrics
        # The connections are back: the next request is served at once.
        assert (await client.get("/t/db")).json() == {"one": 1}
        assert database.pool_checked_out() < POOL_SIZE
