"""AlphaVantageProvider against a local server speaking Alpha Vantage's ``/query`` API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, Quote, Timeframe
from quantdesk.marketdata.providers.alphavantage import (
    AlphaVantageProvider,
    alphavantage_symbol,
)
from quantdesk.marketdata.providers.base import Provider
from quantdesk.platform.exceptions import (
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    UpstreamError,
)
from tests.marketdata.providers.conftest import FAST_POLICY
from tests.marketdata.providers.fake_servers import (
    AV_DAILY_INFORMATION,
    AV_MINUTE_NOTE,
    AV_PREMIUM_INFORMATION,
    AlphaVantageFake,
    FakeServer,
    Reply,
    VirtualTime,
    av_quote,
    serve,
)

AV_KEY = "AVKEY0123456789XY"
IBM = Instrument(Exchange.NYSE, "IBM", "IBM", InstrumentType.EQUITY, "USD")
RELIANCE_BSE = Instrument(Exchange.BSE, "RELIANCE", "Reliance", InstrumentType.EQUITY, "INR")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def av_fake() -> AlphaVantageFake:
    return AlphaVantageFake(api_key=AV_KEY)


@pytest.fixture
def av_server(av_fake: AlphaVantageFake) -> Iterator[FakeServer]:
    yield from serve(av_fake)


@pytest.fixture
async def av(av_server: FakeServer, vtime: VirtualTime) -> AsyncIterator[AlphaVantageProvider]:
    provider = AlphaVantageProvider(
        AV_KEY,
        base_url=av_server.base_url,
        policy=FAST_POLICY,
        clock=vtime.clock,
        sleep=vtime.sleep,
    )
    yield provider
    await provider.aclose()


def test_is_a_provider(av: AlphaVantageProvider) -> None:
    assert isinstance(av, Provider)


def test_symbol_mapping() -> None:
    assert alphavantage_symbol(IBM) == "IBM"
    assert alphavantage_symbol(RELIANCE_BSE) == "RELIANCE.BSE"
    with pytest.raises(InvalidInput, match="use BSE:RELIANCE"):
        alphavantage_symbol(
            Instrument(Exchange.NSE, "RELIANCE", "Reliance", InstrumentType.EQUITY, "INR")
        )
    with pytest.raises(InvalidInput, match="equities and ETFs, not index instruments"):
        alphavantage_symbol(
            Instrument(Exchange.NSE, "NIFTY 50", "Nifty", InstrumentType.INDEX, "INR")
        )


async def test_daily_bars(
    av: AlphaVantageProvider, av_fake: AlphaVantageFake, av_server: FakeServer
) -> None:
    av_fake.daily["IBM"] = {
        "2024-01-03": ("160.1000", "161.0000", "159.5000", "160.2200", "4200000"),
        "2024-01-04": ("160.2200", "162.4500", "160.0100", "161.1000", "5187210"),
        "2024-01-05": ("161.1000", "161.9900", "159.8000", "160.0200", "3046386"),
    }
    bars = await av.historical_bars(
        IBM, Timeframe.D1, utc("2024-01-04T00:00:00"), utc("2024-01-05T00:00:00")
    )
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in bars] == [
        (
            utc("2024-01-04T00:00:00"),
            Decimal("160.22"),
            Decimal("162.45"),
            Decimal("160.01"),
            Decimal("161.1"),
            Decimal(5187210),
        ),
        (
            utc("2024-01-05T00:00:00"),
            Decimal("161.1"),
            Decimal("161.99"),
            Decimal("159.8"),
            Decimal("160.02"),
            Decimal(3046386),
        ),
    ]
    request = av_server.requests[-1]
    assert (request.param("function"), request.param("symbol")) == ("TIME_SERIES_DAILY", "IBM")
    assert request.param("outputsize") == "full"  # 2024 is older than "compact" reaches


async def test_recent_daily_bars_ask_for_the_compact_series(
    av: AlphaVantageProvider, av_fake: AlphaVantageFake, av_server: FakeServer
) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day = (today - timedelta(days=3)).date().isoformat()
    av_fake.daily["RELIANCE.BSE"] = {day: ("2901.5", "2930", "2890.05", "2925.8", "251234")}
    bars = await av.historical_bars(RELIANCE_BSE, Timeframe.D1, today - timedelta(days=10), today)
    assert [(b.ts.date().isoformat(), b.close) for b in bars] == [(day, Decimal("2925.8"))]
    assert av_server.requests[-1].param("outputsize") == "compact"
    assert av_server.requests[-1].param("symbol") == "RELIANCE.BSE"


async def test_intraday_bars_convert_eastern_time_to_utc_month_by_month(
    av: AlphaVantageProvider, av_fake: AlphaVantageFake, av_server: FakeServer
) -> None:
    av_fake.intraday["IBM"] = {
        "2024-06-28 15:59:00": ("168.1000", "168.2500", "168.0500", "168.2000", "120345"),
        "2024-07-01 09:30:00": ("168.4000", "168.9000", "168.3000", "168.8500", "98321"),
        "2024-07-01 09:31:00": ("168.8500", "169.0000", "168.7000", "168.9900", "45012"),
    }
    bars = await av.historical_bars(
        IBM, Timeframe.M1, utc("2024-06-28T19:59:00"), utc("2024-07-01T13:30:00")
    )
    # US/Eastern is UTC-4 in summer.
    assert [(b.ts, b.close, b.volume) for b in bars] == [
        (utc("2024-06-28T19:59:00"), Decimal("168.2"), Decimal(120345)),
        (utc("2024-07-01T13:30:00"), Decimal("168.85"), Decimal(98321)),
    ]
    assert [r.param("month") for r in av_server.requests] == ["2024-06", "2024-07"]
    assert {r.param("interval") for r in av_server.requests} == {"1min"}


async def test_winter_intraday_is_five_hours_behind_utc(
    av: AlphaVantageProvider, av_fake: AlphaVantageFake
) -> None:
    av_fake.intraday["IBM"] = {"2024-01-05 09:30:00": ("160", "161", "159", "160.5", "1000")}
    bars = await av.historical_bars(
        IBM, Timeframe.M1, utc("2024-01-05T14:00:00"), utc("2024-01-05T15:00:00")
    )
    assert [b.ts for b in bars] == [utc("2024-01-05T14:30:00")]


async def test_quote(av: AlphaVantageProvider, av_fake: AlphaVantageFake) -> None:
    av_fake.quotes["IBM"] = av_quote(
        "IBM", "160.0200", "2024-01-05", "160.8600", "-0.8400", "3046386"
    )
    assert await av.quote(IBM) == Quote(
        key="NYSE:IBM",
        last=Decimal("160.02"),
        ts=utc("2024-01-05T00:00:00"),
        volume=Decimal(3046386),
        change=Decimal("-0.84"),
        prev_close=Decimal("160.86"),
    )


async def test_unknown_symbol_quote_is_not_found(av: AlphaVantageProvider) -> None:
    with pytest.raises(NotFound, match="ZZZZQ"):
        await av.quote(Instrument(Exchange.NYSE, "ZZZZQ", "?", InstrumentType.EQUITY, "USD"))


async def test_quote_for_another_symbol_is_an_upstream_error(
    av: AlphaVantageProvider, av_fake: AlphaVantageFake
) -> None:
    av_fake.quotes["IBM"] = av_quote("IBMX", "1", "2024-01-05", "1", "0", "1")
    with pytest.raises(UpstreamError, match="'IBMX' when asked for 'IBM'") as caught:
        await av.quote(IBM)
    assert caught.value.provider == "alphavantage"


async def test_unknown_symbol_series_is_an_upstream_error(av: AlphaVantageProvider) -> None:
    with pytest.raises(UpstreamError, match="Invalid API call") as caught:
        await av.historical_bars(
            IBM, Timeframe.D1, utc("2024-01-01T00:00:00"), utc("2024-01-31T00:00:00")
        )
    assert caught.value.status == 502


async def test_note_rate_limit_is_retried_like_a_429(
    av: AlphaVantageProvider,
    av_fake: AlphaVantageFake,
    av_server: FakeServer,
    vtime: VirtualTime,
) -> None:
    av_fake.quotes["IBM"] = av_quote("IBM", "160.0200", "2024-01-05", "160.8600", "-0.8400", "1")
    av_server.inject("/query", Reply.json({"Note": AV_MINUTE_NOTE}))
    assert (await av.quote(IBM)).last == Decimal("160.02")
    assert av_server.hit_count("/query") == 2
    assert len(vtime.sleeps) == 1


async def test_persistent_note_is_unavailable_after_the_retries(
    av: AlphaVantageProvider, av_server: FakeServer
) -> None:
    av_server.fail_always("/query", Reply.json({"Note": AV_MINUTE_NOTE}))
    with pytest.raises(ServiceUnavailable, match="rate-limited") as caught:
        await av.quote(IBM)
    assert caught.value.dependency == "provider:alphavantage"
    assert av_server.hit_count("/query") == 3


async def test_daily_quota_information_fails_at_once(
    av: AlphaVantageProvider, av_server: FakeServer, vtime: VirtualTime
) -> None:
    av_server.fail_always("/query", Reply.json({"Information": AV_DAILY_INFORMATION}))
    with pytest.raises(ServiceUnavailable, match="daily request quota") as caught:
        await av.quote(IBM)
    assert caught.value.retry_after == 3600
    assert av_server.hit_count("/query") == 1
    assert vtime.sleeps == []


async def test_premium_only_information_is_an_upstream_error(
    av: AlphaVantageProvider, av_server: FakeServer
) -> None:
    av_server.inject("/query", Reply.json({"Information": AV_PREMIUM_INFORMATION}))
    with pytest.raises(UpstreamError, match="premium endpoint"):
        await av.quote(IBM)
    assert av_server.hit_count("/query") == 1


async def test_key_goes_in_the_query_string_and_nowhere_else(
    av_server: FakeServer, av_fake: AlphaVantageFake, caplog: pytest.LogCaptureFixture
) -> None:
    av_fake.quotes["IBM"] = av_quote("IBM", "1", "2024-01-05", "1", "0", "1")
    wrong = AlphaVantageProvider("WRONGKEY42", base_url=av_server.base_url, policy=FAST_POLICY)
    right = AlphaVantageProvider(AV_KEY, base_url=av_server.base_url, policy=FAST_POLICY)
    try:
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(UpstreamError, match="apikey is invalid") as caught:
                await wrong.quote(IBM)
            await right.quote(IBM)
    finally:
        await wrong.aclose()
        await right.aclose()
    assert "WRONGKEY42" not in str(caught.value)
    assert [r.param("apikey") for r in av_server.requests] == ["WRONGKEY42", AV_KEY]
    assert caplog.records  # httpx logged the requests…
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert AV_KEY not in logged  # …without the key
    assert "WRONGKEY42" not in logged


async def test_malformed_series_is_an_upstream_error(
    av: AlphaVantageProvider, av_server: FakeServer
) -> None:
    av_server.inject("/query", Reply.json({"Meta Data": {"2. Symbol": "IBM"}}))
    with pytest.raises(UpstreamError, match="Time Series") as caught:
        await av.historical_bars(
            IBM, Timeframe.D1, utc("2024-01-01T00:00:00"), utc("2024-01-31T00:00:00")
        )
    assert caught.value.provider == "alphavantage"


async def test_search(
    av: AlphaVantageProvider, av_fake: AlphaVantageFake, av_server: FakeServer
) -> None:
    def match(symbol: str, name: str, kind: str, region: str, currency: str) -> dict[str, str]:
        return {
            "1. symbol": symbol,
            "2. name": name,
            "3. type": kind,
            "4. region": region,
            "5. marketOpen": "09:30",
            "6. marketClose": "16:00",
            "7. timezone": "UTC-04",
            "8. currency": currency,
            "9. matchScore": "0.8000",
        }

    av_fake.matches["ibm"] = [
        match("IBM", "International Business Machines Corp", "Equity", "United States", "USD"),
        match("IBM.LON", "International Business Machines Corp", "Equity", "United Kingdom", "GBX"),
        match("IBMZZ", "Unlisted thing", "Equity", "United States", "USD"),
    ]
    av_fake.matches["reliance"] = [
        match("RELIANCE.BSE", "Reliance Industries Ltd", "Equity", "India/Bombay", "INR"),
        match("RELIANCE.TRT", "Reliance thing", "Mutual Fund", "Toronto", "CAD"),
    ]
    av_fake.matches["spy"] = [
        match("SPY", "SPDR S&P 500 ETF Trust", "ETF", "United States", "USD"),
    ]
    av_fake.listing_csv = (
        "symbol,name,exchange,assetType,ipoDate,delistingDate,status\r\n"
        "IBM,International Business Machines Corp,NYSE,Stock,1962-01-02,null,Active\r\n"
        "SPY,SPDR S&P 500 ETF TRUST,NYSE ARCA,ETF,1993-01-29,null,Active\r\n"
        "AAPL,Apple Inc,NASDAQ,Stock,1980-12-12,null,Active\r\n"
    )
    assert await av.search_instruments("IBM") == [
        Instrument(
            Exchange.NYSE,
            "IBM",
            "International Business Machines Corp",
            InstrumentType.EQUITY,
            "USD",
            provider_token="IBM",
        ),
    ]
    assert [(i.key, i.currency) for i in await av.search_instruments("reliance")] == [
        ("BSE:RELIANCE", "INR")
    ]
    spy = await av.search_instruments("spy")
    assert [(i.key, i.type) for i in spy] == [("NYSE:SPY", InstrumentType.ETF)]
    listing_calls = [r for r in av_server.requests if r.param("function") == "LISTING_STATUS"]
    assert len(listing_calls) == 1  # fetched once a day, not per search


async def test_rate_limited_listing_is_retried(
    av: AlphaVantageProvider, av_fake: AlphaVantageFake, av_server: FakeServer
) -> None:
    av_fake.matches["aapl"] = [
        {
            "1. symbol": "AAPL",
            "2. name": "Apple Inc",
            "3. type": "Equity",
            "4. region": "United States",
            "8. currency": "USD",
        },
    ]
    av_fake.listing_csv += "AAPL,Apple Inc,NASDAQ,Stock,1980-12-12,null,Active\r\n"
    av_server.inject(
        "/query",
        Reply.json({"bestMatches": av_fake.matches["aapl"]}),  # the search itself
        Reply.json({"Note": AV_MINUTE_NOTE}),  # the listing, throttled once
    )
    found = await av.search_instruments("aapl")
    assert [i.key for i in found] == ["NASDAQ:AAPL"]
    assert av_server.hit_count("/query") == 3
