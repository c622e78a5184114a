"""What the app factory builds once and every request shares.

``AppContext`` is stored on ``app.state.ctx``; dependencies reach it through the request, so
there is no module-level state and tests can build as many apps as they like.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.bus import Bus, MemoryBus, RedisBus
from quantdesk.platform.cache import Cache, MemoryCache, RedisCache
from quantdesk.platform.db import Database
from quantdesk.platform.metrics import Metrics
from quantdesk.platform.redisguard import RedisGuard
from quantdesk.platform.tasks import cancel_and_wait
from quantdesk.platform.tls import redis_tls_options
from quantdesk.settings import Settings

BACKGROUND_GRACE_S = 2.0


@dataclass
class AppContext:
    settings: Settings
    database: Database
    metrics: Metrics
    cache: Cache
    bus: Bus
    redis: Redis | None = None
    # Shared by every use of ``redis``: while it is unreachable they all use their
    # per-process fallbacks (``platform.redisguard``).
    redis_guard: RedisGuard | None = None
    # Feature packages keep their per-app singletons here (providers, simulators, ...).
    extensions: dict[str, Any] = field(default_factory=dict)
    # Short work a request started and does not wait for (a cache entry refreshed ahead of
    # its expiry); cancelled when the app stops.
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` beside the request; it must log its own errors."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        database = Database(settings)
        metrics = Metrics()
        metrics.track_db_pool(database.pool_numbers)
        if settings.redis_url:
            redis = Redis.from_url(
                settings.redis_url,
                socket_connect_timeout=2,
                # Redis answers in well under a millisecond; a command that takes a second
                # means an outage, and the request falls back instead of waiting longer.
                socket_timeout=1,
                health_check_interval=30,
                # One immediate retry on a fresh connection (a pooled one may be stale after
                # Redis restarted), then fail fast to the fallbacks of ``RedisGuard``; the
                # client's default, ten retries with backoff, keeps a request waiting for
                # seconds on a dead server.
                retry=Retry(NoBackoff(), 1),
                # rediss:// URLs: the CA bundle and client certificate (platform/tls.py).
                **redis_tls_options(settings),
            )
            guard = RedisGuard(metrics)
            return cls(
                settings,
                database,
                metrics,
                RedisCache(redis, guard),
                RedisBus(redis, guard),
                redis,
                guard,
            )
        return cls(settings, database, metrics, MemoryCache(), MemoryBus())

    async def aclose(self) -> None:
        if self.background:  # a read under way finishes (cancelled, it would log an error)
            await asyncio.wait(set(self.background), timeout=BACKGROUND_GRACE_S)
        await cancel_and_wait(self.background)
        await self.bus.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.database.dispose()


def context_of(request: Request) -> AppContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, AppContext)  # noqa: S101 - set by create_app
    return ctx


async def get_context(request: Request) -> AppContext:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, which
    # costs more than everything else a small request does.
    return context_of(request)


Context = Annotated[AppContext, Depends(get_context)]


# Requests that change state: their unit of work is a writer from its first statement.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: committed after the endpoint returns, rolled back on error.

    A request that may write (an unsafe method) takes the write lock when its transaction
    begins (``BEGIN IMMEDIATE`` on SQLite), so it never has to upgrade a read transaction
    that a concurrent writer has overtaken.
    """
    immediate = request.method in WRITE_METHODS
    async with context_of(request).database.session(immediate=immediate) as session:
        yield session


# scope="function": commit before the response is sent, so a failed commit is never a 200.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
