"""Fixtures: the fake Kite (REST and ticker), an in-memory token store, a fast provider."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator

import pytest

from quantdesk.marketdata.providers.kite.auth import TokenSource
from quantdesk.marketdata.providers.kite.client import KiteApi
from quantdesk.marketdata.providers.kite.provider import KiteProvider
from tests.marketdata.providers.conftest import FAST_POLICY
from tests.marketdata.providers.fake_servers import VirtualTime
from tests.marketdata.providers.kite.fake_kite import (
    ACCESS_TOKEN,
    API_KEY,
    HttpFake,
    KiteFake,
    TickerFake,
    kite_http,
    ticker_server,
)


class MemoryTokens:
    """A token store in a variable: what ``KiteTokenStore`` does, without a database."""

    def __init__(self, token: str | None = ACCESS_TOKEN) -> None:
        self.token = token
        self.rejected: list[str] = []

    async def access_token(self, now: dt.datetime | None = None) -> str | None:
        return self.token

    async def reject(self, reason: str, token: str | None = None) -> None:
        if token is None or token == self.token:
            self.rejected.append(reason)
            self.token = None


@pytest.fixture
def kite_fake() -> KiteFake:
    return KiteFake()


@pytest.fixture
def kite_server(kite_fake: KiteFake) -> Iterator[HttpFake]:
    yield from kite_http(kite_fake)


@pytest.fixture
def memory_tokens() -> MemoryTokens:
    return MemoryTokens()


@pytest.fixture
async def kite(
    kite_server: HttpFake, memory_tokens: MemoryTokens, vtime: VirtualTime
) -> AsyncIterator[KiteProvider]:
    api = KiteApi(
        API_KEY,
        TokenSource(memory_tokens, ttl_s=0),
        base_url=kite_server.base_url,
        policy=FAST_POLICY,
        clock=vtime.clock,
        sleep=vtime.sleep,
    )
    provider = KiteProvider(api)
    yield provider
    await provider.aclose()


@pytest.fixture
async def ticker_fake() -> AsyncIterator[TickerFake]:
    async for running in ticker_server(TickerFake()):
        yield running
