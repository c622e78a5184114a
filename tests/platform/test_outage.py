"""The database going away after start-up: fast 503s, honest readiness, and self-healing."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from quantdesk.platform.context import DbSession
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def db_route(app: FastAPI) -> FastAPI:
    async def count(session: DbSession) -> dict[str, int]:
        return {"one": int((await session.execute(text("SELECT 1"))).scalar_one())}

    app.add_api_route("/t/db", count)
    return app


async def test_database_outage_and_recovery(
    db_route: FastAPI, client: httpx.AsyncClient, pg_server: PostgresServer
) -> None:
    assert (await client.get("/t/db")).json() == {"one": 1}

    pg_server.stop()
    try:
        started = time.perf_counter()
        ready = await client.get("/health/ready")
        assert time.perf_counter() - started < 2.0
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/problem+json"
        assert ready.json()["failing"] == ["database"]

        started = time.perf_counter()
        failed = await client.get("/t/db")
        assert time.perf_counter() - started < 5.0
        assert failed.status_code == 503
        assert failed.json()["dependency"] == "database"
    finally:
        pg_server.start()

    recovered = await client.get("/t/db")
    assert recovered.status_code == 200
    # Readiness answers from a short cache (platform/health.py): the outage's answer may
    # stand until it expires, then the next check sees the database again.
    await asyncio.sleep(db_route.state.ctx.settings.health_cache_s)
    assert (await client.get("/health/ready")).status_code == 200
