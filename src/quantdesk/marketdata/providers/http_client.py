"""One provider's HTTP client: timeouts, retries, circuit breaker, rate limit and cache.

Every HTTP provider sends its requests through a ``ProviderHttpClient``:

1. a fresh-enough cached answer is returned without a request (``TTLCache``);
2. an open circuit answers at once with ``CircuitOpen`` (a ``ServiceUnavailable``);
3. each attempt first books a client-side rate-limit slot (waiting for it, never past the
   deadline), then sends with connect/read timeouts clipped to what is left of the deadline;
4. 429, 5xx, timeouts, transport errors and payloads a provider check flags as throttling
   (Alpha Vantage's HTTP 200 with ``"Note"``) are retried by ``tenacity`` with full-jitter
   exponential backoff — or exactly the ``Retry-After`` the provider asked for — and the
   retries stop early rather than sleep past the deadline;
5. JSON is parsed with ``parse_float=Decimal`` so prices keep the exact digits the provider
   printed (a binary float never enters the price path).

API keys never reach a log line: header keys are not logged by httpx, and query-string keys
(Alpha Vantage only supports ``apikey=``) are added by a transport *below* httpx's request
logging, so httpx logs, our cache keys and our error messages only see the URL without them.
Provider messages we quote in errors are scrubbed of the key as well.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple, NoReturn, TypeVar, cast

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from quantdesk.marketdata.providers.resilience import (
    MISSING,
    BackoffHonouringRetryAfter,
    CircuitBreaker,
    Clock,
    RateLimitWaitError,
    ResiliencePolicy,
    RetryableError,
    Sleep,
    SlidingWindowRateLimiter,
    StopBeforeDeadline,
    TTLCache,
    parse_retry_after,
)
from quantdesk.platform.exceptions import (
    NotFound,
    QuantdeskError,
    ServiceUnavailable,
    UpstreamError,
)
from quantdesk.platform.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")
QueryParams = Mapping[str, str | int]
PayloadCheck = Callable[[Any], None]

# Bodies above this are parsed in a worker thread: a multi-megabyte symbol directory would
# otherwise stall the event loop for tens of milliseconds.
_OFFLOAD_BYTES = 512 * 1024
_MESSAGE_CHARS = 200


class ProviderRateLimitedError(RetryableError):
    """A payload check saw a rate-limit answer sent with HTTP 200 (treated as a 429)."""


class MalformedResponseError(UpstreamError):
    """The body could not be decoded or lacks the shape the provider documents."""


class _SecretQueryTransport(httpx.AsyncBaseTransport):
    """Adds secret query parameters (API keys) below httpx's request logging."""

    def __init__(self, inner: httpx.AsyncBaseTransport, params: Mapping[str, str]) -> None:
        self._inner = inner
        self._params = dict(params)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        outgoing = httpx.Request(
            request.method,
            request.url.copy_merge_params(self._params),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return await self._inner.handle_async_request(outgoing)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"non-finite number {name} in JSON")


def _as_is(payload: Any) -> Any:
    return payload


def loads_exact(content: bytes | str) -> Any:
    """JSON with every non-integer number as the ``Decimal`` of its printed digits."""
    return json.loads(content, parse_float=Decimal, parse_constant=_reject_constant)


OutcomeHook = Callable[[str, str], None]
"""Told ``(provider, outcome)`` once per request: ``ok``, ``cached``, ``circuit_open``,
``failed`` (retries exhausted or a malformed answer), ``timeout``, ``budget`` (our own rate
limit), ``refused`` (the provider answered, but not usably, e.g. 404)."""


class ProviderHttpClient:
    """The resilient HTTP client of one provider; see the module docstring."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        policy: ResiliencePolicy,
        *,
        headers: Mapping[str, str] | None = None,
        secret_params: Mapping[str, str] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        self.provider = provider
        self.policy = policy
        self._on_outcome = on_outcome
        self.dependency = f"provider:{provider}"
        self.breaker = CircuitBreaker(
            provider, policy.breaker_failure_threshold, policy.breaker_cooldown, clock
        )
        self.limiter = SlidingWindowRateLimiter(policy.rate_limit, clock, sleep)
        self.cache = TTLCache(policy.cache_max_entries, clock)
        self._clock = clock
        self._sleep = sleep
        self._secrets = [
            s for s in [*(headers or {}).values(), *(secret_params or {}).values()] if s
        ]
        inner = transport or httpx.AsyncHTTPTransport(retries=0)
        if secret_params:
            inner = _SecretQueryTransport(inner, secret_params)
        self.base_url = httpx.URL(base_url)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Accept": "application/json", **(headers or {})},
            transport=inner,
            timeout=httpx.Timeout(
                connect=policy.connect_timeout,
                read=policy.read_timeout,
                write=policy.read_timeout,
                pool=policy.connect_timeout,
            ),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def is_same_origin(self, url: str) -> bool:
        """Whether ``url`` (e.g. a pagination link) points at our base URL's host."""
        other = httpx.URL(url)
        return (other.scheme, other.host, other.port) == (
            self.base_url.scheme,
            self.base_url.host,
            self.base_url.port,
        )

    async def get_json(
        self,
        url: str,
        params: QueryParams | None = None,
        *,
        ttl: float,
        check: PayloadCheck | None = None,
        not_found: str | None = None,
    ) -> Any:
        """GET ``url`` (relative to the base URL, or absolute) and decode its JSON.

        ``check`` sees the decoded payload and may raise ``ProviderRateLimitedError``
        (retried) or a domain error.  With ``not_found`` set, HTTP 404 becomes
        ``NotFound(not_found)``.
        """
        return await self.fetch_json(
            url, params, ttl=ttl, parse=_as_is, check=check, not_found=not_found
        )

    async def fetch_json(
        self,
        url: str,
        params: QueryParams | None = None,
        *,
        ttl: float,
        parse: Callable[[Any], T],
        check: PayloadCheck | None = None,
        not_found: str | None = None,
    ) -> T:
        """``get_json``, then ``parse`` the payload into what the provider returns.

        Parsing runs inside the call, so a payload of the wrong shape (``parse`` raising
        ``malformed(...)``) counts against the breaker and is never cached, and the cache
        holds parsed results.
        """

        async def decode(response: httpx.Response) -> T:
            self._raise_for_status(response, not_found)
            payload = await self._parse_json(response.content)
            if check is not None:
                check(payload)
            return parse(payload)

        return await self._fetch(url, params or {}, ttl, decode)

    async def fetch_text(
        self,
        url: str,
        params: QueryParams | None = None,
        *,
        ttl: float,
        parse: Callable[[str], T],
    ) -> T:
        """GET ``url`` and ``parse`` its body as text (e.g. a CSV listing)."""

        async def decode(response: httpx.Response) -> T:
            self._raise_for_status(response, None)
            try:
                text = response.content.decode(response.encoding or "utf-8")
            except (LookupError, UnicodeDecodeError):
                raise self.malformed("sent a body that is not text") from None
            return parse(text)

        return await self._fetch(url, params or {}, ttl, decode)

    def malformed(self, detail: str) -> MalformedResponseError:
        """The error for a payload whose shape is not what the provider documents."""
        return MalformedResponseError(f"{self.provider}: {detail}", provider=self.provider)

    def scrub(self, text: str) -> str:
        """``text`` with our API keys blanked out, shortened for an error message."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:_MESSAGE_CHARS]

    async def _fetch(
        self,
        url: str,
        params: QueryParams,
        ttl: float,
        decode: Callable[[httpx.Response], Awaitable[T]],
    ) -> T:
        key = (url, tuple(sorted((name, str(value)) for name, value in params.items())))
        cached = self.cache.get(key)
        if cached is not MISSING:
            self._record("cached")
            return cast(T, cached)
        try:
            self.breaker.before_call()
        except QuantdeskError:
            self._record("circuit_open")
            raise
        try:
            result = await self._attempts(url, params, decode)
        except RetryableError as exc:
            self.breaker.record_failure()
            self._record("failed")
            raise self._exhausted(exc) from None
        except MalformedResponseError:
            self.breaker.record_failure()
            self._record("failed")
            raise
        except TimeoutError:
            self.breaker.record_failure()
            self._record("timeout")
            raise ServiceUnavailable(
                f"market-data provider {self.provider} did not answer within "
                f"{self.policy.deadline:g}s",
                dependency=self.dependency,
            ) from None
        except RateLimitWaitError as exc:
            self.breaker.release()  # our own budget ran out; the provider is not at fault
            self._record("budget")
            raise ServiceUnavailable(
                f"request budget for provider {self.provider} is used up "
                f"(limit {self.policy.rate_limit})",
                dependency=self.dependency,
                retry_after=max(math.ceil(exc.wait), 1),
            ) from None
        except QuantdeskError:
            self.breaker.record_success()  # it answered; the answer was just not usable
            self._record("refused")
            raise
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record_success()
        self._record("ok")
        self.cache.put(key, result, ttl)
        return result

    def _record(self, outcome: str) -> None:
        if self._on_outcome is not None:
            self._on_outcome(self.provider, outcome)

    async def _attempts(
        self,
        url: str,
        params: QueryParams,
        decode: Callable[[httpx.Response], Awaitable[T]],
    ) -> T:
        policy = self.policy
        deadline = self._clock() + policy.deadline
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts)
            | StopBeforeDeadline(deadline, self._clock),
            wait=BackoffHonouringRetryAfter(
                wait_random_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max)
            ),
            retry=retry_if_exception_type(RetryableError),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            # A real-time safety net: the injected clock bounds everything above, but a
            # server dripping bytes slower than the read timeout could otherwise outlast it.
            async with asyncio.timeout(policy.deadline):
                async for attempt in retrying:
                    with attempt:
                        await self.limiter.acquire(max_wait=deadline - self._clock())
                        response = await self._send(url, params, deadline)
                        return await decode(response)
        except RetryableError as exc:
            exc.attempts = int(retrying.statistics.get("attempt_number", 1))
            raise
        raise RuntimeError("retry loop ended without an outcome")  # pragma: no cover

    async def _send(self, url: str, params: QueryParams, deadline: float) -> httpx.Response:
        remaining = max(deadline - self._clock(), 0.001)
        connect = min(self.policy.connect_timeout, remaining)
        read = min(self.policy.read_timeout, remaining)
        timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
        try:
            response = await self._http.get(url, params=dict(params) or None, timeout=timeout)
        except httpx.TimeoutException:
            raise RetryableError("timed out") from None
        except httpx.RemoteProtocolError:
            raise RetryableError("broke off the response", incomplete=True) from None
        except httpx.TransportError as exc:
            raise RetryableError(f"unreachable ({type(exc).__name__})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetryableError(
                f"answered HTTP {status}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    def _raise_for_status(self, response: httpx.Response, not_found: str | None) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        message = self._provider_message(response)
        if status == 404 and not_found is not None:
            raise NotFound(not_found, provider=self.provider)
        if status in (401, 403):
            raise UpstreamError(
                f"{self.provider} refused the request (HTTP {status}: {message}); "
                "check the API key and the plan's entitlements",
                provider=self.provider,
                upstream_status=status,
            )
        raise UpstreamError(
            f"{self.provider} answered HTTP {status}: {message}",
            provider=self.provider,
            upstream_status=status,
        )

    def _provider_message(self, response: httpx.Response) -> str:
        text = response.text
        try:
            payload = json.loads(text)
        except ValueError:
            return self.scrub(text.strip()) or response.reason_phrase
        if isinstance(payload, dict):
            for field in ("error", "message", "Error Message", "Information", "Note"):
                if isinstance(payload.get(field), str):
                    return self.scrub(payload[field])
        return self.scrub(text.strip())

    async def _parse_json(self, content: bytes) -> Any:
        try:
            if len(content) > _OFFLOAD_BYTES:
                return await asyncio.to_thread(loads_exact, content)
            return loads_exact(content)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
            raise self.malformed(f"sent a body that is not valid JSON ({exc})") from None

    def _exhausted(self, failure: RetryableError) -> QuantdeskError:
        attempts = f"after {failure.attempts} attempt{'s' if failure.attempts != 1 else ''}"
        if failure.incomplete:
            return UpstreamError(
                f"{self.provider} sent an incomplete response ({failure.reason}) {attempts}",
                provider=self.provider,
            )
        retry_after = None if failure.retry_after is None else math.ceil(failure.retry_after)
        return ServiceUnavailable(
            f"market-data provider {self.provider} is unavailable: {failure.reason} {attempts}",
            dependency=self.dependency,
            retry_after=retry_after,
        )

    def _log_retry(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        log.warning(
            "provider_request_retry",
            provider=self.provider,
            attempt=retry_state.attempt_number,
            reason=str(failure),
            retry_in_s=round(retry_state.upcoming_sleep, 3),
        )


class Credentials(NamedTuple):
    """How a provider wants its API key sent: as headers or as (log-masked) query params."""

    headers: Mapping[str, str] | None = None
    secret_params: Mapping[str, str] | None = None


class HttpProvider:
    """What every HTTP provider shares: construction of its resilient client, and closing it.

    Subclasses set ``name``, ``default_base_url`` and ``default_policy`` and say in
    ``credentials`` how the API key travels; the constructor's other arguments exist for
    tests and proxies (a local server's URL, a fake clock, a transport).
    """

    name: str
    default_base_url: ClassVar[str]
    default_policy: ClassVar[ResiliencePolicy]

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        policy: ResiliencePolicy | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        if not api_key:
            raise ValueError(f"{self.name} needs an API key")
        credentials = self.credentials(api_key)
        self._http = ProviderHttpClient(
            self.name,
            base_url or self.default_base_url,
            policy or self.default_policy,
            headers=credentials.headers,
            secret_params=credentials.secret_params,
            clock=clock,
            sleep=sleep,
            transport=transport,
            on_outcome=on_outcome,
        )

    @staticmethod
    def credentials(api_key: str) -> Credentials:
        raise NotImplementedError

    @property
    def http(self) -> ProviderHttpClient:
        return self._http

    async def aclose(self) -> None:
        await self._http.aclose()
