"""Fixtures: fake provider servers on 127.0.0.1, virtual time, fast resilience policies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from quantdesk.marketdata.providers.resilience import ResiliencePolicy
from tests.marketdata.providers.fake_servers import (
    FakeServer,
    FinnhubFake,
    VirtualTime,
    serve,
)

FINNHUB_KEY = "fh-test-key-5b0c1d"

# Small real timeouts (a hanging server costs 0.3 s per attempt; generous enough that a busy
# 2-core box answers every healthy request in time); backoffs are virtual-time sleeps.
FAST_POLICY = ResiliencePolicy(
    connect_timeout=1.0,
    read_timeout=0.3,
    deadline=5.0,
    max_attempts=3,
    backoff_initial=0.1,
    backoff_max=1.0,
    breaker_failure_threshold=2,
    breaker_cooldown=30.0,
    rate_limit="1000/second",
)


@pytest.fixture
def vtime() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def finnhub_fake() -> FinnhubFake:
    return FinnhubFake(api_key=FINNHUB_KEY)


@pytest.fixture
def finnhub_server(finnhub_fake: FinnhubFake) -> Iterator[FakeServer]:
    yield from serve(finnhub_fake)
