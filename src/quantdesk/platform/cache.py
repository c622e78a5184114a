"""A small key/value cache with TTLs: in-process, or Redis when ``REDIS_URL`` is set.

With several processes behind a load balancer only the Redis implementation gives every
process the same view (quotes, revoked sessions); the in-process one is for a single node,
and is what the Redis one falls back to while Redis is unreachable.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from quantdesk.platform.redisguard import RedisGuard


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...
    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None: ...
    async def set_many(
        self, items: Iterable[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def incr(self, key: str, ttl_s: float) -> int:
        """Add one to the counter at ``key`` and return the new value, atomically.

        The counter starts at 0 and expires ``ttl_s`` after its first increment.
        """
        ...


class MemoryCache:
    """Bounded LRU with per-key expiry; monotonic clock, so wall-clock jumps don't matter."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._data: OrderedDict[str, tuple[float | None, bytes]] = OrderedDict()
        self._max = max_entries

    async def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires is not None and expires <= time.monotonic():
            self._data.pop(key, None)
            return None
        self._data.move_to_end(key)
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        expires = time.monotonic() + ttl_s if ttl_s is not None else None
        self._data[key] = (expires, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    async def set_many(
        self, items: Iterable[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        for key, value in items:
            await self.set(key, value, ttl_s)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    async def incr(self, key: str, ttl_s: float) -> int:
        # Read and write with no await in between: atomic on the event loop.
        now = time.monotonic()
        entry = self._data.get(key)
        if entry is None or (entry[0] is not None and entry[0] <= now):
            expires: float | None = now + ttl_s
            count = 1
        else:
            expires, count = entry[0], int(entry[1]) + 1
        self._data[key] = (expires, str(count).encode())
        self._data.move_to_end(key)
        return count


# INCR and, on the first increment only, the expiry, in one atomic step: a counter never
# outlives its window, and a crash between the two commands cannot leave one without a TTL.
_INCR_WITH_TTL = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class RedisCache:
    """The cache in Redis, shared by every process; per process while Redis is unreachable.

    Everything cached is either derived from the database (which stays the truth) or a
    counter that may be kept per process for the length of an outage, so a Redis outage
    degrades to ``MemoryCache`` (``platform.redisguard``) instead of failing the request.
    What was cached in memory meanwhile is dropped when Redis answers again.

    Writes that went out with :meth:`writing` are read back by this process while Redis
    has not yet acknowledged them: the bus hands a quote to this process's subscribers as
    soon as its write is on its way (``RedisBus.publish_stored``), and a subscriber that
    then reads the cache must find that quote, not the one before it.
    """

    def __init__(
        self, redis: Redis, guard: RedisGuard | None = None, prefix: str = "qd:cache:"
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._guard = guard or RedisGuard()
        self._local = MemoryCache()
        self._guard.on_recovery(self._local.clear)
        # key -> the value this process is writing, until Redis (or the fallback) has it.
        self._unacknowledged: dict[str, bytes] = {}

    @property
    def client(self) -> Redis:
        return self._redis

    async def get(self, key: str) -> bytes | None:
        before = self._unacknowledged.get(key)

        async def shared() -> bytes | None:
            return _as_bytes(await self._redis.get(self._prefix + key))

        found = await self._guard.call("cache", shared, lambda: self._local.get(key))
        return self._own(key, before, found)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        before = [self._unacknowledged.get(key) for key in keys]

        async def shared() -> list[bytes | None]:
            values = await self._redis.mget([self._prefix + key for key in keys])
            return [_as_bytes(value) for value in values]

        found = await self._guard.call("cache", shared, lambda: self._local.get_many(keys))
        return [self._own(*args) for args in zip(keys, before, found, strict=True)]

    def _own(self, key: str, before: bytes | None, found: bytes | None) -> bytes | None:
        # A write of this process in flight at any moment of the read is the newest value
        # this process knows: Redis may have answered the read before applying it (another
        # connection), even once the write is acknowledged.
        current = self._unacknowledged.get(key)
        if current is not None:
            return current
        return found if before is None else before

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self._unacknowledged.pop(key, None)  # this write is newer

        async def shared() -> None:
            px = int(ttl_s * 1000) if ttl_s is not None else None
            await self._redis.set(self._prefix + key, value, px=px)

        await self._guard.call("cache", shared, lambda: self._local.set(key, value, ttl_s))

    async def set_many(
        self, items: Iterable[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        pairs = list(items)
        for key, _ in pairs:
            self._unacknowledged.pop(key, None)

        async def shared() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                self.queue_sets(pipe, pairs, ttl_s)
                await pipe.execute()

        await self._guard.call("cache", shared, lambda: self.set_locally(pairs, ttl_s))

    @contextmanager
    def writing(self, pairs: Sequence[tuple[str, bytes]]) -> Iterator[None]:
        """While ``pairs`` are on their way (queued with :meth:`queue_sets` on a pipeline of
        this client, or stored by :meth:`set_locally`), this process reads them back."""
        for key, value in pairs:
            self._unacknowledged[key] = value
        try:
            yield
        finally:
            for key, value in pairs:
                if self._unacknowledged.get(key) is value:  # not overtaken by a later write
                    del self._unacknowledged[key]

    def queue_sets(
        self, pipe: Pipeline, pairs: Iterable[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        px = int(ttl_s * 1000) if ttl_s is not None else None
        for key, value in pairs:
            pipe.set(self._prefix + key, value, px=px)

    async def set_locally(
        self, pairs: Iterable[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        """The outage fallback of a write: this process's cache until Redis is back."""
        await self._local.set_many(pairs, ttl_s)

    async def delete(self, key: str) -> None:
        self._unacknowledged.pop(key, None)

        async def shared() -> None:
            await self._redis.delete(self._prefix + key)

        await self._guard.call("cache", shared, lambda: self._local.delete(key))

    async def incr(self, key: str, ttl_s: float) -> int:
        async def shared() -> int:
            result = await self._redis.eval(
                _INCR_WITH_TTL, 1, self._prefix + key, max(1, int(ttl_s * 1000))
            )
            return int(result)

        return await self._guard.call("cache", shared, lambda: self._local.incr(key, ttl_s))


def _as_bytes(value: bytes | str | None) -> bytes | None:
    # The client is built without decode_responses, so str only appears if a caller changed it.
    return value.encode() if isinstance(value, str) else value
