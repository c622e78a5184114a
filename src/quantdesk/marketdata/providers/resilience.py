"""Resilience parts shared by the HTTP providers: policy, circuit breaker, rate limit, cache,
and the retry vocabulary (``RetryableError``, tenacity stop/wait strategies, ``Retry-After``).

Each provider owns one of each, so one provider's outage or quota never slows another.
Retrying itself is ``tenacity``'s; only the two strategies it lacks are here: stop before a
sleep would cross the call's deadline, and wait exactly what ``Retry-After`` asked for.

Why these are hand-written (the module-level rule is "prefer a library"):

* **Circuit breaker.**  ``aiobreaker`` has had no release since 2021; ``purgatory`` 3.x reads
  the wall clock (``time.time()``, so an NTP step can open or close a circuit), lets every
  concurrent caller through in half-open state instead of a single probe, and brings a
  unit-of-work/message-bus layer we do not need; ``pybreaker``/``circuitbreaker`` are
  synchronous at heart.  The state machine below is ~70 lines, monotonic, injectable-clock,
  and admits exactly one probe when half-open.
* **Rate limit.**  We reuse ``limits``' parser for the familiar ``"5/minute;500/day"``
  notation, but not its async ``MemoryStorage``: it schedules an expiry task when constructed
  (so it needs a running loop and outlives the client) and expires entries through worker
  threads.  A sliding-window log per provider is exact, needs no cleanup and can report how
  long to wait for the next slot, which is what "wait, bounded by the deadline" needs.
* **Cache.**  ``cachetools`` is not a dependency here; the TTL cache below is a dict in LRU
  order with monotonic expiry, which is all the providers need.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

import limits
from tenacity import RetryCallState
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from quantdesk.platform.exceptions import ServiceUnavailable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ResiliencePolicy:
    """How hard one provider is tried, and how gently.  All durations in seconds.

    ``deadline`` bounds a whole call: every attempt, backoff sleep and wait for a
    rate-limit slot.  A call never sleeps past it; it fails with ``ServiceUnavailable``.
    """

    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    deadline: float = 10.0
    max_attempts: int = 4
    backoff_initial: float = 0.25
    backoff_max: float = 4.0
    breaker_failure_threshold: int = 5
    breaker_cooldown: float = 30.0
    rate_limit: str = "30/second"
    quote_ttl: float = 2.0
    intraday_bars_ttl: float = 60.0
    daily_bars_ttl: float = 3600.0
    reference_ttl: float = 86_400.0
    cache_max_entries: int = 2048

    def __post_init__(self) -> None:
        positive = {
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "deadline": self.deadline,
            "breaker_cooldown": self.breaker_cooldown,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.breaker_failure_threshold < 1:
            raise ValueError("breaker_failure_threshold must be at least 1")
        if self.backoff_initial < 0 or self.backoff_max < self.backoff_initial:
            raise ValueError("need 0 <= backoff_initial <= backoff_max")
        limits.parse_many(self.rate_limit)  # fail at construction, not on the first request


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(ServiceUnavailable):
    """The provider's circuit is open: we answer at once instead of calling it."""


class CircuitBreaker:
    """Closed → open after ``failure_threshold`` consecutive failed calls → half-open after
    ``cooldown`` → one probe call: success closes, failure re-opens for another cooldown.

    Callers bracket each call with ``before_call()`` and exactly one of ``record_success()``,
    ``record_failure()`` or ``release()`` (the call ended without telling us anything about the
    provider, e.g. it was cancelled or our own rate limit refused it).
    """

    def __init__(
        self, name: str, failure_threshold: int, cooldown: float, clock: Clock = time.monotonic
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self._cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def before_call(self) -> None:
        state = self.state
        if state is CircuitState.CLOSED:
            return
        if state is CircuitState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return
        now = self._clock()
        opened_at = now if self._opened_at is None else self._opened_at
        # While the probe is in flight the others are told to come back in (at least) a second.
        remaining = max(self._cooldown - (now - opened_at), 1.0)
        raise CircuitOpen(
            f"market-data provider {self.name} is failing; its circuit is open",
            dependency=f"provider:{self.name}",
            retry_after=math.ceil(remaining),
        )

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._probe_in_flight or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._probe_in_flight = False

    def release(self) -> None:
        self._probe_in_flight = False


class RateLimitWaitError(Exception):
    """The next client-side slot opens after the caller's deadline."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"next request slot in {wait:.3f}s")
        self.wait = wait


class SlidingWindowRateLimiter:
    """Client-side request rate limit, e.g. ``"5/minute;500/day"`` (``limits`` notation).

    Keeps the timestamps of the requests in each window and, when a window is full, waits
    until its oldest request leaves it.  Single event loop: no awaits between the check and
    the booking, so no lock is needed.
    """

    def __init__(self, spec: str, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep):
        self._windows: list[tuple[int, float, deque[float]]] = [
            (item.amount, float(item.get_expiry()), deque()) for item in limits.parse_many(spec)
        ]
        self._clock = clock
        self._sleep = sleep

    def next_slot_in(self) -> float:
        """Seconds until a request may be sent (0 when one may be sent now)."""
        now = self._clock()
        wait = 0.0
        for amount, window, sent in self._windows:
            # The same expression decides "left the window" and the wait below: with
            # ``sent[0] <= now - window`` a request could round to "not left" with a wait of
            # 0, and the window then let one more in (found by the property test).
            while sent and sent[0] + window <= now:
                sent.popleft()
            if len(sent) >= amount:
                wait = max(wait, sent[0] + window - now)
        return wait

    async def acquire(self, max_wait: float) -> None:
        """Book a slot, sleeping for it if needed; ``RateLimitWaitError`` past ``max_wait``."""
        waited = 0.0
        while (wait := self.next_slot_in()) > 0:
            if waited + wait > max_wait:
                raise RateLimitWaitError(wait)
            await self._sleep(wait)
            waited += wait
        now = self._clock()
        for _, _, sent in self._windows:
            sent.append(now)


class RetryableError(Exception):
    """An attempt failed in a way that may pass on retry (raised inside the retry loop)."""

    def __init__(
        self, reason: str, *, retry_after: float | None = None, incomplete: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.incomplete = incomplete
        self.attempts = 1


class StopBeforeDeadline(stop_base):
    """Stop retrying when the next backoff sleep would end past the call's deadline."""

    def __init__(self, deadline: float, clock: Clock) -> None:
        self._deadline = deadline
        self._clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._clock() + retry_state.upcoming_sleep >= self._deadline


class BackoffHonouringRetryAfter(wait_base):
    """The provider's ``Retry-After`` when it sent one, else jittered exponential backoff."""

    def __init__(self, backoff: wait_base) -> None:
        self._backoff = backoff

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        if isinstance(failure, RetryableError) and failure.retry_after is not None:
            return max(failure.retry_after, 0.0)
        return self._backoff(retry_state)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


_MISSING: Final = object()


class TTLCache:
    """A bounded mapping whose entries expire ``ttl`` seconds after being stored."""

    def __init__(self, max_entries: int, clock: Clock = time.monotonic) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, object]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def get(self, key: Hashable) -> object:
        """The cached value, or ``MISSING`` (compare with ``is``)."""
        entry = self._entries.get(key)
        if entry is None:
            return _MISSING
        expires_at, value = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return _MISSING
        self._entries.move_to_end(key)
        return value

    def put(self, key: Hashable, value: object, ttl: float) -> None:
        if ttl <= 0 or self._max <= 0:
            return
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


MISSING: Final = _MISSING
