"""FX rates from the market-data providers (Alpha Vantage's FX_DAILY, Polygon's C: pairs)
into the table portfolios value with, against local servers that speak their APIs."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from quantdesk.app import create_app
from quantdesk.cli import app as cli_app
from quantdesk.portfolios.models import FxRateRow
from quantdesk.settings import Settings
from tests.conftest import TEST_SECRET, UserFactory
from tests.marketdata.providers.fake_servers import (
    AlphaVantageFake,
    FakeServer,
    PolygonFake,
    serve,
)
from tests.portfolios.test_portfolios_api import BASE, create

AV_KEY, POLYGON_KEY = "av-fx-test-key", "pg-fx-test-key"
AV_RATES = {"2023-12-29": "83.2010", "2024-01-02": "83.3150", "2024-01-03": "83.2675",
            "2024-01-04": "83.2400", "2024-01-05": "83.1550", "2024-01-08": "83.0900"}  # fmt: skip


def utc_ms(day: str) -> int:
    return int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp() * 1000)


@pytest.fixture
def alphavantage() -> Iterator[FakeServer]:
    yield from serve(AlphaVantageFake(api_key=AV_KEY, fx={("USD", "INR"): AV_RATES}))


@pytest.fixture
def polygon() -> Iterator[FakeServer]:
    fake = PolygonFake(api_key=POLYGON_KEY)
    fake.aggs["C:USDINR", "day"] = [
        {"t": utc_ms(day), "o": close, "h": close, "l": close, "c": close, "v": 9000, "n": 9000}
        for day, close in (("2024-01-04", 83.2415), ("2024-01-05", 83.1602),
                           ("2024-01-08", 83.0875))
    ]  # fmt: skip
    yield from serve(fake)


@pytest.fixture
def configured(settings: Settings, alphavantage: FakeServer, polygon: FakeServer) -> Settings:
    return settings.model_copy(
        update={
            "alphavantage_api_key": SecretStr(AV_KEY),
            "alphavantage_base_url": alphavantage.base_url,
            "polygon_api_key": SecretStr(POLYGON_KEY),
            "polygon_base_url": polygon.base_url,
        }
    )


@pytest.fixture
async def app(configured: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(configured)
    async with application.router.lifespan_context(application):
        yield application


async def stored(app: FastAPI) -> dict[str, tuple[str, str]]:
    async with app.state.ctx.database.session() as db:
        rows = (await db.execute(select(FxRateRow).order_by(FxRateRow.day))).scalars().all()
    return {r.day.isoformat(): (str(r.rate), r.source) for r in rows if r.base == "USD"}


async def test_rates_fetched_from_providers_value_a_portfolio(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    admin, trader = await make_user("admin"), await make_user("trader")
    manual = {"rates": [{"base": "USD", "quote": "INR", "date": "2024-01-03", "rate": "83.5"}]}
    assert (await client.post(f"{BASE}/fx-rates", json=manual, headers=admin.headers)).is_success

    fetch = {"provider": "alphavantage", "base": "USD", "quote": "INR",
             "from": "2024-01-01", "to": "2024-01-05"}  # fmt: skip
    r = await client.post(f"{BASE}/fx-rates/fetch", json=fetch, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "provider": "alphavantage", "base": "USD", "quote": "INR", "fetched": 4, "stored": 3,
        "kept": 1, "first": "2024-01-02", "last": "2024-01-05",
    }  # fmt: skip
    assert await stored(app) == {
        "2024-01-02": ("83.3150", "alphavantage"),
        "2024-01-03": ("83.5", "manual"),  # the admin's own rate stays
        "2024-01-04": ("83.2400", "alphavantage"),
        "2024-01-05": ("83.1550", "alphavantage"),
    }

    # Another provider's rates replace a provider's, day by day, and add the days it has.
    fetch = {**fetch, "provider": "polygon", "from": "2024-01-04", "to": "2024-01-08"}
    r = await client.post(f"{BASE}/fx-rates/fetch", json=fetch, headers=admin.headers)
    assert (r.json()["fetched"], r.json()["stored"], r.json()["kept"]) == (3, 3, 0), r.text
    rates = await stored(app)
    assert rates["2024-01-05"] == ("83.1602", "polygon")
    assert rates["2024-01-08"] == ("83.0875", "polygon")

    # A USD buy in an INR portfolio without its own rate takes the fetched one of its day.
    pid = (await create(client, trader))["id"]
    buy = {"type": "buy", "instrument": "NASDAQ:AAPL", "date": "2024-01-05", "quantity": "10",
           "price": "100"}  # fmt: skip
    r = await client.post(f"{BASE}/{pid}/transactions", json=buy, headers=trader.headers)
    assert r.status_code == 201, r.text
    assert (r.json()["currency"], r.json()["fx_rate"]) == ("USD", "83.1602")


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"provider": "demo"}, 422, "has no FX feed"),
        ({"provider": "nosuch"}, 422, "unknown market-data provider"),
        ({"quote": "USD"}, 422, "same currency"),
        ({"from": "2024-02-01"}, 422, "after"),
        ({"base": "EUR"}, 422, ""),
        # A pair the provider does not carry: its own refusal, passed on as a bad gateway.
        ({"base": "INR", "quote": "USD"}, 502, "alphavantage refused the request"),
    ],
)
async def test_a_bad_fetch_is_refused_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory,
    change: dict[str, str], status: int, says: str,
) -> None:  # fmt: skip
    admin = await make_user("admin")
    fetch = {"provider": "alphavantage", "from": "2024-01-01", "to": "2024-01-05", **change}
    r = await client.post(f"{BASE}/fx-rates/fetch", json=fetch, headers=admin.headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert says in r.text
    assert await stored(app) == {}


async def test_only_an_admin_fetches(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    trader = await make_user("trader")
    fetch = {"provider": "alphavantage", "from": "2024-01-01", "to": "2024-01-05"}
    r = await client.post(f"{BASE}/fx-rates/fetch", json=fetch, headers=trader.headers)
    assert r.status_code == 403


async def test_the_cli_fetches_with_a_summary(
    app: FastAPI, configured: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (
        ("QUANTDESK_PROFILE", "test"),
        ("QUANTDESK_DATABASE_URL", configured.database_url),
        ("QUANTDESK_SECRET_KEY", TEST_SECRET),
        ("QUANTDESK_VAR_DIR", str(configured.var_dir)),
        ("QUANTDESK_ALPHAVANTAGE_API_KEY", AV_KEY),
        ("QUANTDESK_ALPHAVANTAGE_BASE_URL", configured.alphavantage_base_url),
    ):
        monkeypatch.setenv(name, value)
    args = ["portfolio", "fx-fetch", "--provider", "alphavantage", "--pair", "usd/inr",
            "--from", "2023-12-01", "--to", "2024-01-31"]  # fmt: skip
    # The command runs its own event loop: in a thread, beside the test's.
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, args)
    assert result.exit_code == 0, result.output
    assert "USD/INR from alphavantage: 6 days (2023-12-29 to 2024-01-08), stored 6" in result.output
    assert (await stored(app))["2024-01-08"] == ("83.0900", "alphavantage")
    bad = await asyncio.to_thread(CliRunner().invoke, cli_app, [*args[:5], "USDINR", *args[6:]])
    assert bad.exit_code == 2
    assert "quote" in bad.output
