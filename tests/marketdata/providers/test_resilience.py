"""Circuit breaker, client-side rate limit, TTL cache, Retry-After parsing, policy checks."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from quantdesk.marketdata.providers.resilience import (
    MISSING,
    CircuitBreaker,
    CircuitOpen,
    CircuitState,
    RateLimitWaitError,
    ResiliencePolicy,
    SlidingWindowRateLimiter,
    TTLCache,
    parse_retry_after,
)
from quantdesk.platform.exceptions import ServiceUnavailable
from tests.marketdata.providers.fake_servers import VirtualTime


def state_of(breaker: CircuitBreaker) -> CircuitState:
    """The state, read afresh (keeps mypy from narrowing a property across calls)."""
    return breaker.state


def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    vt = VirtualTime()
    breaker = CircuitBreaker("acme", failure_threshold=3, cooldown=10, clock=vt.clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    breaker.before_call()
    breaker.record_success()  # a success in between resets the count
    assert breaker.consecutive_failures == 0
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    vt.advance(4)
    with pytest.raises(CircuitOpen) as caught:
        breaker.before_call()
    assert isinstance(caught.value, ServiceUnavailable)
    assert caught.value.retry_after == 6
    assert caught.value.dependency == "provider:acme"


def test_half_open_admits_one_probe_and_release_frees_it() -> None:
    vt = VirtualTime()
    breaker = CircuitBreaker("acme", failure_threshold=1, cooldown=5, clock=vt.clock)
    breaker.before_call()
    breaker.record_failure()
    vt.advance(5)
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpen) as caught:
        breaker.before_call()  # everyone else while the probe runs
    assert caught.value.retry_after == 1
    breaker.release()  # the probe was cancelled: it tells us nothing
    breaker.before_call()  # so another caller may probe
    breaker.record_failure()
    assert state_of(breaker) is CircuitState.OPEN
    vt.advance(5)
    breaker.before_call()
    breaker.record_success()
    assert state_of(breaker) is CircuitState.CLOSED


@given(st.lists(st.booleans(), max_size=40), st.integers(1, 5))
@settings(deadline=None)
def test_breaker_rejects_exactly_after_a_run_of_threshold_failures(
    outcomes: list[bool], threshold: int
) -> None:
    vt = VirtualTime()  # time stands still: once open, the breaker stays open
    breaker = CircuitBreaker("acme", threshold, cooldown=1, clock=vt.clock)
    run, opened = 0, False
    for ok in outcomes:
        if opened:
            with pytest.raises(CircuitOpen):
                breaker.before_call()
            continue
        breaker.before_call()
        if ok:
            breaker.record_success()
            run = 0
        else:
            breaker.record_failure()
            run += 1
            opened = run >= threshold
        assert (breaker.state is CircuitState.OPEN) == opened


def run_requests(spec: str, gaps: list[float]) -> tuple[list[float], list[float]]:
    """Request times and admission times of sequential requests ``gaps`` apart."""
    vt = VirtualTime()
    limiter = SlidingWindowRateLimiter(spec, vt.clock, vt.sleep)
    requested, admitted = [], []

    async def drive() -> None:
        for gap in gaps:
            vt.advance(gap)
            requested.append(vt.now)
            await limiter.acquire(max_wait=math.inf)
            admitted.append(vt.now)

    asyncio.run(drive())
    return requested, admitted


@given(
    st.integers(1, 5),
    st.lists(st.floats(0, 2, allow_nan=False), min_size=1, max_size=40),
)
# Once let two requests into a 1/second window: a wait that rounded to zero for a request
# that rounded to "still inside" the window.
@example(1, [0.04898555888330593] + [0.0] * 10 + [2.0, 1.5074343542973363, 1.5106075935763141,
         1.5985919367179133, 1.3944823984263766, 1.4735329371472334, 1.4616773765372566,
         1.2386215114099575, 1.1232144222010525, 0.0, 0.0])  # fmt: skip
@settings(max_examples=200, deadline=None)
def test_sliding_window_admits_as_early_as_the_limit_allows(amount: int, gaps: list[float]) -> None:
    requested, admitted = run_requests(f"{amount}/second", gaps)
    for k, (asked, got) in enumerate(zip(requested, admitted, strict=True)):
        # Exact sliding-window semantics: the k-th request waits for the (k-amount)-th to
        # leave the one-second window, and not a moment longer.
        earliest = asked if k < amount else max(asked, admitted[k - amount] + 1.0)
        assert got == pytest.approx(earliest, abs=1e-9)
        # Times are sums of float gaps: a request admitted exactly one second earlier has left
        # the window even when rounding puts it a few ulps inside.
        in_window = [t for t in admitted[: k + 1] if got - 1.0 + 1e-9 < t <= got + 1e-9]
        assert len(in_window) <= amount


def test_several_windows_all_hold() -> None:
    _, admitted = run_requests("2/second;3/minute", [0, 0, 0, 0])
    assert admitted == [1000.0, 1000.0, 1001.0, 1060.0]


async def test_rate_limit_wait_is_bounded() -> None:
    vt = VirtualTime()
    limiter = SlidingWindowRateLimiter("1/minute", vt.clock, vt.sleep)
    await limiter.acquire(max_wait=0)
    with pytest.raises(RateLimitWaitError) as caught:
        await limiter.acquire(max_wait=59.5)
    assert caught.value.wait == 60
    assert vt.sleeps == []
    await limiter.acquire(max_wait=60)
    assert vt.sleeps == [60]


def test_ttl_cache_expiry_and_lru_eviction() -> None:
    vt = VirtualTime()
    cache = TTLCache(max_entries=2, clock=vt.clock)
    cache.put("a", 1, ttl=10)
    cache.put("b", 2, ttl=1)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3, ttl=10)  # evicts "b", the least recently used
    assert cache.get("b") is MISSING
    assert (cache.get("a"), cache.get("c"), len(cache)) == (1, 3, 2)
    vt.advance(10)
    assert cache.get("a") is MISSING
    cache.put("z", 0, ttl=0)  # ttl 0: not cached at all
    assert cache.get("z") is MISSING
    cache.clear()
    assert len(cache) == 0


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["put", "get", "tick"]),
            st.sampled_from("abc"),
            st.integers(0, 5),
        ),
        max_size=60,
    )
)
@settings(deadline=None)
def test_ttl_cache_matches_a_model(ops: list[tuple[str, str, int]]) -> None:
    vt = VirtualTime()
    cache = TTLCache(max_entries=100, clock=vt.clock)
    model: dict[str, tuple[float, int]] = {}
    for op, key, n in ops:
        if op == "put":
            cache.put(key, n, ttl=n)
            if n > 0:
                model[key] = (vt.now + n, n)
        elif op == "tick":
            vt.advance(n)
        else:
            expected = model.get(key)
            alive = expected is not None and vt.now < expected[0]
            assert cache.get(key) == (expected[1] if alive and expected else MISSING)


def test_retry_after_forms() -> None:
    now = datetime(2024, 1, 5, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after("-3", now) == 0.0
    assert parse_retry_after("Fri, 05 Jan 2024 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Fri, 05 Jan 2024 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"read_timeout": 0},
        {"deadline": -1},
        {"max_attempts": 0},
        {"breaker_failure_threshold": 0},
        {"backoff_initial": 2, "backoff_max": 1},
        {"rate_limit": "lots"},
    ],
)
def test_policy_rejects_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ResiliencePolicy(**bad)  # type: ignore[arg-type]
