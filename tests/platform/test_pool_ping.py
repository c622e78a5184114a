"""Pooled PostgreSQL connections are pinged before use only once idle
(``QUANTDESK_DB_PING_AFTER_IDLE_S``), and the pool heals by itself either way when the server
ends its connections: an idle dead connection is replaced before the request uses it; one
used a moment ago fails that one request with a 503 and makes the pool replace the rest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import text

from quantdesk.app import create_app
from quantdesk.platform.context import DbSession
from quantdesk.settings import Settings
from tests.support.servers import PostgresServer

pytestmark = pytest.mark.postgres_only


@asynccontextmanager
async def _connection_ended(
    settings: Settings, pg_server: PostgresServer, ping_after_idle_s: float
) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    """An app whose pool pings after ``ping_after_idle_s``, its client, and the backend pid
    of a first request, whose connection the server has then ended."""
    app = create_app(settings.model_copy(update={"db_ping_after_idle_s": ping_after_idle_s}))

    async def backend(session: DbSession) -> dict[str, int]:
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return {"pid": int(pid)}

    app.add_api_route("/t/backend", backend)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            first = await c.get("/t/backend")
            assert first.status_code == 200, first.text
            # Every connection of the app (its pool names itself ``quantdesk``).
            pg_server.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'quantdesk'"
            )
            yield c, first.json()["pid"]


async def test_an_idle_connection_ended_by_the_server_is_replaced_before_use(
    settings: Settings, pg_server: PostgresServer
) -> None:
    async with _connection_ended(settings, pg_server, 0.2) as (client, first_pid):
        await asyncio.sleep(0.3)  # idle past the threshold: pinged, found dead, replaced
        again = await client.get("/t/backend")
        assert again.status_code == 200, again.text
        assert again.json()["pid"] != first_pid


async def test_a_connection_used_a_moment_ago_is_not_pinged_and_the_pool_heals(
    settings: Settings, pg_server: PostgresServer
) -> None:
    async with _connection_ended(settings, pg_server, 3600) as (client, first_pid):
        # Not pinged (used within the hour): the statement finds it dead, a 503, not a 500.
        failed = await client.get("/t/backend")
        assert failed.status_code == 503, failed.text
        assert failed.json()["dependency"] == "database"
        healed = await client.get("/t/backend")
        assert healed.status_code == 200, healed.text
        assert healed.json()["pid"] != first_pid
