"""Kite Connect's REST API through the providers' resilient client.

Requests carry ``X-Kite-Version: 3`` and ``Authorization: token <api_key>:<access_token>``
(headers, so the credentials are in no URL and no httpx log line).  Answers are the
envelope ``{"status": "success", "data": ...}``; errors are a 4xx/5xx with
``{"status": "error", "message", "error_type"}``: ``TokenException`` (403: the session
ended; we mark the stored token refused and ask for a login), ``InputException`` (400),
``NetworkException``/``DataException``/``GeneralException`` (5xx, retried).  429 is retried
with backoff (or ``Retry-After``), like every provider's.

Kite limits requests per second by endpoint class: quotes 1/s, historical candles 3/s,
everything else 10/s.  Each class has its own client (so its own limiter, circuit breaker
and cache): a burst of backfill requests waits for historical slots without delaying a
quote, and callers wait for a slot (bounded by the deadline) instead of being refused
with a 429 from Kite.  Nothing sleeps in a request handler beyond that bounded wait.

The limit is Kite's per API key, not per process: with Redis (``use_shared_limits``), each
request also takes a slot of a per-second counter shared by every process
(``qd:kite:rl:<class>:<epoch second>``, ``INCR`` + ``EXPIRE``), after the local limiter's.
While Redis is unreachable the local limiter alone applies (and Kite's 429s are retried).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from typing import Any, Final, TypeVar

import httpx
import limits
from redis.asyncio import Redis

from quantdesk.marketdata.providers.http_client import (
    OutcomeHook,
    ProviderHttpClient,
    loads_exact,
)
from quantdesk.marketdata.providers.kite.auth import KITE_API_URL, KITE_VERSION, TokenSource
from quantdesk.marketdata.providers.resilience import (
    Clock,
    RateLimitWaitError,
    ResiliencePolicy,
    Sleep,
    SlidingWindowRateLimiter,
)
from quantdesk.platform.exceptions import ServiceUnavailable, UpstreamError
from quantdesk.platform.redisguard import REDIS_OUTAGE_ERRORS, RedisGuard

T = TypeVar("T")
NAME: Final = "kite"


class Endpoint(StrEnum):
    QUOTE = "quote"
    HISTORICAL = "historical"
    OTHER = "other"


RATE_LIMITS: Final = {
    Endpoint.QUOTE: "1/second",
    Endpoint.HISTORICAL: "3/second",
    Endpoint.OTHER: "10/second",
}
KITE_POLICY: Final = ResiliencePolicy(deadline=15.0, read_timeout=10.0)


class KiteSessionMissing(ServiceUnavailable):
    """No valid access token: nobody has logged in today (or Kite refused the token)."""


def _missing() -> KiteSessionMissing:
    return KiteSessionMissing(
        "kite has no valid access token (sessions end at 06:00 IST); run `quantdesk kite login`",
        dependency="provider:kite",
    )


class KiteTokenRejected(UpstreamError):
    """HTTP 403 with ``error_type: TokenException``: Kite ended the session."""


class _KiteHttpClient(ProviderHttpClient):
    """Tells a refused session (403 TokenException) from other 403s (e.g. a plan without
    historical data, ``PermissionException``), which say nothing about the token."""

    def _raise_for_status(self, response: httpx.Response, not_found: str | None) -> None:
        if response.status_code == 403:
            try:
                payload = loads_exact(response.content)
            except ValueError:
                payload = None
            if isinstance(payload, dict) and payload.get("error_type") == "TokenException":
                raise KiteTokenRejected(
                    f"kite ended the session: {self.scrub(str(payload.get('message')))}",
                    provider=self.provider,
                    upstream_status=403,
                )
        super()._raise_for_status(response, not_found)


class SharedRateLimiter(SlidingWindowRateLimiter):
    """The local sliding window, then a slot of the per-second window every process shares."""

    def __init__(
        self,
        spec: str,
        redis: Redis,
        key: str,
        guard: RedisGuard | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(spec, clock, sleep)
        item = limits.parse_many(spec)[0]
        # Kite's limits are per second; a coarser spec is kept locally only.
        self._per_second = item.amount if item.get_expiry() == 1 else None
        self._redis = redis
        self._key = key
        self._guard = guard
        self._wall = wall
        self._sleep_shared = sleep

    async def acquire(self, max_wait: float) -> None:
        started = self._wall()
        await super().acquire(max_wait)
        if self._per_second is None or (self._guard is not None and self._guard.degraded):
            return
        while True:
            now = self._wall()
            second = math.floor(now)
            try:
                taken = await self._redis.incr(f"{self._key}:{second}")
                if taken == 1:
                    await self._redis.expire(f"{self._key}:{second}", 2)
            except REDIS_OUTAGE_ERRORS:
                return  # the local limiter alone, until Redis is back
            if taken <= self._per_second:
                return
            wait = second + 1 - now
            if now - started + wait > max_wait:
                raise RateLimitWaitError(wait)
            await self._sleep_shared(wait)


class KiteApi:
    """Authenticated GETs against Kite, one resilient client per endpoint class."""

    def __init__(
        self,
        api_key: str,
        tokens: TokenSource,
        *,
        base_url: str = KITE_API_URL,
        policy: ResiliencePolicy = KITE_POLICY,
        rate_limits: dict[Endpoint, str] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("kite needs an API key")
        self.api_key = api_key
        self.tokens = tokens
        self.base_url = base_url
        self.policy = policy
        self._limits = {**RATE_LIMITS, **(rate_limits or {})}
        self._clock = clock
        self._sleep = sleep
        self._transport = transport
        self._on_outcome = on_outcome
        self._clients: dict[Endpoint, ProviderHttpClient] = {}
        self._token: str | None = None
        self._shared: tuple[Redis, RedisGuard | None] | None = None

    def use_shared_limits(self, redis: Redis, guard: RedisGuard | None = None) -> None:
        """Count requests against Kite's limits across processes (see the module docstring)."""
        self._shared = (redis, guard)
        for endpoint, client in self._clients.items():
            client.limiter = self._limiter(endpoint)

    def _limiter(self, endpoint: Endpoint) -> SlidingWindowRateLimiter:
        spec = self._limits[endpoint]
        if self._shared is None:
            return SlidingWindowRateLimiter(spec, self._clock, self._sleep)
        redis, guard = self._shared
        return SharedRateLimiter(
            spec, redis, f"qd:kite:rl:{endpoint.value}", guard, self._clock, self._sleep
        )

    def client(self, endpoint: Endpoint) -> ProviderHttpClient:
        """The client of ``endpoint``'s class (built for the current token)."""
        if endpoint not in self._clients:
            headers = {"X-Kite-Version": KITE_VERSION}
            if self._token:
                headers["Authorization"] = f"token {self.api_key}:{self._token}"
            self._clients[endpoint] = _KiteHttpClient(
                NAME,
                self.base_url,
                replace(self.policy, rate_limit=self._limits[endpoint]),
                headers=headers,
                clock=self._clock,
                sleep=self._sleep,
                transport=self._transport,
                on_outcome=self._on_outcome,
            )
            self._clients[endpoint].limiter = self._limiter(endpoint)
        return self._clients[endpoint]

    async def _authenticated(self) -> str:
        token = await self.tokens.current()
        if not token:
            raise _missing()
        if token != self._token:
            # A new day's token: rebuild the clients, their headers hold the old one.
            old, self._clients, self._token = list(self._clients.values()), {}, token
            for client in old:
                await client.aclose()
        return token

    def unwrap(self, payload: Any) -> Any:
        """``data`` of a success envelope; anything else is Kite's fault."""
        if not isinstance(payload, dict) or payload.get("status") != "success":
            message = payload.get("message") if isinstance(payload, dict) else None
            raise UpstreamError(
                f"kite answered without success: {str(message)[:200]}", provider=NAME
            )
        if "data" not in payload:
            raise UpstreamError("kite answered success without data", provider=NAME)
        return payload["data"]

    async def get(
        self,
        endpoint: Endpoint,
        url: str,
        params: dict[str, str | int] | None = None,
        *,
        ttl: float,
        parse: Callable[[Any], T],
    ) -> T:
        """GET ``url`` and ``parse`` the envelope's ``data``."""
        token = await self._authenticated()
        client = self.client(endpoint)
        try:
            return await client.fetch_json(
                url, params, ttl=ttl, parse=lambda payload: parse(self.unwrap(payload))
            )
        except KiteTokenRejected:
            await self._refused(token)
            raise

    async def get_text(self, endpoint: Endpoint, url: str, *, ttl: float) -> str:
        """GET a CSV body (the instruments dump)."""
        token = await self._authenticated()
        try:
            return await self.client(endpoint).fetch_text(url, ttl=ttl, parse=lambda text: text)
        except KiteTokenRejected:
            await self._refused(token)
            raise

    async def _refused(self, token: str) -> None:
        await self.tokens.refused(token, "Kite refused the access token (TokenException)")
        raise _missing() from None

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients = {}
