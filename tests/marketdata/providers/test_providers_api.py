"""Providers through the HTTP API: configured by settings, against a local Finnhub server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from quantdesk.app import create_app
from quantdesk.marketdata.domain import Exchange
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.settings import Settings
from tests.conftest import UserFactory
from tests.marketdata.providers.fake_servers import FakeServer, FinnhubFake, Reply, serve
from tests.marketdata.samples import equity

KEY = "fh-api-test-key"


@pytest.fixture
def finnhub() -> Iterator[FakeServer]:
    fake = FinnhubFake(api_key=KEY)
    fake.quotes["AAPL"] = {
        "c": 227.52, "d": 1.27, "dp": 0.5613, "h": 228.1, "l": 225.3, "o": 226.0,
        "pc": 226.25, "t": 1_763_740_800,
    }  # fmt: skip
    yield from serve(fake)


@pytest.fixture
async def app(settings: Settings, finnhub: FakeServer) -> AsyncIterator[FastAPI]:
    configured = settings.model_copy(
        update={"finnhub_api_key": SecretStr(KEY), "finnhub_base_url": finnhub.base_url + "/api/v1"}
    )
    application = create_app(configured)
    async with application.router.lifespan_context(application):
        async with application.state.ctx.database.session(immediate=True) as db:
            await InstrumentService(db).upsert_many([equity("AAPL", "Apple Inc.", Exchange.NASDAQ)])
        yield application


async def test_configured_providers_and_a_quote(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    listed = await client.get("/api/v1/providers", headers=viewer.headers)
    assert listed.json() == {"providers": ["demo", "finnhub"]}
    quote = await client.get("/api/v1/providers/finnhub/quote/NASDAQ:AAPL", headers=viewer.headers)
    assert quote.status_code == 200, quote.text
    data = quote.json()
    assert data["last"] == "227.52"
    assert data["prev_close"] == "226.25"


async def test_provider_down_is_a_fast_503_naming_it(
    client: httpx.AsyncClient, make_user: UserFactory, finnhub: FakeServer
) -> None:
    viewer = await make_user("viewer")
    finnhub.fail_always("/api/v1/quote", Reply.json({"error": "boom"}, status=500))
    response = await client.get(
        "/api/v1/providers/finnhub/quote/NASDAQ:AAPL", headers=viewer.headers
    )
    assert response.status_code == 503
    body = response.json()
    assert body["type"] == "urn:quantdesk:problem:service-unavailable"
    assert "finnhub" in body["dependency"]


async def test_unknown_and_unconfigured(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    viewer = await make_user("viewer")
    missing = await client.get(
        "/api/v1/providers/polygon/quote/NASDAQ:AAPL", headers=viewer.headers
    )
    assert missing.status_code == 404
    assert "configured: demo, finnhub" in missing.json()["detail"]


async def test_upstream_requests_are_counted_by_outcome(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory, finnhub: FakeServer
) -> None:
    viewer = await make_user("viewer")
    registry = app.state.ctx.metrics.registry

    def count(outcome: str) -> float:
        labels = {"provider": "finnhub", "outcome": outcome}
        return registry.get_sample_value("quantdesk_upstream_requests_total", labels) or 0.0

    url = "/api/v1/providers/finnhub/quote/NASDAQ:AAPL"
    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    assert (count("ok"), count("cached")) == (1.0, 1.0)
    finnhub.fail_always("/api/v1/search", Reply.json({"error": "boom"}, status=500))
    searched = await client.get(
        "/api/v1/providers/finnhub/search", params={"q": "APPLE"}, headers=viewer.headers
    )
    assert searched.status_code == 503
    assert count("failed") == 1.0
    metrics = await client.get("/metrics")
    assert 'quantdesk_upstream_requests_total{outcome="ok",provider="finnhub"} 1.0' in metrics.text
