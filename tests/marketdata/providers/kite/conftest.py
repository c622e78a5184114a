"""Fixtures: the fake Kite (REST and ticker), an in-memory token store, a fast provider,
and an app with Kite configured and logged in today."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from quantdesk.app import create_app
from quantdesk.marketdata.providers.kite.auth import TokenSource, exchange_request_token
from quantdesk.marketdata.providers.kite.client import KiteApi
from quantdesk.marketdata.providers.kite.provider import KiteProvider
from quantdesk.marketdata.providers.kite.service import token_store
from quantdesk.platform.db import Database
from quantdesk.settings import Settings
from tests.marketdata.providers.conftest import FAST_POLICY
from tests.marketdata.providers.fake_servers import VirtualTime
from tests.marketdata.providers.kite.fake_kite import (
    ACCESS_TOKEN,
    API_KEY,
    API_SECRET,
    HttpFake,
    KiteFake,
    TickerFake,
    kite_http,
    ticker_server,
)

REQUEST_TOKEN = "rq7Yt2Lm9Pq4"


@pytest.fixture
def kite_settings(settings: Settings, kite_server: HttpFake, ticker_fake: TickerFake) -> Settings:
    return settings.model_copy(
        update={
            "kite_api_key": SecretStr(API_KEY),
            "kite_api_secret": SecretStr(API_SECRET),
            "kite_base_url": kite_server.base_url,
            "kite_ticker_url": ticker_fake.url,
            "kite_ticker_instruments": ["NSE:RELIANCE"],
            "kite_instruments_daily": False,
            "log_level": "DEBUG",
        }
    )


async def log_in_today(settings: Settings, kite_server: HttpFake) -> None:
    """Store a session obtained now (valid until tomorrow 06:00 IST), as a login would."""
    database = Database(settings)
    try:
        session = await exchange_request_token(
            API_KEY, API_SECRET, REQUEST_TOKEN, base_url=kite_server.base_url
        )
        today = replace(session, login_time=dt.datetime.now(dt.UTC))
        await token_store(settings, database).save(today)
    finally:
        await database.dispose()


@pytest.fixture
async def app(kite_settings: Settings, kite_server: HttpFake) -> AsyncIterator[FastAPI]:
    """This module's app: Kite configured, logged in today (``client`` and users use it)."""
    await log_in_today(kite_settings, kite_server)
    application = create_app(kite_settings)
    async with application.router.lifespan_context(application):
        yield application


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
