"""TradingView UDF endpoints, field by field against TradingView's UDF specification."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.calendars import get_calendar
from quantdesk.marketdata.domain import BarArrays, Exchange, Quote, Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.settings import Settings
from tests.conftest import TestUser, UserFactory
from tests.marketdata.samples import equity, nse_index
from tests.support.factories import Users

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
THURSDAY, MONDAY = dt.date(2024, 11, 14), dt.date(2024, 11, 18)  # Friday 15th: NSE holiday


def open_at(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(9, 15), IST).timestamp())


def midnight(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())


CHARTS = "https://charts.example"  # the page that embeds the Charting Library


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"rate_limit_api": "100000/second", "cors_origins": [CHARTS]})


@pytest.fixture
async def viewer(app: FastAPI, make_user: UserFactory) -> TestUser:
    ctx: AppContext = app.state.ctx
    async with ctx.database.session(immediate=True) as session:
        await InstrumentService(session).upsert_many(
            [
                equity("RELIANCE", "Reliance Industries"),
                equity("RELIANCE", "Reliance Industries", Exchange.BSE),
                equity("AAPL", "Apple Inc", Exchange.NASDAQ),
                nse_index("NIFTY 50"),
            ]
        )
        store = BarStore(session)
        for day, base in ((THURSDAY, 1400.0), (MONDAY, 1500.0)):
            close = np.round(base + 0.05 * np.arange(10), 2)
            ts = open_at(day) + 60 * np.arange(10, dtype=np.int64)
            await store.bulk_load(
                "NSE:RELIANCE",
                Timeframe.M1,
                BarArrays(ts, close, close + 1, close - 1, close, np.full(10, 7.0)),
            )
        days = np.array([midnight(THURSDAY), midnight(MONDAY)])
        await store.bulk_load(
            "NSE:RELIANCE",
            Timeframe.D1,
            BarArrays(
                days,
                np.array([1400.0, 1500.0]),
                np.array([1420.0, 1525.5]),
                np.array([1390.0, 1490.0]),
                np.array([1410.35, 1520.0]),
                np.array([1e6, 2e6]),
            ),
        )
    return await make_user("viewer")


async def test_config_is_public_and_complete(client: httpx.AsyncClient) -> None:
    response = await client.get("/udf/config")
    assert response.status_code == 200
    config = response.json()
    assert config["supports_search"] is True
    assert config["supports_group_request"] is False
    assert config["supports_time"] is True
    assert config["supports_marks"] is False
    assert config["supports_timescale_marks"] is False
    assert config["supported_resolutions"] == ["1", "3", "5", "10", "15", "30", "60", "1D", "1W"]
    assert config["exchanges"][0] == {"value": "", "name": "All Exchanges", "desc": ""}
    assert {"value": "NSE", "name": "NSE", "desc": "NSE"} in config["exchanges"]
    assert config["symbols_types"][0] == {"name": "All types", "value": ""}
    assert {"name": "Stock", "value": "stock"} in config["symbols_types"]


async def test_time_is_plain_unix_seconds(client: httpx.AsyncClient) -> None:
    before = int(time.time())
    response = await client.get("/udf/time")
    assert response.headers["content-type"].startswith("text/plain")
    assert before <= int(response.text) <= int(time.time())


async def test_symbol_info(client: httpx.AsyncClient, viewer: TestUser) -> None:
    response = await client.get("/udf/symbols?symbol=NSE:RELIANCE", headers=viewer.headers)
    info = response.json()
    # This year's NSE holidays (and next year's once published), as YYYYMMDD.
    this_year = dt.datetime.now(dt.UTC).year
    listed = info.pop("session_holidays").split(",")
    expected = [h.date.strftime("%Y%m%d") for h in get_calendar("NSE").holidays(this_year)]
    assert listed[: len(expected)] == expected
    assert {day[:4] for day in listed} <= {str(this_year), str(this_year + 1)}
    assert info == {
        "name": "RELIANCE",
        "ticker": "NSE:RELIANCE",
        "full_name": "NSE:RELIANCE",
        "description": "Reliance Industries",
        "type": "stock",
        "exchange": "NSE",
        "listed_exchange": "NSE",
        "timezone": "Asia/Kolkata",
        "session": "0915-1530",
        "format": "price",
        "minmov": 5,  # tick 0.05 = 5 / 100
        "pricescale": 100,
        "has_intraday": True,
        "has_daily": True,
        "has_weekly_and_monthly": True,
        "intraday_multipliers": ["1", "3", "5", "10", "15", "30", "60"],
        "supported_resolutions": ["1", "3", "5", "10", "15", "30", "60", "1D", "1W"],
        "volume_precision": 0,
        "currency_code": "INR",
    }
    aapl = (await client.get("/udf/symbols?symbol=AAPL", headers=viewer.headers)).json()
    assert (aapl["ticker"], aapl["timezone"], aapl["session"]) == (
        "NASDAQ:AAPL",
        "America/New_York",
        "0930-1600",
    )
    assert (aapl["minmov"], aapl["pricescale"]) == (1, 100)
    bare = (await client.get("/udf/symbols?symbol=reliance", headers=viewer.headers)).json()
    assert bare["ticker"] == "NSE:RELIANCE"  # NSE before BSE for a bare symbol
    index = (await client.get("/udf/symbols?symbol=NSE:NIFTY 50", headers=viewer.headers)).json()
    assert index["type"] == "index"


async def test_unknown_symbol_is_a_udf_error(client: httpx.AsyncClient, viewer: TestUser) -> None:
    for symbol in ("NSE:NOPE", "NOPE", "LSE:VOD", "::"):
        response = await client.get(f"/udf/symbols?symbol={symbol}", headers=viewer.headers)
        assert response.status_code == 200
        assert response.json() == {"s": "error", "errmsg": f"unknown_symbol {symbol}"}


async def test_search(client: httpx.AsyncClient, viewer: TestUser) -> None:
    found = await client.get(
        "/udf/search?query=RELIANCE&type=&exchange=&limit=10", headers=viewer.headers
    )
    assert found.json() == [
        {
            "symbol": "RELIANCE",
            "full_name": "BSE:RELIANCE",
            "description": "Reliance Industries",
            "exchange": "BSE",
            "ticker": "BSE:RELIANCE",
            "type": "stock",
        },
        {
            "symbol": "RELIANCE",
            "full_name": "NSE:RELIANCE",
            "description": "Reliance Industries",
            "exchange": "NSE",
            "ticker": "NSE:RELIANCE",
            "type": "stock",
        },
    ]
    nse = await client.get("/udf/search?query=rel&exchange=NSE", headers=viewer.headers)
    assert [i["ticker"] for i in nse.json()] == ["NSE:RELIANCE"]
    indices = await client.get("/udf/search?query=&type=index", headers=viewer.headers)
    assert [i["ticker"] for i in indices.json()] == ["NSE:NIFTY 50"]
    for query in ("type=bond", "exchange=LSE"):
        assert (await client.get(f"/udf/search?{query}", headers=viewer.headers)).json() == []


async def test_history_ok(client: httpx.AsyncClient, viewer: TestUser) -> None:
    start = open_at(MONDAY)
    response = await client.get(
        "/udf/history",
        params={"symbol": "NSE:RELIANCE", "resolution": "1", "from": start, "to": start + 180},
        headers=viewer.headers,
    )
    assert response.json() == {
        "s": "ok",
        "t": [start, start + 60, start + 120],  # ``to`` is exclusive
        "o": [1500.0, 1500.05, 1500.1],  # numbers, as UDF requires
        "h": [1501.0, 1501.05, 1501.1],
        "l": [1499.0, 1499.05, 1499.1],
        "c": [1500.0, 1500.05, 1500.1],
        "v": [7.0, 7.0, 7.0],
    }
    daily = await client.get(
        "/udf/history",
        params={
            "symbol": "RELIANCE",
            "resolution": "D",
            "from": midnight(THURSDAY),
            "to": midnight(MONDAY) + 86400,
        },
        headers=viewer.headers,
    )
    # Daily bars at 00:00 UTC of the trading day, as the spec asks.
    assert daily.json()["t"] == [midnight(THURSDAY), midnight(MONDAY)]
    assert daily.json()["c"] == [1410.35, 1520.0]
    five = await client.get(
        "/udf/history",
        params={
            "symbol": "NSE:RELIANCE",
            "resolution": "5",
            "from": open_at(THURSDAY),
            "to": start + 600,
        },
        headers=viewer.headers,
    )
    assert five.json()["t"] == [open_at(THURSDAY), open_at(THURSDAY) + 300, start, start + 300]
    assert five.json()["v"] == [35.0, 35.0, 35.0, 35.0]


async def test_history_countback(client: httpx.AsyncClient, viewer: TestUser) -> None:
    to = open_at(MONDAY) + 120
    response = await client.get(
        "/udf/history",
        params={
            "symbol": "NSE:RELIANCE",
            "resolution": "1",
            "from": to - 60,
            "to": to,
            "countback": 4,
        },
        headers=viewer.headers,
    )
    body = response.json()
    # Four bars ending before ``to``; ``from`` is ignored. Friday and the weekend are skipped.
    assert body["t"] == [
        open_at(THURSDAY) + 480,
        open_at(THURSDAY) + 540,
        open_at(MONDAY),
        open_at(MONDAY) + 60,
    ]


async def test_history_no_data_and_next_time(client: httpx.AsyncClient, viewer: TestUser) -> None:
    friday = int(dt.datetime(2024, 11, 15, 4, 0, tzinfo=dt.UTC).timestamp())
    gap = await client.get(
        "/udf/history",
        params={"symbol": "NSE:RELIANCE", "resolution": "1", "from": friday, "to": friday + 3600},
        headers=viewer.headers,
    )
    # ``nextTime`` is the closest bar in the past: Thursday's last minute.
    assert gap.json() == {"s": "no_data", "nextTime": open_at(THURSDAY) + 540}
    before_all = await client.get(
        "/udf/history",
        params={"symbol": "NSE:RELIANCE", "resolution": "60", "from": 1000, "to": 2000},
        headers=viewer.headers,
    )
    assert before_all.json() == {"s": "no_data"}


async def test_history_errors(client: httpx.AsyncClient, viewer: TestUser) -> None:
    async def get(**params: str | int) -> httpx.Response:
        query = {"symbol": "NSE:RELIANCE", "resolution": "1", "from": 0, "to": 10, **params}
        return await client.get("/udf/history", params=query, headers=viewer.headers)

    unsupported = await get(resolution="1M")
    assert unsupported.json()["s"] == "error"
    assert "unsupported resolution 1M" in unsupported.json()["errmsg"]
    assert (await get(symbol="NSE:NOPE")).json() == {
        "s": "error",
        "errmsg": "unknown_symbol NSE:NOPE",
    }
    assert (await get(**{"from": 10, "to": 0})).json() == {
        "s": "error",
        "errmsg": "from must be before to",
    }


async def test_udf_data_needs_a_read_credential(
    client: httpx.AsyncClient, viewer: TestUser
) -> None:
    anonymous = await client.get("/udf/history?symbol=NSE:RELIANCE&resolution=1&from=0&to=10")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    created = await client.post(
        "/api/v1/api-keys", json={"name": "chart", "scopes": ["read"]}, headers=viewer.headers
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    with_key = await client.get(
        "/udf/symbols?symbol=NSE:RELIANCE", headers={"Authorization": f"Bearer {key}"}
    )
    assert with_key.json()["ticker"] == "NSE:RELIANCE"


async def _publish_reliance(app: FastAPI) -> None:
    ctx: AppContext = app.state.ctx
    at = dt.datetime.combine(MONDAY, dt.time(10, 0), IST)
    quote = Quote(
        "NSE:RELIANCE",
        Decimal("1521.50"),
        at,
        bid=Decimal("1521.45"),
        ask=Decimal("1521.55"),
        volume=Decimal("2000000"),
        prev_close=Decimal("1410.35"),
    )
    await QuoteService(ctx.cache, ctx.bus).publish([quote])


async def test_quotes_in_the_udf_shape(
    app: FastAPI, client: httpx.AsyncClient, viewer: TestUser
) -> None:
    await _publish_reliance(app)
    response = await client.get(
        "/udf/quotes",
        params={"symbols": "NSE:RELIANCE,reliance,NASDAQ:AAPL,NSE:NOPE"},
        headers=viewer.headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["s"] == "ok"
    reliance = {
        "ch": 111.15,  # last - previous close
        "chp": 7.88,  # 111.15 / 1410.35, in percent
        "short_name": "RELIANCE",
        "exchange": "NSE",
        "description": "Reliance Industries",
        "lp": 1521.5,
        "ask": 1521.55,
        "bid": 1521.45,
        "spread": 0.1,
        "open_price": 1500.0,  # Monday's daily bar
        "high_price": 1525.5,
        "low_price": 1490.0,
        "prev_close_price": 1410.35,
        "volume": 2000000.0,
    }
    assert body["d"][0] == {"s": "ok", "n": "NSE:RELIANCE", "v": reliance}
    assert body["d"][1] == {"s": "ok", "n": "reliance", "v": reliance}  # n as requested
    assert body["d"][2] == {"s": "error", "n": "NASDAQ:AAPL", "v": {}, "errmsg": "no_quote"}
    assert body["d"][3] == {"s": "error", "n": "NSE:NOPE", "v": {}, "errmsg": "unknown_symbol"}
    for item in body["d"][:2]:
        assert all(isinstance(v, float) for k, v in item["v"].items() if k not in _TEXT)
    empty = await client.get("/udf/quotes", params={"symbols": " , "}, headers=viewer.headers)
    assert empty.json() == {"s": "error", "errmsg": "give at least one symbol"}


_TEXT = {"short_name", "exchange", "description"}


async def test_quotes_need_a_read_credential(
    app: FastAPI, client: httpx.AsyncClient, viewer: TestUser, users: Users
) -> None:
    await _publish_reliance(app)
    anonymous = await client.get("/udf/quotes", params={"symbols": "NSE:RELIANCE"})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    key = await users.api_key(viewer)
    by_key = await client.get(
        "/udf/quotes",
        params={"symbols": "NSE:RELIANCE"},
        headers={"Authorization": f"Bearer {key.key}", "Origin": CHARTS},
    )
    assert by_key.status_code == 200
    assert by_key.json()["d"][0]["s"] == "ok"
    assert by_key.headers["access-control-allow-origin"] == CHARTS


async def test_preflight_from_the_charts_origin(client: httpx.AsyncClient) -> None:
    # What a browser sends before the datafeed's first request with an Authorization header.
    preflight = {
        "Origin": CHARTS,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    for path in ("/udf/config", "/udf/quotes?symbols=NSE:RELIANCE", "/udf/history"):
        response = await client.options(path, headers=preflight)
        assert response.status_code == 200, path
        assert response.headers["access-control-allow-origin"] == CHARTS
        assert "GET" in response.headers["access-control-allow-methods"]
        assert "authorization" in response.headers["access-control-allow-headers"].lower()
        assert response.headers["access-control-allow-credentials"] == "true"
    other = await client.options(
        "/udf/quotes?symbols=NSE:RELIANCE", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    config = await client.get("/udf/config", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in config.headers
