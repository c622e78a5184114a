"""A small key/value cache with TTLs: in-process, or Redis when ``REDIS_URL`` is set.

With several processes behind a load balancer only the Redis implementation gives every
process the same view (quotes, revoked sessions); the in-process one is for a single node.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Protocol

from redis.asyncio import Redis


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
    def __init__(self, redis: Redis, prefix: str = "qd:cache:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        return _as_bytes(await self._redis.get(self._prefix + key))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        values = await self._redis.mget([self._prefix + key for key in keys])
        return [_as_bytes(value) for value in values]

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        px = int(ttl_s * 1000) if ttl_s is not None else None
        await self._redis.set(self._prefix + key, value, px=px)

    async def set_many(
        self, items: Iterable[tuple[str, bytes]], ttl_s: float | None = None
    ) -> None:
        px = int(ttl_s * 1000) if ttl_s is not None else None
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, value in items:
                pipe.set(self._prefix + key, value, px=px)
            await pipe.execute()

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def incr(self, key: str, ttl_s: float) -> int:
        result = await self._redis.eval(
            _INCR_WITH_TTL, 1, self._prefix + key, max(1, int(ttl_s * 1000))
        )
        return int(result)


def _as_bytes(value: bytes | str | None) -> bytes | None:
    # The client is built without decode_responses, so str only appears if a caller changed it.
    return value.encode() if isinstance(value, str) else value
