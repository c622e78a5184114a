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

CLASSES = {
    "orders": "3/2 seconds;5/10 seconds",
    "api": "2/second",
    "unauthenticated_ip": "2/3 seconds",
}


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
        # "many": that class and api counted, the failure budget of address "a" tested
        st.sampled_from(["hit", "exhausted", "reset", "many"]),
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
                # Failures of the address tested in "many".
                assert await shared.hit("unauthenticated_ip", key) == local.hit(
                    "unauthenticated_ip", key, items["unauthenticated_ip"]
                )
            elif action == "many":
                # The limiter counts a class and key once however often it is named.
                counted = list(dict.fromkeys([(limit_class, key), ("api", key)]))
                tested = [("unauthenticated_ip", f"{run_id}:a")]
                assert await shared.hit_many([*counted, *counted], tested=tested) == local.hit_many(
                    [(c, k, items[c]) for c, k in counted],
                    tested=[(c, k, items[c]) for c, k in tested],
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


async def test_several_classes_in_one_round_trip(redis: Redis) -> None:
    clock = Clock()
    limiter = RateLimiter(CLASSES, redis=redis, clock=clock)
    placement = [("api", "u"), ("orders", "u")]
    failures = [("unauthenticated_ip", "ip:1")]
    await limiter.hit("api", "loader")  # loads the script
    await redis.config_resetstat()
    decisions = [await limiter.hit_many(placement, tested=failures) for _ in range(3)]
    called = {
        name.removeprefix("cmdstat_"): stats["calls"]
        for name, stats in (await redis.info("commandstats")).items()
    }
    assert called.pop("evalsha") == 3
    assert set(called) <= {"lindex", "lpush", "ltrim", "expire", "lrange", "config|resetstat"}
    assert [
        [(d.limit_class, d.allowed, d.remaining, d.limit) for d in got] for got in decisions
    ] == [
        [("api", True, 1, 2), ("orders", True, 2, 3)],
        [("api", True, 0, 2), ("orders", True, 1, 3)],
        [("api", False, 0, 2)],
    ]
    # The refused third counted in neither class; the tested address was never counted.
    assert await redis.llen(f"{KEY_PREFIX}/orders/u/3/2") == 2
    assert await redis.llen(f"{KEY_PREFIX}/api/u/2/1") == 2
    assert await redis.exists(f"{KEY_PREFIX}/unauthenticated_ip/ip:1/2/3") == 0


async def test_a_refusal_is_known_without_a_round_trip_until_it_runs_out(redis: Redis) -> None:
    clock = Clock()
    here = RateLimiter(CLASSES, redis=redis, clock=clock)
    elsewhere = RateLimiter(CLASSES, redis=redis, clock=clock)  # another process
    for _ in range(2):
        await elsewhere.hit("unauthenticated_ip", "ip:2")
    # Spent through another process: not known here until Redis refuses this one.
    assert here.known_refusal("unauthenticated_ip", "ip:2") is None
    clock.now += 1.0
    refused = await here.hit("unauthenticated_ip", "ip:2")
    assert (refused.allowed, refused.reset_after_s) == (False, 2)
    await redis.config_resetstat()
    known = here.known_refusal("unauthenticated_ip", "ip:2")
    assert known is not None
    assert (known.limit_class, known.allowed, known.limit, known.reset_after_s) == (
        "unauthenticated_ip",
        False,
        2,
        2,
    )
    called = set(await redis.info("commandstats"))
    assert called <= {"cmdstat_config|resetstat"}
    clock.now += 1.5
    assert here.known_refusal("unauthenticated_ip", "ip:2") is not None  # 0.5 s left
    clock.now += 0.5  # the first failures leave the 3 s window
    assert here.known_refusal("unauthenticated_ip", "ip:2") is None
    assert (await here.hit("unauthenticated_ip", "ip:2")).allowed
