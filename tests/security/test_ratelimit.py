"""Rate limits: defaults, headers, metrics, audit, and one budget across processes (Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI

from quantdesk.app import create_app
from quantdesk.platform.ratelimit import RateLimiter, limit_classes_from_settings
from quantdesk.settings import Settings
from tests.conftest import UserFactory
from tests.security.probe_app import app_with_probe_orders


def test_default_limits_are_the_documented_ones() -> None:
    defaults = limit_classes_from_settings(Settings(_env_file=None))
    assert defaults == {
        "login_account": "5/minute",
        "login_ip": "20/minute",
        "auth_ip": "60/minute",
        "register_ip": "10/hour",
        "unauthenticated_ip": "30/minute",
        "api": "20/second",
        "orders": "10/second;200/minute",
    }


async def test_moving_window_counts_exactly_in_memory() -> None:
    limiter = RateLimiter({"orders": "3/minute;5/hour"})
    decisions = [await limiter.hit("orders", "user:1") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[-1].limit == 3
    assert 1 <= int(decisions[-1].headers()["Retry-After"]) <= 60
    # The refusal did not use up the hourly window; another key has its own budget.
    assert (await limiter.hit("orders", "user:2")).allowed
    await limiter.reset("orders", "user:1")
    assert (await limiter.hit("orders", "user:1")).allowed


@pytest.fixture
async def limited_app(settings: Settings) -> AsyncIterator[FastAPI]:
    tuned = settings.model_copy(
        update={
            "rate_limit_login_ip": "20/minute",
            "rate_limit_api": "4/minute",
            "rate_limit_orders": "2/minute;100/hour",
            "rate_limit_login_account": "1000/minute",
        }
    )
    async with app_with_probe_orders(tuned) as application:
        yield application


async def test_login_is_limited_per_client_address(limited_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=limited_app, client=("192.0.2.1", 1000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        statuses = []
        for attempt in range(21):
            response = await client.post(
                "/api/v1/auth/login",
                json={"email": f"probe{attempt}@example.com", "password": "guess guess guess"},
            )
            statuses.append(response.status_code)
        assert statuses[:20] == [401] * 20
        assert statuses[20] == 429
        assert response.headers["ratelimit-limit"] == "20"
        assert response.headers["ratelimit-remaining"] == "0"
        assert int(response.headers["ratelimit-reset"]) <= 60
        assert response.json()["status"] == 429
    other = httpx.ASGITransport(app=limited_app, client=("192.0.2.2", 1000))
    async with httpx.AsyncClient(transport=other, base_url="http://t") as client:
        response = await client.post(
            "/api/v1/auth/login", json={"email": "x@example.com", "password": "guess guess guess"}
        )
        assert response.status_code == 401
    metrics = limited_app.state.ctx.metrics.render().decode()
    assert 'quantdesk_rate_limit_hits_total{limit="login_ip"} 1.0' in metrics


async def test_api_and_orders_limits_per_user(limited_app: FastAPI, settings: Settings) -> None:
    transport = httpx.ASGITransport(app=limited_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.post(
            "/api/v1/auth/register",
            json={"email": "o@example.com", "password": "a long enough passphrase"},
        )
        login = await client.post(
            "/api/v1/auth/login",
            json={"email": "o@example.com", "password": "a long enough passphrase"},
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        first = await client.post("/api/v1/probe/orders", headers=headers)
        assert first.status_code == 200
        # The response reports the tightest budget of the request (orders: 2/minute).
        assert first.headers["ratelimit-limit"] == "2"
        assert first.headers["ratelimit-remaining"] == "1"
        assert (await client.post("/api/v1/probe/orders", headers=headers)).status_code == 200
        third = await client.post("/api/v1/probe/orders", headers=headers)
        assert third.status_code == 429
        assert third.json()["detail"].startswith("too many requests (orders)")
        # The two orders placed also spent the general API budget (4/minute); the refused one
        # counted in neither class (all or nothing): two left, then 429.
        me = await client.get("/api/v1/users/me", headers=headers)
        assert (me.status_code, me.headers["ratelimit-remaining"]) == (200, "1")
        assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
        limited = await client.get("/api/v1/users/me", headers=headers)
        assert limited.status_code == 429
        assert "retry-after" in limited.headers
        admin_events = limited_app.state.ctx
        async with admin_events.database.session() as db:
            from sqlalchemy import select

            from quantdesk.security.models import SecurityEvent

            rows = (
                (
                    await db.execute(
                        select(SecurityEvent.details).where(
                            SecurityEvent.event_type == "rate_limited"
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert sorted(row["limit"] for row in rows if row) == ["api", "orders"]


async def test_two_app_instances_share_one_budget_through_redis(
    settings: Settings, backend: str, make_user: UserFactory
) -> None:
    """Two processes behind a load balancer: with Redis they share the user's budget;
    without it (the embedded default) each process counts on its own."""
    user = await make_user()
    tuned = settings.model_copy(update={"rate_limit_api": "3/minute"})
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            application = create_app(tuned)
            await stack.enter_async_context(application.router.lifespan_context(application))
            transport = httpx.ASGITransport(app=application)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://t")
                )
            )
        one, two = clients
        statuses = [
            (await one.get("/api/v1/users/me", headers=user.headers)).status_code,
            (await two.get("/api/v1/users/me", headers=user.headers)).status_code,
            (await one.get("/api/v1/users/me", headers=user.headers)).status_code,
            (await two.get("/api/v1/users/me", headers=user.headers)).status_code,
        ]
    if backend == "postgres":
        assert tuned.redis_url is not None
        assert statuses == [200, 200, 200, 429]
    else:
        assert tuned.redis_url is None
        assert statuses == [200, 200, 200, 200]
