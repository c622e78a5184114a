"""Named rate limits on the ``limits`` library: in-process, or in Redis shared by every process.

A *limit class* is a name (``login_ip``, ``api``, ``orders``, ...) with one or more windows in
the ``limits`` notation (``"10/second;200/minute"``); a hit is counted per class and key
(a user, an API key, a client address, an account's blind index).  The moving-window
strategy counts exactly, so a client cannot double its budget at a window boundary.  With
Redis the counters live there (``limits``' Lua scripts keep each hit atomic), so several
processes behind a load balancer share one budget.  While Redis is unreachable every
process counts in its own memory instead (``platform.redisguard``): budgets are per process
for the length of the outage, which ``quantdesk_redis_fallbacks_total{use="rate_limit"}``
shows, rather than every request failing.

Each decision carries the ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``
header values (IETF draft "RateLimit header fields for HTTP"), reported for the tightest
window, plus ``Retry-After`` when refused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from quantdesk.platform.metrics import Metrics
from quantdesk.platform.redisguard import RedisGuard
from quantdesk.settings import Settings

log = structlog.get_logger("quantdesk.ratelimit")

KEY_PREFIX = "qd:ratelimit"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    limit_class: str
    allowed: bool
    limit: int
    remaining: int
    reset_after_s: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_after_s))
        return headers


def limit_classes_from_settings(settings: Settings) -> dict[str, str]:
    return {
        "login_account": settings.rate_limit_login_account,
        "login_ip": settings.rate_limit_login_ip,
        "auth_ip": settings.rate_limit_auth_ip,
        "register_ip": settings.rate_limit_register_ip,
        "unauthenticated_ip": settings.rate_limit_unauthenticated_ip,
        "api": settings.rate_limit_api,
        "orders": settings.rate_limit_orders,
    }


class RateLimiter:
    def __init__(
        self,
        classes: Mapping[str, str],
        *,
        redis: Redis | None = None,
        metrics: Metrics | None = None,
        guard: RedisGuard | None = None,
    ) -> None:
        self._classes: dict[str, list[RateLimitItem]] = {
            name: parse_many(spec) for name, spec in classes.items()
        }
        self._shared: MovingWindowRateLimiter | None = None
        if redis is not None:
            # Reuse the app's connection pool: one set of sockets, closed with the app.
            storage: Storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                key_prefix=KEY_PREFIX,
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            )
            self._shared = MovingWindowRateLimiter(storage)
        self.shared = redis is not None
        # Without Redis the only counters; with it, the ones used while it is unreachable.
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._guard = guard or RedisGuard(metrics)
        self._metrics = metrics

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        redis: Redis | None = None,
        metrics: Metrics | None = None,
        guard: RedisGuard | None = None,
    ) -> RateLimiter:
        return cls(limit_classes_from_settings(settings), redis=redis, metrics=metrics, guard=guard)

    @property
    def classes(self) -> list[str]:
        return list(self._classes)

    async def _on_storage(self, work: Callable[[MovingWindowRateLimiter], Awaitable[_T]]) -> _T:
        """``work`` on the shared (Redis) counters, or on this process's while Redis is down."""
        shared = self._shared
        if shared is None:
            return await work(self._local)
        return await self._guard.call("rate_limit", lambda: work(shared), lambda: work(self._local))

    async def hit(self, limit_class: str, key: str) -> RateLimitDecision:
        """Count one request of ``key`` against ``limit_class``; refused when any window is full.

        Windows are tested before any is hit, so a request refused by the per-minute window
        does not also eat into the per-second one.
        """
        items = self._classes[limit_class]

        async def work(strategy: MovingWindowRateLimiter) -> RateLimitDecision:
            # One window (the API's common case): a moving-window hit counts nothing when
            # refused, so the test before it would be a second storage round trip for naught.
            for item in items if len(items) > 1 else ():
                if not await strategy.test(item, limit_class, key):
                    return await self._refused(strategy, limit_class, key, item)
            for item in items:
                if not await strategy.hit(item, limit_class, key):
                    # Lost a race with another process between test and hit.
                    return await self._refused(strategy, limit_class, key, item)
            return await self._decision(strategy, limit_class, key, items, allowed=True)

        return await self._on_storage(work)

    async def exhausted(self, limit_class: str, key: str) -> RateLimitDecision | None:
        """The refusal ``key`` would get now, without counting a hit; None while within budget.

        For limits that count failures (``unauthenticated_ip``): a client already over its
        budget is turned away before the expensive work whose failure would be counted.
        """

        async def work(strategy: MovingWindowRateLimiter) -> RateLimitDecision | None:
            for item in self._classes[limit_class]:
                if not await strategy.test(item, limit_class, key):
                    return await self._decision(strategy, limit_class, key, [item], allowed=False)
            return None

        return await self._on_storage(work)

    async def reset(self, limit_class: str, key: str) -> None:
        async def work(strategy: MovingWindowRateLimiter) -> None:
            for item in self._classes[limit_class]:
                await strategy.clear(item, limit_class, key)

        await self._on_storage(work)

    async def _refused(
        self, strategy: MovingWindowRateLimiter, limit_class: str, key: str, item: RateLimitItem
    ) -> RateLimitDecision:
        if self._metrics is not None:
            self._metrics.rate_limited.labels(limit_class).inc()
        return await self._decision(strategy, limit_class, key, [item], allowed=False)

    async def _decision(
        self,
        strategy: MovingWindowRateLimiter,
        limit_class: str,
        key: str,
        items: list[RateLimitItem],
        *,
        allowed: bool,
    ) -> RateLimitDecision:
        now = time.time()
        tightest: tuple[int, int, int] | None = None
        for item in items:
            stats = await strategy.get_window_stats(item, limit_class, key)
            reset_after = max(0, math.ceil(stats.reset_time - now))
            candidate = (stats.remaining, reset_after, item.amount)
            if tightest is None or candidate[0] < tightest[0]:
                tightest = candidate
        assert tightest is not None  # noqa: S101 - every class has at least one window
        remaining, reset_after, amount = tightest
        return RateLimitDecision(limit_class, allowed, amount, remaining, reset_after)
