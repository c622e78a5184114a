"""A request's rate limits are one decision: the ``api`` budget, the classes its route
declares with ``rate_limit(...)`` and its address's failure budget, decided together in one
round trip to Redis (``_authenticate``, ``RateLimiter.hit_many``), all or nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from redis.asyncio import Redis
from sqlalchemy import event

from quantdesk.app import create_app
from quantdesk.platform.ratelimit import KEY_PREFIX
from quantdesk.security.policy import RequireTrader, rate_limit
from quantdesk.settings import Settings
from tests.conftest import base_settings
from tests.security.probe_app import app_with_probe_orders
from tests.support.factories import TestUser, Users

ORDER = {"instrument": "SIM:ALPHA", "side": "buy", "quantity": "1", "type": "market"}


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        update={
            "rate_limit_api": "6/minute",
            "rate_limit_orders": "2/minute;100/hour",
            "rate_limit_unauthenticated_ip": "2/minute",
        }
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with app_with_probe_orders(settings) as application:
        yield application


@pytest.fixture
async def trader(users: Users) -> TestUser:
    return await users.logged_in()


def _other_address(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 1000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _calls(redis: Redis) -> dict[str, int]:
    stats = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


@pytest.mark.postgres_only  # needs Redis
async def test_an_order_placement_is_one_rate_limit_round_trip(
    client: httpx.AsyncClient, trader: TestUser, redis_url: str
) -> None:
    async with Redis.from_url(redis_url) as redis:
        await redis.config_resetstat()
        # The real placement route, for an account that does not exist: its dependencies,
        # the rate limits among them, run before the 404.
        placed = await client.post(
            f"/api/v1/accounts/{uuid.uuid4()}/orders", json=ORDER, headers=trader.headers
        )
        assert placed.status_code == 404
        # ``_HIT`` is the only script run with EVALSHA: one per rate-limit round trip.
        assert (await _calls(redis)).get("evalsha") == 1
        user = f"user:{trader.id}"
        # Signing in read /users/me once; the placement is the second api hit.
        assert await redis.llen(f"{KEY_PREFIX}/api/{user}/6/60") == 2
        assert await redis.llen(f"{KEY_PREFIX}/orders/{user}/2/60") == 1
        assert await redis.llen(f"{KEY_PREFIX}/orders/{user}/100/3600") == 1
        # The address's failure budget was tested, not counted.
        assert not [key async for key in redis.scan_iter(f"{KEY_PREFIX}/unauthenticated_ip/*")]
        # The orders window is the tightest: 2/minute, one left.
        assert (placed.headers["ratelimit-limit"], placed.headers["ratelimit-remaining"]) == (
            "2",
            "1",
        )
        await redis.config_resetstat()
        assert (await client.get("/api/v1/users/me", headers=trader.headers)).status_code == 200
        assert (await _calls(redis)).get("evalsha") == 1


async def test_a_refused_request_counts_in_no_class(
    client: httpx.AsyncClient, trader: TestUser
) -> None:
    headers = trader.headers
    statuses = [(await client.post("/api/v1/probe/orders", headers=headers)) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    refused = statuses[-1]
    assert refused.json()["detail"].startswith("too many requests (orders)")
    assert (refused.headers["ratelimit-limit"], refused.headers["ratelimit-remaining"]) == (
        "2",
        "0",
    )
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # api (6/minute) counted the sign-in's read and the two orders placed, not the refused
    # one: 2 left after this read.
    me = await client.get("/api/v1/users/me", headers=headers)
    assert (me.status_code, me.headers["ratelimit-limit"], me.headers["ratelimit-remaining"]) == (
        200,
        "6",
        "2",
    )
    for _ in range(2):
        assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
    # api spent: refused by api, and that refusal did not spend the hourly orders budget
    # either (the headers of a refusal name its class's window).
    limited = await client.post("/api/v1/probe/orders", headers=headers)
    assert limited.status_code == 429
    assert limited.json()["detail"].startswith("too many requests (api)")
    assert limited.headers["ratelimit-limit"] == "6"


async def test_an_address_past_its_failure_budget(
    app: FastAPI, trader: TestUser, redis_url: str | None
) -> None:
    """Valid credentials from it are refused, counting nothing; once this process knows,
    invalid ones are refused before any lookup, without a round trip."""
    engine = app.state.ctx.database.engine.sync_engine
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    async with _other_address(app, "198.51.100.7") as attacker:

        async def invalid_key(n: int) -> httpx.Response:
            key = f"qd_{uuid.uuid4().hex[:12]}_{'x' * 43}{n}"
            return await attacker.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {key}"}
            )

        event.listen(engine, "before_cursor_execute", count)
        try:
            first = await invalid_key(0)
            looked_up = len(statements)
            assert (await invalid_key(1)).status_code == 401
            assert (await invalid_key(2)).status_code == 429  # the third failure in a minute
            statements.clear()
            redis = Redis.from_url(redis_url) if redis_url else None
            if redis is not None:
                await redis.config_resetstat()
            known = await invalid_key(3)
            if redis is not None:
                assert "evalsha" not in await _calls(redis)
                await redis.aclose()
            assert statements == []
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert first.status_code == 401
        assert looked_up > 0  # an unknown API key costs a database lookup when checked
        assert known.status_code == 429
        assert known.json()["detail"].startswith("too many requests (unauthenticated_ip)")
        assert int(known.headers["retry-after"]) >= 1
        # A valid credential from the address is refused too, and spends no api budget.
        valid = await attacker.get("/api/v1/users/me", headers=trader.headers)
        assert valid.status_code == 429
    async with _other_address(app, "203.0.113.99") as elsewhere:
        me = await elsewhere.get("/api/v1/users/me", headers=trader.headers)
    # Signing in read once, this is the second: the refused valid request counted nothing.
    assert (me.status_code, me.headers["ratelimit-remaining"]) == (200, "4")


async def test_a_limit_given_at_inclusion_still_counts(settings: Settings) -> None:
    """``include_router(dependencies=[rate_limit(...)])`` is not seen when authenticating:
    its own dependency counts it (docs/security.md, "Rate limits")."""
    application = create_app(settings)
    router = APIRouter()

    @router.post("/api/v1/probe/included")
    async def place(principal: RequireTrader) -> dict[str, str]:
        return {"ok": "yes"}

    application.include_router(router, dependencies=[rate_limit("orders")])
    async with (
        application.router.lifespan_context(application),
        _other_address(application, "203.0.113.5") as client,
    ):
        trader = await Users(application, client).logged_in()
        statuses = [
            (await client.post("/api/v1/probe/included", headers=trader.headers)).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 429]  # orders: 2/minute
