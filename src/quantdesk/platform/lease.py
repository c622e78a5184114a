"""Leadership among app processes: at most one holds a named lease at a time.

Work that must run exactly once across processes (the order matcher) asks
``lease_for(ctx, name).hold()`` before each round; ``hold`` answers whether this process is
the leader now, taking the lease when it is free.

* PostgreSQL: a session-level advisory lock on a connection kept for the purpose.  When the
  holder dies its connection closes and the server releases the lock at once, so another
  process takes over on its next ``hold`` (within a second for the matcher).  No Redis
  needed, and no clock: a paused process cannot lose the lease while it still runs.
* SQLite with Redis: a Redis key with a short expiry, renewed by its holder
  (compare-and-expire, atomically); a dead holder's lease lapses after ``ttl_s``.
* SQLite alone: one process serves (``serve`` refuses more workers without Redis), so the
  lease is always held.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Protocol

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from quantdesk.platform.context import AppContext
from quantdesk.platform.logging import get_logger

log = get_logger("quantdesk.platform.lease")

_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end"
)


class Lease(Protocol):
    async def hold(self) -> bool: ...
    async def release(self) -> None: ...


class LocalLease:
    async def hold(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class RedisLease:
    def __init__(self, redis: Redis, name: str, ttl_s: float = 3.0) -> None:
        self._redis = redis
        self._key = f"qd:lease:{name}"
        self._token = secrets.token_hex(16)
        self._ttl_ms = int(ttl_s * 1000)

    async def hold(self) -> bool:
        try:
            if await self._redis.eval(_RENEW, 1, self._key, self._token, self._ttl_ms):
                return True
            return bool(await self._redis.set(self._key, self._token, nx=True, px=self._ttl_ms))
        except Exception as exc:  # an outage: nobody can be sure to lead, so nobody does
            log.warning("lease unavailable", lease=self._key, error=str(exc))
            return False

    async def release(self) -> None:
        with contextlib.suppress(Exception):
            await self._redis.eval(_RELEASE, 1, self._key, self._token)


class AdvisoryLease:
    def __init__(self, ctx: AppContext, name: str) -> None:
        self._ctx = ctx
        self._name = name
        self._connection: AsyncConnection | None = None

    async def hold(self) -> bool:
        try:
            if self._connection is not None:
                await self._connection.execute(text("SELECT 1"))
                await self._connection.commit()  # never idle in a transaction
                return True
            connection = await self._ctx.database.engine.connect()
            taken = await connection.scalar(
                text("SELECT pg_try_advisory_lock(hashtextextended(:name, 0))"),
                {"name": f"lease:{self._name}"},
            )
            await connection.commit()
            if taken:
                self._connection = connection
                return True
            await connection.close()
            return False
        except Exception as exc:
            log.warning("lease lost", lease=self._name, error=str(exc))
            await self._drop()
            return False

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.execute(
                    text("SELECT pg_advisory_unlock(hashtextextended(:name, 0))"),
                    {"name": f"lease:{self._name}"},
                )
                await connection.commit()
            with contextlib.suppress(Exception):
                await connection.close()


def lease_for(ctx: AppContext, name: str) -> Lease:
    if ctx.database.dialect == "postgresql":
        return AdvisoryLease(ctx, name)
    if ctx.redis is not None:
        return RedisLease(ctx.redis, name)
    return LocalLease()
