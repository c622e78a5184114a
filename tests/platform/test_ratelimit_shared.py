"""The shared (Redis) rate-limit counters: ``platform.ratelimit``'s ``_HIT`` script decides
exactly as the per-process ``LocalWindows`` do (which are checked against a brute-force
moving window in ``test_ratelimit_local.py``), in one round trip per decision.  Needs Redis:
runs in the PostgreSQL + Redis pass."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from quantdesk.platform.ratelimit import KEY_PREFIX, LocalWindows, RateLimiter

pytestmark = pytest.mark.postgres_only  # needs Redis: the PostgreSQL + Redis pass

CLASSES = {"orders": "3/2 seconds;5/10 seconds", "api": "2/second"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def shared_redis(redis_url: str | None) -> str:
    assert redis_url is not None  # the PostgreSQL + Redis pass always has Redis
    return redis_url


@pytest.fixture
async def redis(shared_redis: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(shared_redis)
    yield client
    await client.aclose()


_runs = itertools.count()

_EVENTS = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=3.0),  # seconds since the previous request
        st.sampled_from(["orders", "api"]),
        st.sampled_from(["a", "b"]),  # which key
        st.sampled_from(["hit", "exhausted", "reset"]),
    ),
    max_size=40,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=_EVENTS)
def test_redis_decides_as_the_local_windows_do(
    shared_redis: str, events: list[tuple[float, str, str, str]]
) -> None:
    async def run() -> None:
        async with Redis.from_url(shared_redis) as redis:
            await compare(redis)

    async def compare(redis: Redis) -> None:
        clock = Clock()
        shared = RateLimiter(CLASSES, redis=redis, clock=clock)
        local = LocalWindows(clock)
        items = {name: shared._classes[name] for name in CLASSES}
        run_id = next(_runs)  # keys of their own: no example sees another's hits
        for gap, limit_class, key, action in events:
            clock.now += gap
            key = f"{run_id}:{key}"
            if action == "hit":
                assert await shared.hit(limit_class, key) == local.hit(
                    limit_class, key, items[limit_class]
                )
            elif action == "exhausted":
                assert await shared.exhausted(limit_class, key) == local.exhausted(
                    limit_class, key, items[limit_class]
                )
            else:
                await shared.reset(limit_class, key)
                local.reset(limit_class, key)

    asyncio.run(run())


async def test_one_round_trip_per_decision_and_keys_that_expire(redis: Redis) -> None:
    clock = Clock()
    limiter = RateLimiter(CLASSES, redis=redis, clock=clock)
    await limiter.hit("orders", "rt")  # loads the script
    await redis.config_resetstat()
    decisions = [await limiter.hit("orders", "rt") for _ in range(3)]
    called = {
        name.removeprefix("cmdstat_"): stats["calls"]
        for name, stats in (await redis.info("commandstats")).items()
    }
    # One EVALSHA per decision; what else ran, ran inside it (and CONFIG RESETSTAT itself;
    # INFO counts itself only once it has answered).
    assert called.pop("evalsha") == 3
    assert set(called) <= {"lindex", "lpush", "ltrim", "expire", "lrange", "config|resetstat"}
    assert [(d.allowed, d.remaining, d.limit) for d in decisions] == [
        (True, 1, 3),
        (True, 0, 3),
        (False, 0, 3),
    ]
    assert decisions[-1].reset_after_s == 2  # the first hit leaves the 2 s window
    keys = sorted([k.decode() async for k in redis.scan_iter(f"{KEY_PREFIX}/orders/rt/*")])
    assert keys == [f"{KEY_PREFIX}/orders/rt/3/2", f"{KEY_PREFIX}/orders/rt/5/10"]
    assert 0 < await redis.ttl(keys[1]) <= 10
