"""The Redis bus: a process's own messages reach its own subscribers at publish time and once
(their echo from Redis is dropped), the other processes' come through Redis, in order, and
after a Redis restart a subscription hears the other processes again by itself.  A latest
value published with its cache write (``publish_stored``) is handed over here before Redis
has the write, read back here meanwhile, and announced to the others only once stored.

Two ``RedisBus`` objects on one Redis server are two processes: they share nothing but the
server.  Needs Redis: runs in the PostgreSQL + Redis pass (the echo bookkeeping without
Redis is ``test_bus_echoes.py``, in both passes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from quantdesk.platform.bus import Message, RedisBus, Subscription
from quantdesk.platform.cache import RedisCache
from quantdesk.platform.metrics import Metrics
from quantdesk.platform.redisguard import RedisGuard
from tests.support.servers import RedisServer

pytestmark = pytest.mark.postgres_only  # needs Redis: the PostgreSQL + Redis pass

QUOTES = [f"quotes.SIM:E{n}" for n in range(3)]
MARKER = (QUOTES[0], b'{"marker":true}')


def _client(url: str) -> Redis:
    # As the app builds it (platform/context.py): fail fast, one immediate retry.
    return Redis.from_url(
        url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 1)
    )


@pytest.fixture
async def processes(redis_url: str | None) -> AsyncIterator[tuple[RedisBus, RedisBus, RedisBus]]:
    """Two processes and a third that publishes markers: a message of its own reaches a
    subscriber through Redis, after everything Redis took before it."""
    assert redis_url is not None  # the PostgreSQL + Redis pass always has Redis
    prefix = f"qd:test:{uuid.uuid4().hex[:8]}:"  # no other test's channels
    clients = [_client(redis_url) for _ in range(3)]
    here, there, third = (RedisBus(client, RedisGuard(), prefix) for client in clients)
    yield here, there, third
    for client in clients:
        await client.aclose()


async def _drain(subscription: Subscription, until: Message) -> list[Message]:
    """What ``subscription`` gets up to and with ``until``."""
    got: list[Message] = []
    async with asyncio.timeout(5):
        while not got or got[-1] != until:
            message = await subscription.get()
            assert message is not None
            got.append(message)
    return got


async def test_own_messages_arrive_at_publish_time_once_and_in_order(
    processes: tuple[RedisBus, RedisBus, RedisBus],
) -> None:
    here, there, third = processes
    sent = [(QUOTES[n % 3], f'{{"n":{n}}}'.encode()) for n in range(30)]
    async with here.subscribe(QUOTES) as near, there.subscribe(QUOTES) as far:
        for channel, body in sent:
            await here.publish(channel, body)
            # Already handed over, with no turn of the loop for a Redis reader to take.
            assert await near.get(0) == (channel, body)
        # Redis answered each PUBLISH before the marker's: their echoes come before it.
        await third.publish(*MARKER)
        assert await _drain(near, MARKER) == [MARKER]
        assert await _drain(far, MARKER) == [*sent, MARKER]


async def test_the_same_bytes_from_another_process_still_arrive(
    processes: tuple[RedisBus, RedisBus, RedisBus],
) -> None:
    # Two processes computing the same signal publish the same value: each subscriber gets
    # both copies, as it did before the local delivery (only its own echo is dropped).
    here, there, third = processes
    value = (QUOTES[1], b'{"t":1700000000,"value":0.5}')
    async with here.subscribe(QUOTES) as near, there.subscribe(QUOTES) as far:
        await here.publish(*value)
        await there.publish(*value)
        await third.publish(*MARKER)
        assert await _drain(near, MARKER) == [value, value, MARKER]
        assert await _drain(far, MARKER) == [value, value, MARKER]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()  # this test stops it; the suite's keeps serving the others
    server.start()
    yield server
    server.stop()


async def test_after_a_redis_restart_a_subscription_hears_the_others_again(
    own_redis: RedisServer,
) -> None:
    metrics = Metrics()
    first, second = _client(own_redis.url(0)), _client(own_redis.url(0))
    here, there = RedisBus(first, RedisGuard(metrics)), RedisBus(second, RedisGuard())
    try:
        async with here.subscribe(QUOTES) as near:
            assert own_redis.process is not None
            own_redis.process.kill()
            own_redis.process.wait()
            during = (QUOTES[0], b"during")
            await here.publish(*during)  # the PUBLISH fails: this process's subscribers only
            assert await near.get(1.0) == during
            cache, stored = RedisCache(first, here._guard), (QUOTES[1], b"stored during")
            await here.publish_stored(cache, [("quote:E1", stored[1])], [stored])
            assert await near.get(1.0) == stored
            assert await cache.get("quote:E1") == stored[1]  # this process's fallback
            fallbacks = {"use": "bus"}
            assert metrics.registry.get_sample_value("quantdesk_redis_fallbacks_total", fallbacks)
            own_redis.start()  # the same port
            # Re-subscribed within the guard's retry interval (1 s): until then the other
            # process's messages are lost, as pub/sub loses them during any outage.  (Its
            # own messages reach it all along, so only another process's show this.)
            got = None
            async with asyncio.timeout(5):
                while got is None:
                    await there.publish(QUOTES[2], b"after")
                    got = await near.get(0.1)
            assert got == (QUOTES[2], b"after")
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_stored_value_is_here_at_once_and_elsewhere_only_once_stored(
    own_redis: RedisServer,
) -> None:
    url = own_redis.url(0)
    first, second, admin = _client(url), _client(url), _client(url)
    here, there = RedisBus(first, RedisGuard()), RedisBus(second, RedisGuard())
    near_cache, far_cache = RedisCache(first), RedisCache(second)
    key, item = "quote:SIM:E0", (QUOTES[0], b'{"last":"101"}')
    try:
        await near_cache.set(key, b'{"last":"100"}')
        async with here.subscribe(QUOTES) as near, there.subscribe(QUOTES) as far:
            # Redis holds every write command (SET and PUBLISH) and still answers reads:
            # what this process sees before Redis has applied the pipeline.
            await admin.client_pause(700, all=False)
            publishing = asyncio.create_task(
                here.publish_stored(near_cache, [(key, item[1])], [item])
            )
            await asyncio.sleep(0.2)
            assert not publishing.done()
            assert await near.get(0) == item  # handed over here
            assert await near_cache.get(key) == item[1]  # and read back here
            assert await near_cache.get_many([key, "quote:none"]) == [item[1], None]
            assert await far_cache.get(key) == b'{"last":"100"}'  # elsewhere: not yet stored,
            assert await far.get(0.1) is None  # so not yet announced either
            await admin.client_unpause()
            await publishing
            assert await far.get(2) == item
            assert await far_cache.get(key) == item[1]
            assert near_cache._unacknowledged == {}  # acknowledged: read from Redis again
            await there.publish(*MARKER)
            assert await _drain(near, MARKER) == [MARKER]  # the echo was dropped
    finally:
        for client in (first, second, admin):
            await client.aclose()
