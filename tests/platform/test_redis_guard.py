"""The per-process fallbacks behind an unreachable Redis, and the 503 for anything else.

A real Redis client pointed at a port nobody listens on: what a killed Redis looks like to
the app (connection refused).  The kill-and-restart test under load is
``test_redis_outage.py`` (PostgreSQL + Redis pass).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from quantdesk.app import create_app
from quantdesk.platform.bus import RedisBus
from quantdesk.platform.cache import RedisCache
from quantdesk.platform.metrics import Metrics
from quantdesk.platform.ratelimit import RateLimiter
from quantdesk.platform.redisguard import RedisGuard
from quantdesk.security.policy import Public
from quantdesk.settings import Settings
from tests.support.servers import free_port


@pytest.fixture
async def dead_redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(
        f"redis://127.0.0.1:{free_port()}/0",
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 1),
    )
    yield client
    await client.aclose()


def _fallbacks(metrics: Metrics, use: str) -> float:
    value = metrics.registry.get_sample_value("quantdesk_redis_fallbacks_total", {"use": use})
    return value or 0.0


async def test_cache_serves_from_memory_while_redis_is_unreachable(dead_redis: Redis) -> None:
    metrics = Metrics()
    cache = RedisCache(dead_redis, RedisGuard(metrics))
    await cache.set("session:1", b"live", 30)
    assert await cache.get("session:1") == b"live"
    assert await cache.get_many(["session:1", "missing"]) == [b"live", None]
    assert [await cache.incr("mfa-challenge:1", 60) for _ in range(3)] == [1, 2, 3]
    await cache.delete("session:1")
    assert await cache.get("session:1") is None
    # The first call found Redis down; the others did not wait for it again.
    assert _fallbacks(metrics, "cache") == 8


async def test_breaker_skips_a_dead_redis_for_a_second(dead_redis: Redis) -> None:
    guard = RedisGuard()
    cache = RedisCache(dead_redis, guard)
    await cache.get("warm")
    assert guard.degraded
    started = time.perf_counter()
    for _ in range(200):
        await cache.get("key")
    assert time.perf_counter() - started < 0.5


async def test_a_hung_redis_costs_one_slow_probe_not_one_per_request() -> None:
    # A server that accepts connections and never answers: Redis hung, not gone.
    hung = await asyncio.start_server(lambda _reader, _writer: None, "127.0.0.1", 0)
    port = hung.sockets[0].getsockname()[1]
    client = Redis(host="127.0.0.1", port=port, socket_timeout=0.2, retry=Retry(NoBackoff(), 0))
    try:
        cache = RedisCache(client, RedisGuard(retry_after_s=0.1))
        assert await cache.get("quote") is None  # waited 0.2 s once, then fell back
        await asyncio.sleep(0.15)  # the breaker lets the next call probe Redis again

        async def timed_get() -> float:
            started = time.perf_counter()
            await cache.get("quote")
            return time.perf_counter() - started

        durations = await asyncio.gather(*(timed_get() for _ in range(50)))
        assert sum(1 for seconds in durations if seconds > 0.1) == 1
    finally:
        await client.aclose()
        hung.close()


async def test_rate_limits_fall_back_to_per_process_counting(dead_redis: Redis) -> None:
    metrics = Metrics()
    limiter = RateLimiter({"login_ip": "3/minute"}, redis=dead_redis, metrics=metrics)
    decisions = [await limiter.hit("login_ip", "ip:198.51.100.1") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert _fallbacks(metrics, "rate_limit") == 4


async def test_bus_delivers_locally_while_redis_is_unreachable(dead_redis: Redis) -> None:
    bus = RedisBus(dead_redis, RedisGuard())
    async with bus.subscribe(["quotes.NSE:INFY"]) as subscription:
        await bus.publish("quotes.NSE:INFY", b"1520.5")
        assert await subscription.get(1.0) == ("quotes.NSE:INFY", b"1520.5")


@pytest.fixture
async def app_with_redis_route(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)

    async def needs_redis() -> None:
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    application.add_api_route("/t/redis", needs_redis, dependencies=[Public])
    async with application.router.lifespan_context(application):
        yield application


async def test_redis_outage_elsewhere_is_a_503_problem(app_with_redis_route: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app_with_redis_route)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/t/redis")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "2"
    assert response.json()["dependency"] == "redis"
    assert "127.0.0.1" not in response.text
