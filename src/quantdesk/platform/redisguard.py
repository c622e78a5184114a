"""Redis is optional and may go away: how the parts that use it keep serving without it.

Every use of Redis in quantdesk is either a cache, a counter that can be kept per process
for a while, or fan-out of ephemeral messages, so an unreachable Redis is a degradation,
never a 500 (the decisions per use are in ``docs/operations.md``, "Redis outages").  One
``RedisGuard`` per app is the circuit breaker they share: the first failed call marks Redis
down for ``RETRY_AFTER_S``, during which every use goes straight to its per-process fallback
instead of waiting on a dead socket, and the first call after that tries Redis again (one
probe at a time: while it is in flight the others keep using the fallback, so a Redis that
hangs rather than refuses costs one slow call per second, not one per request).
Fallback operations are counted in ``quantdesk_redis_fallbacks_total{use}``; the outage and
the recovery are logged once each.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from limits.errors import StorageError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from quantdesk.platform.metrics import Metrics

log = structlog.get_logger("quantdesk.redis")

# What an unreachable or restarting Redis raises (OSError covers refused and reset sockets
# and asyncio's TimeoutError; BusyLoadingError, while Redis loads its data, is a
# ConnectionError).  Errors of a command itself (ResponseError) are bugs, not outages.
REDIS_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    StorageError,
)
# Long enough that a dead Redis costs one failed call per second per process, short enough
# that recovery is noticed within a second.
RETRY_AFTER_S = 1.0

_T = TypeVar("_T")


class RedisGuard:
    def __init__(
        self, metrics: Metrics | None = None, retry_after_s: float = RETRY_AFTER_S
    ) -> None:
        self._metrics = metrics
        self._retry_after_s = retry_after_s
        self._down_until = 0.0
        self._degraded = False
        self._probing = False
        self._on_recovery: list[Callable[[], None]] = []

    @property
    def degraded(self) -> bool:
        return self._degraded

    def on_recovery(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when Redis answers again after an outage (drop fallback state)."""
        self._on_recovery.append(callback)

    async def call(
        self,
        use: str,
        shared: Callable[[], Awaitable[_T]],
        fallback: Callable[[], Awaitable[_T]],
    ) -> _T:
        """``shared()`` against Redis; ``fallback()`` when Redis is down or fails now."""
        probe = self._degraded
        if time.monotonic() >= self._down_until and not (probe and self._probing):
            self._probing = probe
            try:
                result = await shared()
            except REDIS_OUTAGE_ERRORS as exc:
                self.failed(use, exc)
            else:
                self._recovered()
                return result
            finally:
                if probe:
                    self._probing = False
        if self._metrics is not None:
            self._metrics.redis_fallbacks.labels(use).inc()
        return await fallback()

    def failed(self, use: str, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self._retry_after_s
        if not self._degraded:
            self._degraded = True
            log.warning(
                "redis_unavailable",
                use=use,
                error=type(exc).__name__,
                fallback="per-process",
                retry_in_s=self._retry_after_s,
            )

    def _recovered(self) -> None:
        if self._degraded:
            self._degraded = False
            for callback in self._on_recovery:
                callback()
            log.info("redis_recovered")
