"""``/api/v1/admin/demo``: admins script SIM quotes and trades through the real app; they
reach bus subscribers like any tick, and the demo ticker leaves them alone until handed back
(SQLite with in-process cache/bus, and PostgreSQL + Redis with ``--db=postgres``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.domain import Exchange, InstrumentType
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.providers.demo.market import DemoMarket
from quantdesk.marketdata.providers.demo.scripting import SCRIPTED_PREFIX
from quantdesk.marketdata.providers.demo.simulator import TickSimulator
from quantdesk.marketdata.quotes.service import (
    QuoteService,
    decode_quote,
    decode_trade,
    quote_channel,
    trade_channel,
)
from quantdesk.platform.context import AppContext
from tests.conftest import UserFactory

QUOTES = "/api/v1/admin/demo/quotes"
TRADES = "/api/v1/admin/demo/trades"
BOOK = {
    "key": "SIM:ALPHA",
    "bid": "99.95",
    "bid_size": "500",
    "ask": "100.05",
    "ask_size": "300",
    "last": "100.00",
}
# A Saturday, 03:00 IST: only SIM is open.
NIGHT = dt.datetime(2026, 6, 19, 21, 30, tzinfo=dt.UTC)


@pytest.fixture
async def sim_instruments(app: FastAPI, market: DemoMarket) -> None:
    """The demo's SIM underlyings and futures in the instrument master (``demo load``
    writes them; the service is what it uses)."""
    ctx: AppContext = app.state.ctx
    wanted = [
        i
        for i in market.instruments()
        if i.exchange is Exchange.SIM and i.type is not InstrumentType.OPTION
    ]
    async with ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(wanted)


@pytest.fixture
async def admin_headers(make_user: UserFactory) -> dict[str, str]:
    return (await make_user("admin")).headers


def ctx_of(app: FastAPI) -> AppContext:
    ctx: AppContext = app.state.ctx
    return ctx


@pytest.mark.usefixtures("sim_instruments")
async def test_a_scripted_quote_is_published_like_any_tick(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    ctx = ctx_of(app)
    async with ctx.bus.subscribe([quote_channel("SIM:ALPHA")]) as subscription:
        response = await client.post(QUOTES, json=BOOK, headers=admin_headers)
        message = await subscription.get(5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in BOOK} == BOOK  # exact decimal strings
    assert body["source_id"]
    assert message is not None
    quote = decode_quote(message[1])
    assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size, quote.last) == (
        Decimal("99.95"),
        Decimal(500),
        Decimal("100.05"),
        Decimal(300),
        Decimal("100.00"),
    )
    assert quote.source_id == body["source_id"]
    # The quotes endpoint (and the cache every process reads) has it too.
    cached = await QuoteService(ctx.cache, ctx.bus).get("SIM:ALPHA")
    assert cached == quote
    # JSON numbers are accepted as well; each quote is a new source id.
    numbers = {**BOOK, "bid": 99.9, "ask": 100.1, "last": 100, "bid_size": 40}
    again = await client.post(QUOTES, json=numbers, headers=admin_headers)
    assert again.status_code == 200, again.text
    assert (again.json()["bid"], again.json()["ask"], again.json()["last"]) == (
        "99.9",
        "100.1",
        "100",
    )
    assert again.json()["source_id"] != body["source_id"]


@pytest.mark.usefixtures("sim_instruments")
async def test_a_scripted_trade_prints_on_the_trades_channel(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    ctx = ctx_of(app)
    await client.post(QUOTES, json=BOOK, headers=admin_headers)
    async with ctx.bus.subscribe([trade_channel("SIM:ALPHA")]) as subscription:
        response = await client.post(
            TRADES,
            json={"key": "sim:alpha", "price": "101.00", "size": "40"},
            headers=admin_headers,
        )
        message = await subscription.get(5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["key"], body["price"], body["size"]) == ("SIM:ALPHA", "101.00", "40")
    assert message is not None
    trade = decode_trade(message[1])
    assert (trade.key, trade.price, trade.size, trade.source_id) == (
        "SIM:ALPHA",
        Decimal("101.00"),
        Decimal(40),
        body["source_id"],
    )
    assert dt.datetime.fromisoformat(body["ts"]) == trade.ts
    quote = await QuoteService(ctx.cache, ctx.bus).get("SIM:ALPHA")
    assert quote is not None
    assert quote.last == Decimal("101.00")
    assert (quote.bid, quote.ask) == (Decimal("99.95"), Decimal("100.05"))


@pytest.mark.usefixtures("sim_instruments")
@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        (QUOTES, {**BOOK, "key": "SIM:NOSUCH"}, 404, None),
        (QUOTES, {**BOOK, "key": "NSE:RELIANCE"}, 422, "key"),
        (QUOTES, {**BOOK, "key": "not a key"}, 422, "key"),
        (QUOTES, {**BOOK, "bid": "100.10"}, 422, None),  # crossed: bid above ask
        (QUOTES, {**BOOK, "bid_size": "0"}, 422, None),
        (QUOTES, {**BOOK, "ask_size": "-5"}, 422, None),
        (QUOTES, {**BOOK, "last": "100.03"}, 422, "last"),  # off the 0.05 tick grid
        (QUOTES, {**BOOK, "ask": "NaN"}, 422, None),
        (QUOTES, {**BOOK, "bid": "1e400"}, 422, None),
        (QUOTES, {**BOOK, "bid": True}, 422, None),
        (QUOTES, {k: v for k, v in BOOK.items() if k != "last"}, 422, None),
        (QUOTES, {**BOOK, "extra": "1"}, 422, None),
        (TRADES, {"key": "SIM:ALPHA", "price": "101.00", "size": "0"}, 422, None),
        (TRADES, {"key": "SIM:ALPHA", "price": "101.01", "size": "1"}, 422, "price"),
        (TRADES, {"key": "SIM:NOSUCH", "price": "101.00", "size": "1"}, 404, None),
        (TRADES, {"key": "NASDAQ:AAPL", "price": "101.00", "size": "1"}, 422, "key"),
    ],
)
async def test_bad_requests_are_problems(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    path: str,
    body: dict[str, object],
    status: int,
    field: str | None,
) -> None:
    ctx = ctx_of(app)
    async with ctx.bus.subscribe(
        [quote_channel("SIM:ALPHA"), trade_channel("SIM:ALPHA")]
    ) as subscription:
        response = await client.post(path, json=body, headers=admin_headers)
        assert await subscription.get(0.1) is None  # nothing was published
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert response.json()["field"] == field
    # A refused request does not take the instrument from the ticker.
    assert await ctx.cache.get(SCRIPTED_PREFIX + "SIM:ALPHA") is None


@pytest.mark.usefixtures("sim_instruments")
async def test_only_admins_may_script(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    for role in ("viewer", "trader"):
        user = await make_user(role)
        for method, path, body in (
            ("POST", QUOTES, BOOK),
            ("POST", TRADES, {"key": "SIM:ALPHA", "price": "100.00", "size": "1"}),
            ("DELETE", f"{QUOTES}/SIM:ALPHA", None),
        ):
            response = await client.request(method, path, json=body, headers=user.headers)
            assert response.status_code == 403, (role, path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
    anonymous = await client.post(QUOTES, json=BOOK)
    assert anonymous.status_code == 401


@pytest.mark.usefixtures("sim_instruments")
async def test_the_ticker_leaves_a_scripted_instrument_alone_until_handed_back(
    app: FastAPI, client: httpx.AsyncClient, admin_headers: dict[str, str], market: DemoMarket
) -> None:
    ctx = ctx_of(app)
    # The ticker as the lifespan runs it, on the app's cache and bus, at a time SIM trades.
    ticker = TickSimulator(
        market, QuoteService(ctx.cache, ctx.bus), interval_s=1.0, clock=lambda: NIGHT
    )
    await ticker.publish_step()
    scripted = (await client.post(QUOTES, json=BOOK, headers=admin_headers)).json()
    assert await ctx.cache.get(SCRIPTED_PREFIX + "SIM:ALPHA") is not None
    quotes = QuoteService(ctx.cache, ctx.bus)
    channels = [quote_channel("SIM:ALPHA"), quote_channel("SIM:BETA")]
    async with ctx.bus.subscribe(channels) as subscription:
        for _ in range(5):
            await ticker.publish_step()
        seen = []
        while (message := await subscription.get(0.2)) is not None:
            seen.append(message[0])
    assert "quotes.SIM:BETA" in seen  # the ticker runs ...
    assert "quotes.SIM:ALPHA" not in seen  # ... but not for the scripted instrument
    alpha = await quotes.get("SIM:ALPHA")
    assert alpha is not None
    assert alpha.source_id == scripted["source_id"]

    released = await client.delete(f"{QUOTES}/SIM:ALPHA", headers=admin_headers)
    assert released.status_code == 204, released.text
    assert await ctx.cache.get(SCRIPTED_PREFIX + "SIM:ALPHA") is None
    async with ctx.bus.subscribe([quote_channel("SIM:ALPHA")]) as subscription:
        await ticker.publish_step()
        message = await subscription.get(5)
    assert message is not None  # quoted again at once, from the scripted price on
    back = decode_quote(message[1])
    assert back.source_id != scripted["source_id"]
    assert abs(back.last - Decimal(100)) < Decimal(1)
    # Handing back is idempotent; an unknown instrument is a 404, a non-SIM one a 422.
    assert (await client.delete(f"{QUOTES}/SIM:ALPHA", headers=admin_headers)).status_code == 204
    assert (await client.delete(f"{QUOTES}/SIM:NOSUCH", headers=admin_headers)).status_code == 404
    assert (await client.delete(f"{QUOTES}/NSE:RELIANCE", headers=admin_headers)).status_code == 422
