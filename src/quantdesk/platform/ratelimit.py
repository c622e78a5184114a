"""Named rate limits on the ``limits`` library: in-process, or in Redis shared by every process.

A *limit class* is a name (``login_ip``, ``api``, ``orders``, ...) with one or more windows in
the ``limits`` notation (``"10/second;200/minute"``); a hit is counted per class and key
(a user, an API key, a client address, an account's blind index).  The moving-window
strategy counts exactly, so a client cannot double its budget at a window boundary.  With
Redis the counters live there (a Lua script keeps each decision atomic), so several
processes behind a load balancer share one budget.  While Redis is unreachable every
process counts in its own memory instead (``platform.redisguard``): budgets are per process
for the length of the outage, which ``quantdesk_redis_fallbacks_total{use="rate_limit"}``
shows, rather than every request failing.

Each decision carries the ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``
header values (IETF draft "RateLimit header fields for HTTP"), reported for the tightest
window, plus ``Retry-After`` when refused.

The per-process counters are our own ``LocalWindows`` rather than ``limits``'
``MemoryStorage``; its docstring says why.  The Redis counters are our own ``_HIT`` script
rather than ``limits``' ``RedisStorage``: the same moving window (a list of hit times per
window, newest first), but one round trip per decision, where ``limits`` takes one for each
window's test, each window's hit and each window's statistics (six for the orders class's
two windows, on every order placed).  ``limits`` still parses the notation.

``hit_many`` decides several classes together, in that one round trip: an order placement's
``api`` and ``orders`` hits and the test of its client address's failure budget.  It is all
or nothing: a request refused by any window counts in none, as a refusal by one window of a
class already counted in none of the class's others.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog
from limits import RateLimitItem, parse_many
from redis.asyncio import Redis

from quantdesk.platform.metrics import Metrics
from quantdesk.platform.redisguard import RedisGuard
from quantdesk.settings import Settings

log = structlog.get_logger("quantdesk.ratelimit")

KEY_PREFIX = "qd:ratelimit"

_T = TypeVar("_T")

# KEYS: one list of hit times per window, newest first.  ARGV: now, then for each window its
# amount, its length in seconds and "1" to count the hit in it or "0" only to test it.
# Refused (counting nothing anywhere) when any window is full: {0, window, reset}; else the
# hit goes into every counted window: {1, remaining, reset, ...} for those, in order.  A
# reset is when the window's oldest counted hit leaves it; times travel as strings (Lua
# numbers come back to the client truncated to integers).
_HIT = """
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local amount, expiry = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local last = redis.call('lindex', KEYS[i], amount - 1)
  if last and tonumber(last) > now - expiry then
    return {0, i, tostring(tonumber(last) + expiry - now)}
  end
end
local out = {1}
for i = 1, #KEYS do
  if ARGV[3 * i + 1] == '1' then
    local amount, expiry = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
    redis.call('lpush', KEYS[i], ARGV[1])
    redis.call('ltrim', KEYS[i], 0, amount - 1)
    redis.call('expire', KEYS[i], math.ceil(expiry))
    local hits, count, oldest = redis.call('lrange', KEYS[i], 0, amount - 1), 0, now
    for j = 1, #hits do
      local at = tonumber(hits[j])
      if at <= now - expiry then break end
      count, oldest = count + 1, at
    end
    out[#out + 1] = amount - count
    out[#out + 1] = tostring(oldest + expiry - now)
  end
end
return out
"""

# One class's windows for one key, as a decision needs them: (class, key, its windows).
KeyWindows = tuple[str, str, Sequence[RateLimitItem]]


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


# Keys whose every window has emptied are dropped at most this often (memory stays bounded
# by the keys active within their longest window).
SWEEP_INTERVAL_S = 5.0


class LocalWindows:
    """Exact moving windows in this process's memory: without Redis the only counters, with
    Redis the ones used while it is unreachable.

    Hand-written instead of ``limits``' async ``MemoryStorage`` (the Redis path keeps the
    library): after every hit that storage starts a sweep over every key it holds, and the
    sweep sends each key through a worker thread (``asyncio.to_thread``).  With a few hundred
    active users the sweep never ends, and its thread hand-offs cost each authenticated
    request more than the rest of its rate-limit check (docs/benchmarks.md, "authenticated
    reads").  Here a key's expired hits are dropped when the key is next counted, and keys
    idle for longer than their longest window are swept inline, at most every
    ``SWEEP_INTERVAL_S``; nothing leaves the event loop, and no ``await`` splits a decision,
    so a hit is atomic.

    The rule is ``limits``' moving window: a hit is allowed while fewer than ``amount`` hits
    fall within the last ``expiry`` seconds, in every window of the class, and a refused hit
    counts in none.  A decision reports the window with the least budget left (the first of
    equals), its reset when its oldest counted hit leaves it.  The clock is monotonic, so a
    wall-clock jump neither frees nor spends budget.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # (class, key) -> the hits inside each window of the class, oldest first.
        self._hits: dict[tuple[str, str], tuple[deque[float], ...]] = {}
        self._longest: dict[tuple[str, str], int] = {}
        self._next_sweep = clock() + SWEEP_INTERVAL_S

    def hit(self, limit_class: str, key: str, items: Sequence[RateLimitItem]) -> RateLimitDecision:
        """Count one hit of ``key``, or refuse it (counting nothing) when a window is full."""
        return self.hit_many([(limit_class, key, items)])[0]

    def exhausted(
        self, limit_class: str, key: str, items: Sequence[RateLimitItem]
    ) -> RateLimitDecision | None:
        """The refusal a hit would get now, counting nothing; None while within budget."""
        decisions = self.hit_many([], tested=[(limit_class, key, items)])
        return decisions[0] if decisions else None

    def hit_many(
        self, counted: Sequence[KeyWindows], *, tested: Sequence[KeyWindows] = ()
    ) -> list[RateLimitDecision]:
        """One hit in every class of ``counted``, provided no window of ``tested`` or
        ``counted`` is full (``RateLimiter.hit_many`` says what comes back)."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        found = [(entry, self._windows(*entry, now)) for entry in (*tested, *counted)]
        for (limit_class, _, items), windows in found:
            for item, hits in zip(items, windows, strict=True):
                if len(hits) >= item.amount:
                    return [_decide(limit_class, [item], [hits], now, allowed=False)]
        decisions = []
        for (limit_class, _, items), windows in found[len(tested) :]:
            for hits in windows:
                hits.append(now)
            decisions.append(_decide(limit_class, items, windows, now, allowed=True))
        return decisions

    def reset(self, limit_class: str, key: str) -> None:
        self._hits.pop((limit_class, key), None)
        self._longest.pop((limit_class, key), None)

    def clear(self) -> None:
        self._hits.clear()
        self._longest.clear()

    def __len__(self) -> int:
        """Keys held (for tests: idle ones are swept)."""
        return len(self._hits)

    def _windows(
        self, limit_class: str, key: str, items: Sequence[RateLimitItem], now: float
    ) -> tuple[deque[float], ...]:
        entry = (limit_class, key)
        windows = self._hits.get(entry)
        if windows is None:
            windows = self._hits[entry] = tuple(deque() for _ in items)
            self._longest[entry] = max(item.get_expiry() for item in items)
            return windows
        for item, hits in zip(items, windows, strict=True):
            cutoff = now - item.get_expiry()
            while hits and hits[0] <= cutoff:
                hits.popleft()
        return windows

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_INTERVAL_S
        idle = [
            entry
            for entry, windows in self._hits.items()
            if all(not hits or hits[-1] <= now - self._longest[entry] for hits in windows)
        ]
        for entry in idle:
            del self._hits[entry]
            del self._longest[entry]


def _decide(
    limit_class: str,
    items: Sequence[RateLimitItem],
    windows: Sequence[deque[float]],
    now: float,
    *,
    allowed: bool,
) -> RateLimitDecision:
    tightest: tuple[int, int, int] | None = None
    for item, hits in zip(items, windows, strict=True):
        expiry = item.get_expiry()
        oldest = hits[0] if hits else now
        candidate = (
            max(0, item.amount - len(hits)),
            max(0, math.ceil(oldest + expiry - now)),
            item.amount,
        )
        if tightest is None or candidate[0] < tightest[0]:
            tightest = candidate
    assert tightest is not None  # noqa: S101 - every class has at least one window
    remaining, reset_after, amount = tightest
    return RateLimitDecision(limit_class, allowed, amount, remaining, reset_after)


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock  # shared counters: wall time, the same in every process
        self._classes: dict[str, list[RateLimitItem]] = {
            name: parse_many(spec) for name, spec in classes.items()
        }
        self._redis = redis
        # EVALSHA, loading the script again after a Redis restart emptied its script cache.
        self._script = redis.register_script(_HIT) if redis is not None else None
        # Without Redis the only counters; with it, the ones used while it is unreachable.
        self._local = LocalWindows()
        self._guard = guard or RedisGuard(metrics)
        self._metrics = metrics
        # (class, key) -> until when (this clock) and at which amount Redis refused it.
        self._refused_until: dict[tuple[str, str], tuple[float, int]] = {}
        self._next_sweep = clock() + SWEEP_INTERVAL_S

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

    async def _on_storage(
        self,
        work: Callable[[Redis], Awaitable[_T]],
        local: Callable[[], _T],
    ) -> _T:
        """``work`` on the shared (Redis) counters, or ``local`` while Redis is down."""
        redis = self._redis
        if redis is None:
            return local()

        async def fallback() -> _T:
            return local()

        return await self._guard.call("rate_limit", lambda: work(redis), fallback)

    async def hit(self, limit_class: str, key: str) -> RateLimitDecision:
        """Count one request of ``key`` against ``limit_class``; refused when any window is full.

        Windows are tested before any is hit, so a request refused by the per-minute window
        does not also eat into the per-second one.
        """
        return (await self.hit_many([(limit_class, key)]))[0]

    async def exhausted(self, limit_class: str, key: str) -> RateLimitDecision | None:
        """The refusal ``key`` would get now, without counting a hit; None while within budget.

        For limits that count failures (``unauthenticated_ip``): a client already over its
        budget is turned away before the expensive work whose failure would be counted.
        """
        decisions = await self.hit_many([], tested=[(limit_class, key)])
        return decisions[0] if decisions else None

    async def hit_many(
        self, counted: Sequence[tuple[str, str]], *, tested: Sequence[tuple[str, str]] = ()
    ) -> list[RateLimitDecision]:
        """One request counted in each ``(class, key)`` of ``counted``, and refused when any
        window of those or of ``tested`` (only looked at, never counted) is full: one
        decision, in one round trip with Redis.

        All or nothing: either every counted class's decision, allowed, in the order given
        (the hit counted in each), or the one refusal, of the first full window in the order
        ``tested`` then ``counted`` (the hit counted in none).
        """
        counted = list(dict.fromkeys(counted))
        tested = [entry for entry in dict.fromkeys(tested) if entry not in counted]
        counters = [(c, k, self._classes[c]) for c, k in counted]
        tests = [(c, k, self._classes[c]) for c, k in tested]
        if self._redis is None:
            # Without Redis (one process): one pass over this process's counters.
            decisions = self._local.hit_many(counters, tested=tests)
        else:
            decisions = await self._on_storage(
                lambda _: self._shared(counters, tests),
                lambda: self._local.hit_many(counters, tested=tests),
            )
        refused = decisions[0] if decisions and not decisions[0].allowed else None
        # The metric counts refused hits; a refusal by a class only tested is not one.
        if (
            refused is not None
            and self._metrics is not None
            and refused.limit_class in {c for c, _ in counted}
        ):
            self._metrics.rate_limited.labels(refused.limit_class).inc()
        return decisions

    def known_refusal(self, limit_class: str, key: str) -> RateLimitDecision | None:
        """The refusal ``key`` would get now as far as this process knows, without a round
        trip; None when it knows of none.

        Exact without Redis or while it is unreachable (the local counters decide then).
        With Redis, a refusal Redis gave this process, until the moment it gave for it: a
        full moving window cannot empty before its oldest hit leaves it.  A budget spent up
        through other processes is not known here until Redis refuses this process once;
        ``reset`` in another process is not seen at all (meant for classes never reset).
        """
        if self._redis is None or self._guard.degraded:
            return self._local.exhausted(limit_class, key, self._classes[limit_class])
        known = self._refused_until.get((limit_class, key))
        if known is None:
            return None
        until, amount = known
        left = until - self._clock()
        if left <= 0:
            del self._refused_until[(limit_class, key)]
            return None
        return RateLimitDecision(limit_class, False, amount, 0, math.ceil(left))

    def _remember_refusal(self, limit_class: str, key: str, amount: int, until: float) -> None:
        now = self._clock()
        if now >= self._next_sweep:
            # Bounded by the keys refused within the last longest window, like the counters.
            self._next_sweep = now + SWEEP_INTERVAL_S
            self._refused_until = {
                entry: known for entry, known in self._refused_until.items() if known[0] > now
            }
        self._refused_until[(limit_class, key)] = (until, amount)

    async def reset(self, limit_class: str, key: str) -> None:
        self._refused_until.pop((limit_class, key), None)

        async def work(redis: Redis) -> None:
            await redis.delete(*_keys(limit_class, key, self._classes[limit_class]))

        await self._on_storage(work, lambda: self._local.reset(limit_class, key))

    async def _shared(
        self, counted: Sequence[KeyWindows], tested: Sequence[KeyWindows]
    ) -> list[RateLimitDecision]:
        """One round trip: ``_HIT``'s decision over every window of every class."""
        assert self._script is not None  # noqa: S101 - only called with Redis
        now = self._clock()
        keys: list[str] = []
        args: list[str | int] = [repr(now)]
        windows: list[tuple[KeyWindows, RateLimitItem]] = []
        for flag, entries in (("0", tested), ("1", counted)):
            for entry in entries:
                limit_class, key, items = entry
                keys += _keys(limit_class, key, items)
                for item in items:
                    args += [item.amount, item.get_expiry(), flag]
                    windows.append((entry, item))
        reply = await self._script(keys=keys, args=args)
        if int(reply[0]) == 0:
            (limit_class, key, _), item = windows[int(reply[1]) - 1]
            refused_for = float(reply[2])
            self._remember_refusal(limit_class, key, item.amount, now + refused_for)
            return [
                RateLimitDecision(
                    limit_class, False, item.amount, 0, max(0, math.ceil(refused_for))
                )
            ]
        decisions = []
        at = 1
        for limit_class, _, items in counted:
            tightest: tuple[int, int, int] | None = None
            for item in items:
                left, resets_in = int(reply[at]), float(reply[at + 1])
                at += 2
                candidate = (max(0, left), max(0, math.ceil(resets_in)), item.amount)
                if tightest is None or candidate[0] < tightest[0]:
                    tightest = candidate
            assert tightest is not None  # noqa: S101 - every class has at least one window
            remaining, reset, amount = tightest
            decisions.append(RateLimitDecision(limit_class, True, amount, remaining, reset))
        return decisions


def _keys(limit_class: str, key: str, items: Sequence[RateLimitItem]) -> list[str]:
    """One list per window; the prefix is what an operator finds them by in Redis."""
    return [f"{KEY_PREFIX}/{limit_class}/{key}/{item.amount}/{item.get_expiry()}" for item in items]
