"""PolygonProvider against a local server speaking Polygon's REST protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from quantdesk.marketdata.domain import (
    Exchange,
    Instrument,
    InstrumentType,
    OptionType,
    Quote,
    Timeframe,
)
from quantdesk.marketdata.providers.base import Provider
from quantdesk.marketdata.providers.polygon import PolygonProvider, polygon_ticker
from quantdesk.platform.exceptions import (
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    UpstreamError,
)
from tests.marketdata.providers.conftest import FAST_POLICY
from tests.marketdata.providers.fake_servers import (
    FakeServer,
    PolygonFake,
    Reply,
    VirtualTime,
    serve,
    utc_epoch,
)

POLYGON_KEY = "pg_live_9Q2x7LmN"
AAPL = Instrument(Exchange.NASDAQ, "AAPL", "Apple Inc", InstrumentType.EQUITY, "USD")
SPY_CALL = Instrument(
    Exchange.OPRA,
    "SPY251219C00600000",
    "SPY 2025-12-19 600 C",
    InstrumentType.OPTION,
    "USD",
    lot_size=Decimal(100),
    underlying="NYSE:SPY",
    expiry=date(2025, 12, 19),
    strike=Decimal(600),
    option_type=OptionType.CALL,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ms(text: str) -> int:
    return utc_epoch(text) * 1000


@pytest.fixture
def polygon_fake() -> PolygonFake:
    return PolygonFake(api_key=POLYGON_KEY)


@pytest.fixture
def polygon_server(polygon_fake: PolygonFake) -> Iterator[FakeServer]:
    yield from serve(polygon_fake)


@pytest.fixture
async def polygon(polygon_server: FakeServer, vtime: VirtualTime) -> AsyncIterator[PolygonProvider]:
    provider = PolygonProvider(
        POLYGON_KEY,
        base_url=polygon_server.base_url,
        policy=FAST_POLICY,
        clock=vtime.clock,
        sleep=vtime.sleep,
    )
    yield provider
    await provider.aclose()


def test_is_a_provider(polygon: PolygonProvider) -> None:
    assert isinstance(polygon, Provider)


def test_ticker_mapping() -> None:
    assert polygon_ticker(AAPL) == "AAPL"
    assert (
        polygon_ticker(
            Instrument(Exchange.NYSE, "BRK.B", "Berkshire B", InstrumentType.EQUITY, "USD")
        )
        == "BRK.B"
    )
    assert polygon_ticker(SPY_CALL) == "O:SPY251219C00600000"
    with pytest.raises(InvalidInput, match="OCC"):
        polygon_ticker(Instrument(Exchange.OPRA, "SPY-CALL", "?", InstrumentType.OPTION, "USD"))
    with pytest.raises(InvalidInput, match="NSE"):
        polygon_ticker(Instrument(Exchange.NSE, "RELIANCE", "R", InstrumentType.EQUITY, "INR"))


async def test_daily_bars_follow_next_url_pages(
    polygon: PolygonProvider, polygon_fake: PolygonFake, polygon_server: FakeServer
) -> None:
    polygon_fake.page_size = 2
    # Polygon stamps daily bars at 00:00 New York time (05:00 UTC in winter).
    polygon_fake.aggs["AAPL", "day"] = [
        {
            "v": 58414460,
            "vw": 184.5,
            "o": 184.22,
            "c": 184.25,
            "h": 185.88,
            "l": 183.43,
            "t": ms("2024-01-03T05:00:00"),
            "n": 656853,
        },
        {
            "v": 71983570,
            "vw": 181.9,
            "o": 182.15,
            "c": 181.91,
            "h": 183.0872,
            "l": 180.88,
            "t": ms("2024-01-04T05:00:00"),
            "n": 712975,
        },
        {
            "v": 62379661,
            "vw": 181.2,
            "o": 181.99,
            "c": 181.18,
            "h": 182.76,
            "l": 180.17,
            "t": ms("2024-01-05T05:00:00"),
            "n": 682383,
        },
    ]
    bars = await polygon.historical_bars(
        AAPL, Timeframe.D1, utc("2024-01-03T00:00:00"), utc("2024-01-05T00:00:00")
    )
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in bars] == [
        (
            utc("2024-01-03T00:00:00"),
            Decimal("184.22"),
            Decimal("185.88"),
            Decimal("183.43"),
            Decimal("184.25"),
            Decimal(58414460),
        ),
        (
            utc("2024-01-04T00:00:00"),
            Decimal("182.15"),
            Decimal("183.0872"),
            Decimal("180.88"),
            Decimal("181.91"),
            Decimal(71983570),
        ),
        (
            utc("2024-01-05T00:00:00"),
            Decimal("181.99"),
            Decimal("182.76"),
            Decimal("180.17"),
            Decimal("181.18"),
            Decimal(62379661),
        ),
    ]
    paths = [r.path for r in polygon_server.requests]
    assert paths == ["/v2/aggs/ticker/AAPL/range/1/day/2024-01-02/2024-01-06"] * 2
    first, second = polygon_server.requests
    assert (first.param("adjusted"), first.param("sort"), first.param("limit")) == (
        "true",
        "asc",
        "50000",
    )
    assert second.param("cursor") == "2"
    assert {r.headers["authorization"] for r in polygon_server.requests} == {
        f"Bearer {POLYGON_KEY}"
    }
    assert all(r.param("apiKey") is None for r in polygon_server.requests)


async def test_minute_bars_use_millisecond_bounds(
    polygon: PolygonProvider, polygon_fake: PolygonFake, polygon_server: FakeServer
) -> None:
    polygon_fake.aggs["AAPL", "minute"] = [
        {
            "v": 950112,
            "o": 181.99,
            "c": 181.9,
            "h": 182.1,
            "l": 181.5,
            "t": ms("2024-01-05T14:30:00"),
        },
        {
            "v": 120400,
            "o": 181.9,
            "c": 182.01,
            "h": 182.05,
            "l": 181.8,
            "t": ms("2024-01-05T14:31:00"),
        },
    ]
    bars = await polygon.historical_bars(
        AAPL, Timeframe.M1, utc("2024-01-05T14:30:00"), utc("2024-01-05T14:30:30")
    )
    assert [(b.ts, b.close) for b in bars] == [(utc("2024-01-05T14:30:00"), Decimal("181.9"))]
    assert polygon_server.requests[0].path == (
        f"/v2/aggs/ticker/AAPL/range/1/minute/{ms('2024-01-05T14:30:00')}"
        f"/{ms('2024-01-05T14:30:30')}"
    )


async def test_option_bars(polygon: PolygonProvider, polygon_fake: PolygonFake) -> None:
    polygon_fake.aggs["O:SPY251219C00600000", "day"] = [
        {"v": 1520, "o": 12.4, "c": 13.05, "h": 13.2, "l": 12.1, "t": ms("2025-06-02T04:00:00")},
    ]
    bars = await polygon.historical_bars(
        SPY_CALL, Timeframe.D1, utc("2025-06-01T00:00:00"), utc("2025-06-30T00:00:00")
    )
    # 00:00 New York in summer is 04:00 UTC: the session of 2 June.
    assert [(b.ts, b.close, b.volume) for b in bars] == [
        (utc("2025-06-02T00:00:00"), Decimal("13.05"), Decimal(1520))
    ]


async def test_no_results_is_an_empty_series(polygon: PolygonProvider) -> None:
    assert (
        await polygon.historical_bars(
            AAPL, Timeframe.D1, utc("2024-01-01T00:00:00"), utc("2024-01-31T00:00:00")
        )
        == []
    )


async def test_aggregates_for_another_ticker_are_an_upstream_error(
    polygon: PolygonProvider, polygon_fake: PolygonFake
) -> None:
    polygon_fake.answer_for_ticker = "MSFT"
    with pytest.raises(UpstreamError, match="'MSFT' when asked for 'AAPL'") as caught:
        await polygon.historical_bars(
            AAPL, Timeframe.D1, utc("2024-01-01T00:00:00"), utc("2024-01-31T00:00:00")
        )
    assert caught.value.provider == "polygon"


async def test_next_url_off_the_api_host_is_not_followed(
    polygon: PolygonProvider, polygon_fake: PolygonFake, polygon_server: FakeServer
) -> None:
    polygon_fake.page_size = 1
    polygon_fake.next_url_origin = "http://collector.invalid"
    polygon_fake.aggs["AAPL", "day"] = [
        {"v": 1, "o": 1, "c": 1, "h": 1, "l": 1, "t": ms("2024-01-03T05:00:00")},
        {"v": 1, "o": 1, "c": 1, "h": 1, "l": 1, "t": ms("2024-01-04T05:00:00")},
    ]
    with pytest.raises(UpstreamError, match="off its API host"):
        await polygon.historical_bars(
            AAPL, Timeframe.D1, utc("2024-01-01T00:00:00"), utc("2024-01-31T00:00:00")
        )
    assert len(polygon_server.requests) == 1


async def test_stock_quote_from_the_snapshot(
    polygon: PolygonProvider, polygon_fake: PolygonFake, polygon_server: FakeServer
) -> None:
    trade_ns = utc_epoch("2024-01-05T20:59:59") * 1_000_000_000 + 123_456_789
    polygon_fake.snapshots["AAPL"] = {
        "ticker": "AAPL",
        "todaysChange": -0.73,
        "todaysChangePerc": -0.401,
        "updated": trade_ns,
        "day": {"o": 181.99, "h": 182.76, "l": 180.17, "c": 181.18, "v": 62379661, "vw": 181.2},
        "prevDay": {"o": 182.15, "h": 183.0872, "l": 180.88, "c": 181.91, "v": 71983570},
        "lastTrade": {
            "c": [14, 41],
            "i": "71675577320245",
            "p": 181.18,
            "s": 100,
            "t": trade_ns,
            "x": 4,
        },
        "lastQuote": {"P": 181.2, "S": 4, "p": 181.17, "s": 2, "t": trade_ns},
        "min": {"av": 62379661, "o": 181.2, "h": 181.25, "l": 181.1, "c": 181.18, "v": 4218},
    }
    assert await polygon.quote(AAPL) == Quote(
        key="NASDAQ:AAPL",
        last=Decimal("181.18"),
        ts=datetime(2024, 1, 5, 20, 59, 59, 123456, tzinfo=UTC),
        bid=Decimal("181.17"),
        ask=Decimal("181.2"),
        bid_size=Decimal(2),
        ask_size=Decimal(4),
        volume=Decimal(62379661),
        change=Decimal("-0.73"),
        prev_close=Decimal("181.91"),
    )
    assert polygon_server.requests[0].path == "/v2/snapshot/locale/us/markets/stocks/tickers/AAPL"


async def test_option_quote_from_the_option_snapshot(
    polygon: PolygonProvider, polygon_fake: PolygonFake, polygon_server: FakeServer
) -> None:
    trade_ns = utc_epoch("2025-06-02T19:45:00") * 1_000_000_000
    polygon_fake.option_snapshots["SPY", "O:SPY251219C00600000"] = {
        "break_even_price": 613.05,
        "day": {
            "change": 0.65,
            "change_percent": 5.24,
            "close": 13.05,
            "high": 13.2,
            "last_updated": trade_ns,
            "low": 12.1,
            "open": 12.4,
            "previous_close": 12.4,
            "volume": 1520,
            "vwap": 12.8,
        },
        "details": {
            "contract_type": "call",
            "exercise_style": "american",
            "expiration_date": "2025-12-19",
            "shares_per_contract": 100,
            "strike_price": 600,
            "ticker": "O:SPY251219C00600000",
        },
        "greeks": {"delta": 0.52, "gamma": 0.011, "theta": -0.09, "vega": 1.6},
        "implied_volatility": 0.17,
        "last_quote": {
            "ask": 13.1,
            "ask_size": 25,
            "bid": 13.0,
            "bid_size": 40,
            "last_updated": trade_ns,
            "midpoint": 13.05,
            "timeframe": "REAL-TIME",
        },
        "last_trade": {
            "conditions": [209],
            "exchange": 65,
            "price": 13.05,
            "sip_timestamp": trade_ns,
            "size": 3,
            "timeframe": "REAL-TIME",
        },
        "open_interest": 18234,
        "underlying_asset": {"price": 590.12, "ticker": "SPY"},
    }
    assert await polygon.quote(SPY_CALL) == Quote(
        key="OPRA:SPY251219C00600000",
        last=Decimal("13.05"),
        ts=utc("2025-06-02T19:45:00"),
        bid=Decimal("13.0"),
        ask=Decimal("13.1"),
        bid_size=Decimal(40),
        ask_size=Decimal(25),
        volume=Decimal(1520),
        oi=Decimal(18234),
        change=Decimal("0.65"),
        prev_close=Decimal("12.4"),
    )
    assert polygon_server.requests[0].path == "/v3/snapshot/options/SPY/O:SPY251219C00600000"


async def test_unknown_ticker_is_not_found(polygon: PolygonProvider) -> None:
    with pytest.raises(NotFound, match="no ticker ZZZZQ"):
        await polygon.quote(Instrument(Exchange.NYSE, "ZZZZQ", "?", InstrumentType.EQUITY, "USD"))
    with pytest.raises(NotFound, match="no option contract"):
        await polygon.quote(SPY_CALL)


async def test_plan_without_entitlement_is_an_upstream_error(
    polygon: PolygonProvider, polygon_server: FakeServer
) -> None:
    path = "/v2/snapshot/locale/us/markets/stocks/tickers/AAPL"
    polygon_server.inject(
        path,
        Reply.json(
            {
                "status": "NOT_AUTHORIZED",
                "request_id": "r-9",
                "message": "You are not entitled to this data. Please upgrade your plan.",
            },
            status=403,
        ),
    )
    with pytest.raises(UpstreamError, match="not entitled") as caught:
        await polygon.quote(AAPL)
    assert caught.value.extra["upstream_status"] == 403
    assert polygon_server.hit_count(path) == 1


async def test_wrong_key(polygon_server: FakeServer) -> None:
    provider = PolygonProvider("nope", base_url=polygon_server.base_url, policy=FAST_POLICY)
    try:
        with pytest.raises(UpstreamError, match="Unknown API Key"):
            await provider.search_instruments("apple")
    finally:
        await provider.aclose()


async def test_429_then_ok_and_persistent_outage_opens_the_circuit(
    polygon: PolygonProvider,
    polygon_fake: PolygonFake,
    polygon_server: FakeServer,
    vtime: VirtualTime,
) -> None:
    path = "/v3/reference/tickers"
    polygon_server.inject(
        path, Reply.json({"status": "ERROR", "error": "too many"}, 429, {"Retry-After": "3"})
    )
    assert await polygon.search_instruments("apple") == []
    assert vtime.sleeps == [3.0]
    polygon_server.fail_always(path, Reply.json({"status": "ERROR"}, status=502))
    for query in ("a", "b"):
        with pytest.raises(ServiceUnavailable):
            await polygon.search_instruments(query)
    hits = polygon_server.hit_count(path)
    with pytest.raises(ServiceUnavailable, match="circuit is open"):
        await polygon.search_instruments("c")
    assert polygon_server.hit_count(path) == hits


async def test_malformed_snapshot(polygon: PolygonProvider, polygon_server: FakeServer) -> None:
    polygon_server.inject(
        "/v2/snapshot/locale/us/markets/stocks/tickers/AAPL",
        Reply(
            200,
            b'{"status": "OK", "ticker": {"ticker": "AAPL", "lastTrade": {"p": 18',
            {"Content-Type": "application/json"},
        ),
    )
    with pytest.raises(UpstreamError, match="not valid JSON") as caught:
        await polygon.quote(AAPL)
    assert caught.value.provider == "polygon"


async def test_search(polygon: PolygonProvider, polygon_fake: PolygonFake) -> None:
    def ticker(symbol: str, name: str, kind: str, mic: str) -> dict[str, object]:
        return {
            "ticker": symbol,
            "name": name,
            "market": "stocks",
            "locale": "us",
            "primary_exchange": mic,
            "type": kind,
            "active": True,
            "currency_name": "usd",
            "last_updated_utc": "2024-01-05T00:00:00Z",
        }

    polygon_fake.tickers = [
        ticker("AAPL", "Apple Inc.", "CS", "XNAS"),
        ticker("APLE", "Apple Hospitality REIT, Inc.", "CS", "XNYS"),
        ticker("APPX", "Tradr Apple 2X ETF", "ETF", "BATS"),  # Cboe BZX: not modelled
        ticker("APLEW", "Apple warrant", "WARRANT", "XNAS"),
        ticker("SPY", "SPDR S&P 500 ETF Trust", "ETF", "ARCX"),
    ]
    found = await polygon.search_instruments("apple")
    assert found == [
        Instrument(
            Exchange.NASDAQ,
            "AAPL",
            "Apple Inc.",
            InstrumentType.EQUITY,
            "USD",
            provider_token="AAPL",
        ),
        Instrument(
            Exchange.NYSE,
            "APLE",
            "Apple Hospitality REIT, Inc.",
            InstrumentType.EQUITY,
            "USD",
            provider_token="APLE",
        ),
    ]
    assert [(i.key, i.type) for i in await polygon.search_instruments("spdr")] == [
        ("NYSE:SPY", InstrumentType.ETF)
    ]
