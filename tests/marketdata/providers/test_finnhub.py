"""FinnhubProvider against a local server speaking Finnhub's REST protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
from quantdesk.marketdata.providers.finnhub import FinnhubProvider, finnhub_symbol
from quantdesk.platform.exceptions import (
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    UpstreamError,
)
from tests.marketdata.providers.conftest import FAST_POLICY, FINNHUB_KEY
from tests.marketdata.providers.fake_servers import (
    FakeServer,
    FinnhubFake,
    Reply,
    Truncated,
    VirtualTime,
    utc_epoch,
)

AAPL = Instrument(Exchange.NASDAQ, "AAPL", "Apple Inc", InstrumentType.EQUITY, "USD")
RELIANCE = Instrument(Exchange.NSE, "RELIANCE", "Reliance", InstrumentType.EQUITY, "INR")
NIFTY = Instrument(Exchange.NSE, "NIFTY 50", "Nifty 50", InstrumentType.INDEX, "INR")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
async def finnhub(finnhub_server: FakeServer, vtime: VirtualTime) -> AsyncIterator[FinnhubProvider]:
    provider = FinnhubProvider(
        FINNHUB_KEY,
        base_url=f"{finnhub_server.base_url}/api/v1",
        policy=FAST_POLICY,
        clock=vtime.clock,
        sleep=vtime.sleep,
    )
    yield provider
    await provider.aclose()


def test_is_a_provider(finnhub: FinnhubProvider) -> None:
    assert isinstance(finnhub, Provider)
    assert finnhub.name == "finnhub"


@pytest.mark.parametrize(
    ("instrument", "symbol"),
    [
        (AAPL, "AAPL"),
        (Instrument(Exchange.NYSE, "BRK.B", "Berkshire", InstrumentType.EQUITY, "USD"), "BRK.B"),
        (RELIANCE, "RELIANCE.NS"),
        (
            Instrument(Exchange.BSE, "RELIANCE", "Reliance", InstrumentType.EQUITY, "INR"),
            "RELIANCE.BO",
        ),
        (NIFTY, "^NSEI"),
        (Instrument(Exchange.NSE, "NIFTY BANK", "Bank", InstrumentType.INDEX, "INR"), "^NSEBANK"),
        (Instrument(Exchange.BSE, "SENSEX", "Sensex", InstrumentType.INDEX, "INR"), "^BSESN"),
    ],
)
def test_symbol_mapping(instrument: Instrument, symbol: str) -> None:
    assert finnhub_symbol(instrument) == symbol


@pytest.mark.parametrize(
    "instrument",
    [
        Instrument(
            Exchange.OPRA,
            "SPY251219C00600000",
            "SPY C600",
            InstrumentType.OPTION,
            "USD",
            expiry=date(2025, 12, 19),
            strike=Decimal(600),
            option_type=OptionType.CALL,
        ),
        Instrument(Exchange.NFO, "NIFTY25SEPFUT", "Nifty fut", InstrumentType.FUTURE, "INR"),
        Instrument(Exchange.NSE, "NIFTY IT", "Nifty IT", InstrumentType.INDEX, "INR"),
    ],
)
def test_unsupported_instruments_are_invalid_input(instrument: Instrument) -> None:
    with pytest.raises(InvalidInput) as caught:
        finnhub_symbol(instrument)
    assert caught.value.status == 422


async def test_quote(finnhub: FinnhubProvider, finnhub_fake: FinnhubFake) -> None:
    finnhub_fake.quotes["AAPL"] = {
        "c": 261.74,
        "d": 1.5,
        "dp": 0.5764,
        "h": 263.31,
        "l": 260.68,
        "o": 261.07,
        "pc": 260.24,
        "t": 1582641000,
    }
    quote = await finnhub.quote(AAPL)
    assert quote == Quote(
        key="NASDAQ:AAPL",
        last=Decimal("261.74"),
        ts=utc("2020-02-25T14:30:00"),
        change=Decimal("1.5"),
        prev_close=Decimal("260.24"),
    )


async def test_quote_of_an_nse_listing_asks_for_the_ns_symbol(
    finnhub: FinnhubProvider, finnhub_fake: FinnhubFake, finnhub_server: FakeServer
) -> None:
    finnhub_fake.quotes["RELIANCE.NS"] = {
        "c": 2950.05,
        "d": -12.4,
        "dp": -0.4186,
        "h": 2971,
        "l": 2940.1,
        "o": 2965,
        "pc": 2962.45,
        "t": utc_epoch("2024-03-01T10:00:00"),
    }
    quote = await finnhub.quote(RELIANCE)
    assert (quote.key, quote.last, quote.change) == (
        "NSE:RELIANCE",
        Decimal("2950.05"),
        Decimal("-12.4"),
    )
    assert quote.ts == utc("2024-03-01T10:00:00")
    request = finnhub_server.requests[-1]
    assert request.param("symbol") == "RELIANCE.NS"
    assert request.param("token") is None  # the key travels in the header only
    assert request.headers["x-finnhub-token"] == FINNHUB_KEY


async def test_quotes_are_cached_briefly(
    finnhub: FinnhubProvider,
    finnhub_fake: FinnhubFake,
    finnhub_server: FakeServer,
    vtime: VirtualTime,
) -> None:
    finnhub_fake.quotes["AAPL"] = {"c": 1, "d": 0, "dp": 0, "h": 1, "l": 1, "o": 1, "pc": 1, "t": 1}
    await finnhub.quote(AAPL)
    await finnhub.quote(AAPL)
    assert finnhub_server.hit_count("/api/v1/quote") == 1
    vtime.advance(FAST_POLICY.quote_ttl + 0.5)
    await finnhub.quote(AAPL)
    assert finnhub_server.hit_count("/api/v1/quote") == 2


async def test_unknown_symbol_quote_is_not_found(finnhub: FinnhubProvider) -> None:
    unknown = Instrument(Exchange.NASDAQ, "ZZZZQ", "?", InstrumentType.EQUITY, "USD")
    with pytest.raises(NotFound) as caught:
        await finnhub.quote(unknown)
    assert "ZZZZQ" in caught.value.detail


async def test_daily_candles_are_exact_and_keyed_by_session_date(
    finnhub: FinnhubProvider, finnhub_fake: FinnhubFake, finnhub_server: FakeServer
) -> None:
    finnhub_fake.candles["AAPL", "D"] = [
        (utc_epoch("2024-01-02T00:00:00"), 187.15, 188.44, 183.885, 185.64, 82488674),
        (utc_epoch("2024-01-03T00:00:00"), 184.22, 185.88, 183.43, 184.25, 58414460),
        (utc_epoch("2024-01-04T00:00:00"), 182.15, 183.0872, 180.88, 181.91, 71983570),
    ]
    bars = await finnhub.historical_bars(
        AAPL, Timeframe.D1, utc("2024-01-03T00:00:00"), utc("2024-01-04T00:00:00")
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
    ]
    request = finnhub_server.requests[-1]
    assert request.param("resolution") == "D"
    # Padded by a day each side, because daily stamps may sit a day off (then trimmed).
    assert request.param("from") == str(utc_epoch("2024-01-02T00:00:00"))
    assert request.param("to") == str(utc_epoch("2024-01-05T00:00:00"))


async def test_daily_candles_stamped_at_exchange_midnight_map_to_the_session_date(
    finnhub: FinnhubProvider, finnhub_fake: FinnhubFake
) -> None:
    # 00:00 in Kolkata is 18:30 UTC the day before.
    finnhub_fake.candles["RELIANCE.NS", "D"] = [
        (utc_epoch("2024-01-02T18:30:00"), 2590, 2610.5, 2585.3, 2605.1, 4_123_456),
    ]
    bars = await finnhub.historical_bars(
        RELIANCE, Timeframe.D1, utc("2024-01-01T00:00:00"), utc("2024-01-31T00:00:00")
    )
    assert [(b.ts, b.close) for b in bars] == [(utc("2024-01-03T00:00:00"), Decimal("2605.1"))]


async def test_minute_candles(finnhub: FinnhubProvider, finnhub_fake: FinnhubFake) -> None:
    finnhub_fake.candles["AAPL", "1"] = [
        (utc_epoch("2024-01-05T14:31:00"), 181.9, 182.05, 181.8, 182.01, 120_400),
        (utc_epoch("2024-01-05T14:30:00"), 181.99, 182.1, 181.5, 181.9, 950_112),
        (utc_epoch("2024-01-05T14:32:00"), 182.01, 182.2, 182, 182.15, 98_000),
    ]
    bars = await finnhub.historical_bars(
        AAPL, Timeframe.M1, utc("2024-01-05T14:30:00"), utc("2024-01-05T14:31:00")
    )
    assert [(b.ts, b.open, b.close, b.volume) for b in bars] == [
        (utc("2024-01-05T14:30:00"), Decimal("181.99"), Decimal("181.9"), Decimal(950112)),
        (utc("2024-01-05T14:31:00"), Decimal("181.9"), Decimal("182.01"), Decimal(120400)),
    ]
    assert all(b.ts.tzinfo is UTC for b in bars)


async def test_no_data_is_an_empty_series(finnhub: FinnhubProvider) -> None:
    bars = await finnhub.historical_bars(
        AAPL, Timeframe.D1, utc("2024-01-01T00:00:00"), utc("2024-01-31T00:00:00")
    )
    assert bars == []


@pytest.mark.parametrize(
    "payload",
    [
        {"s": "ok", "t": [1], "o": [1], "h": [1], "l": [1], "c": [1]},
        {"s": "ok", "t": [1, 2], "o": [1], "h": [1], "l": [1], "c": [1], "v": [1]},
        {"s": "ok", "t": [1], "o": ["x"], "h": [1], "l": [1], "c": [1], "v": [1]},
        {"s": "ok", "t": ["yesterday"], "o": [1], "h": [1], "l": [1], "c": [1], "v": [1]},
        {"s": "error"},
        [1, 2, 3],
    ],
)
async def test_malformed_candles_are_upstream_errors(
    finnhub: FinnhubProvider, finnhub_server: FakeServer, payload: object
) -> None:
    finnhub_server.inject("/api/v1/stock/candle", Reply.json(payload))
    with pytest.raises(UpstreamError) as caught:
        await finnhub.historical_bars(
            AAPL, Timeframe.D1, utc("2024-01-01T00:00:00"), utc("2024-01-31T00:00:00")
        )
    assert caught.value.provider == "finnhub"
    assert caught.value.status == 502


async def test_bad_shapes_count_against_the_breaker_and_are_never_cached(
    finnhub: FinnhubProvider, finnhub_fake: FinnhubFake, finnhub_server: FakeServer
) -> None:
    path = "/api/v1/stock/candle"
    finnhub_fake.candles["AAPL", "D"] = [(utc_epoch("2024-01-03T00:00:00"), 1, 2, 1, 2, 10)]
    window = (utc("2024-01-01T00:00:00"), utc("2024-01-31T00:00:00"))
    finnhub_server.inject(path, Reply.json({"s": "ok", "t": [1]}))
    with pytest.raises(UpstreamError):
        await finnhub.historical_bars(AAPL, Timeframe.D1, *window)
    # The same request again reaches the server (the bad answer was not cached) and succeeds.
    assert len(await finnhub.historical_bars(AAPL, Timeframe.D1, *window)) == 1
    assert finnhub_server.hit_count(path) == 2
    finnhub_server.fail_always(path, Reply.json({"s": "ok", "t": [1]}))
    other = (utc("2024-02-01T00:00:00"), utc("2024-02-28T00:00:00"))
    for _ in range(2):  # breaker_failure_threshold=2 malformed answers in a row
        with pytest.raises(UpstreamError):
            await finnhub.historical_bars(AAPL, Timeframe.D1, *other)
    with pytest.raises(ServiceUnavailable, match="circuit is open"):
        await finnhub.historical_bars(AAPL, Timeframe.D1, *other)
    assert finnhub_server.hit_count(path) == 4


async def test_truncated_quote_is_an_upstream_error(
    finnhub: FinnhubProvider, finnhub_server: FakeServer
) -> None:
    finnhub_server.fail_always("/api/v1/quote", Truncated(b'{"c": 261.7', declared=90))
    with pytest.raises(UpstreamError) as caught:
        await finnhub.quote(AAPL)
    assert caught.value.provider == "finnhub"


async def test_rate_limited_then_ok(
    finnhub: FinnhubProvider,
    finnhub_fake: FinnhubFake,
    finnhub_server: FakeServer,
    vtime: VirtualTime,
) -> None:
    finnhub_fake.quotes["AAPL"] = {"c": 5, "d": 0, "dp": 0, "h": 5, "l": 5, "o": 5, "pc": 5, "t": 9}
    finnhub_server.inject(
        "/api/v1/quote", Reply.json({"error": "API limit reached."}, 429, {"Retry-After": "1"})
    )
    assert (await finnhub.quote(AAPL)).last == Decimal(5)
    assert vtime.sleeps == [1.0]


async def test_down_provider_is_unavailable_then_circuit_opens(
    finnhub: FinnhubProvider, finnhub_server: FakeServer
) -> None:
    finnhub_server.fail_always("/api/v1/quote", Reply.text("upstream down", status=503))
    for _ in range(2):
        with pytest.raises(ServiceUnavailable) as caught:
            await finnhub.quote(AAPL)
        assert caught.value.dependency == "provider:finnhub"
    with pytest.raises(ServiceUnavailable):
        await finnhub.historical_bars(
            AAPL, Timeframe.D1, utc("2024-01-01T00:00:00"), utc("2024-01-02T00:00:00")
        )
    # One breaker per provider: the open circuit also guards the candle endpoint.
    assert finnhub_server.hit_count("/api/v1/stock/candle") == 0


async def test_wrong_key_is_an_upstream_error(finnhub_server: FakeServer) -> None:
    provider = FinnhubProvider(
        "not-the-key", base_url=f"{finnhub_server.base_url}/api/v1", policy=FAST_POLICY
    )
    try:
        with pytest.raises(UpstreamError) as caught:
            await provider.quote(AAPL)
    finally:
        await provider.aclose()
    assert "Invalid API key" in caught.value.detail
    assert "not-the-key" not in caught.value.detail


async def test_search_maps_listings_to_our_exchanges(
    finnhub: FinnhubProvider, finnhub_fake: FinnhubFake, finnhub_server: FakeServer
) -> None:
    finnhub_fake.search_results["apple"] = [
        {
            "description": "APPLE INC",
            "displaySymbol": "AAPL",
            "symbol": "AAPL",
            "type": "Common Stock",
        },
        {
            "description": "APPLE INC",
            "displaySymbol": "AAPL.SW",
            "symbol": "AAPL.SW",
            "type": "Common Stock",
        },
        {
            "description": "APPLE HOSPITALITY REIT",
            "displaySymbol": "APLE",
            "symbol": "APLE",
            "type": "REIT",
        },
        {
            "description": "SOME WARRANT",
            "displaySymbol": "APWC",
            "symbol": "APWC",
            "type": "Warrant",
        },
    ]
    finnhub_fake.search_results["reliance"] = [
        {
            "description": "RELIANCE INDUSTRIES LTD",
            "displaySymbol": "RELIANCE.NS",
            "symbol": "RELIANCE.NS",
            "type": "Common Stock",
        },
        {
            "description": "RELIANCE INDUSTRIES LTD",
            "displaySymbol": "RELIANCE.BO",
            "symbol": "RELIANCE.BO",
            "type": "Common Stock",
        },
    ]
    finnhub_fake.search_results["nifty"] = [
        {"description": "NIFTY 50", "displaySymbol": "^NSEI", "symbol": "^NSEI", "type": "Index"},
    ]
    finnhub_fake.us_symbols = [
        {
            "currency": "USD",
            "description": "APPLE INC",
            "displaySymbol": "AAPL",
            "figi": "BBG000B9XRY4",
            "mic": "XNAS",
            "symbol": "AAPL",
            "type": "Common Stock",
        },
        {
            "currency": "USD",
            "description": "APPLE HOSPITALITY REIT",
            "displaySymbol": "APLE",
            "figi": "BBG001",
            "mic": "XNYS",
            "symbol": "APLE",
            "type": "REIT",
        },
        {
            "currency": "USD",
            "description": "SOME WARRANT",
            "displaySymbol": "APWC",
            "figi": "BBG002",
            "mic": "XNAS",
            "symbol": "APWC",
            "type": "Warrant",
        },
    ]

    apple = await finnhub.search_instruments("  Apple ")
    assert apple == [
        Instrument(
            Exchange.NASDAQ,
            "AAPL",
            "APPLE INC",
            InstrumentType.EQUITY,
            "USD",
            provider_token="AAPL",
        ),
        Instrument(
            Exchange.NYSE,
            "APLE",
            "APPLE HOSPITALITY REIT",
            InstrumentType.EQUITY,
            "USD",
            provider_token="APLE",
        ),
    ]
    reliance = await finnhub.search_instruments("reliance")
    assert [(i.key, i.currency, i.provider_token) for i in reliance] == [
        ("NSE:RELIANCE", "INR", "RELIANCE.NS"),
        ("BSE:RELIANCE", "INR", "RELIANCE.BO"),
    ]
    nifty = await finnhub.search_instruments("nifty")
    assert [(i.key, i.type) for i in nifty] == [("NSE:NIFTY 50", InstrumentType.INDEX)]
    await finnhub.search_instruments("apple")
    # The US listing is fetched once (only when a US-looking symbol needs its venue), then cached.
    assert finnhub_server.hit_count("/api/v1/stock/symbol") == 1


async def test_empty_search_is_invalid(finnhub: FinnhubProvider) -> None:
    with pytest.raises(InvalidInput):
        await finnhub.search_instruments("   ")


@pytest.mark.parametrize(
    ("timeframe", "start", "end"),
    [
        (Timeframe.M5, utc("2024-01-01T00:00:00"), utc("2024-01-02T00:00:00")),
        (Timeframe.D1, datetime(2024, 1, 1), utc("2024-01-02T00:00:00")),
        (Timeframe.D1, utc("2024-01-03T00:00:00"), utc("2024-01-02T00:00:00")),
    ],
)
async def test_bad_bar_requests_are_refused_before_any_call(
    finnhub: FinnhubProvider,
    finnhub_server: FakeServer,
    timeframe: Timeframe,
    start: datetime,
    end: datetime,
) -> None:
    with pytest.raises(InvalidInput):
        await finnhub.historical_bars(AAPL, timeframe, start, end)
    assert finnhub_server.requests == []


def test_an_api_key_is_required() -> None:
    with pytest.raises(ValueError, match="API key"):
        FinnhubProvider("")
