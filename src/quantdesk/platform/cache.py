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


def _as_bytes(value: bytes | str | None) -> bytes | None:
    # The client is built without decode_responses, so str only appears if a caller changed it.
    return value.encode() if isinstance(value, str) else value
