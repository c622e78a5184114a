"""KiteProvider and the login exchange against the local fake Kite REST API."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from decimal import Decimal

import pytest

from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, Timeframe
from quantdesk.marketdata.providers.base import Provider
from quantdesk.marketdata.providers.kite.auth import (
    IST,
    checksum,
    exchange_request_token,
    login_url,
    request_token_from,
    token_expiry,
)
from quantdesk.marketdata.providers.kite.client import KiteSessionMissing
from quantdesk.marketdata.providers.kite.historical import windows
from quantdesk.marketdata.providers.kite.provider import KiteProvider
from quantdesk.marketdata.providers.kite.quotes import QuoteKind
from quantdesk.platform.exceptions import InvalidInput, UpstreamError
from tests.marketdata.providers.fake_servers import Reply, VirtualTime
from tests.marketdata.providers.kite.conftest import MemoryTokens
from tests.marketdata.providers.kite.fake_kite import (
    API_KEY,
    API_SECRET,
    GOLD_TOKEN,
    SENSEX_CALL_TOKEN,
    USDINR_TOKEN,
    HttpFake,
    KiteFake,
)

RELIANCE = Instrument(
    Exchange.NSE, "RELIANCE", "Reliance", InstrumentType.EQUITY, "INR", provider_token="738561"
)
NIFTY_FUT = Instrument(
    Exchange.NFO,
    "NIFTY26DECFUT",
    "NIFTY FUT",
    InstrumentType.FUTURE,
    "INR",
    lot_size=Decimal(75),
    underlying="NIFTY",
    expiry=dt.date(2026, 12, 29),
)  # fmt: skip  (no provider_token: found in the dump)


def ist(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=IST)


def test_is_a_provider(kite: KiteProvider) -> None:
    assert isinstance(kite, Provider)


def test_login_url_checksum_expiry_and_pasted_tokens() -> None:
    assert login_url("abc123") == "https://kite.zerodha.com/connect/login?v=3&api_key=abc123"
    # SHA-256 over the plain concatenation, as pykiteconnect's generate_session computes it.
    assert checksum("key", "rtok", "sec") == hashlib.sha256(b"keyrtoksec").hexdigest()
    # Kite flushes sessions at 06:00 IST: a 09:05 login lasts until tomorrow 06:00,
    # a 02:00 login (after midnight) only until 06:00 the same morning.
    assert token_expiry(ist("2026-12-03T09:05:11")) == ist("2026-12-04T06:00:00")
    assert token_expiry(ist("2026-12-03T02:00:00")) == ist("2026-12-03T06:00:00")
    url = (
        "https://app.example/kite?action=login&type=login&status=success&request_token=rq7Yt2Lm9Pq4"
    )
    assert request_token_from(url) == "rq7Yt2Lm9Pq4"
    assert request_token_from(" rq7Yt2Lm9Pq4\n") == "rq7Yt2Lm9Pq4"
    with pytest.raises(InvalidInput, match="did not succeed"):
        request_token_from("https://app.example/?status=cancelled&request_token=rq7Yt2Lm9Pq4")
    with pytest.raises(InvalidInput):
        request_token_from("rq7;drop table")


async def test_login_exchange_checks_the_checksum(kite_server: HttpFake) -> None:
    with pytest.raises(UpstreamError, match="Invalid `checksum`"):
        await exchange_request_token(
            API_KEY, "wrong-secret", "rq7Yt2Lm9Pq4", base_url=kite_server.base_url
        )
    session = await exchange_request_token(
        API_KEY, API_SECRET, "rq7Yt2Lm9Pq4", base_url=kite_server.base_url
    )
    assert session.user_id == "ZW1234"
    assert session.login_time == ist("2026-12-03T09:05:11")
    assert session.expires_at == ist("2026-12-04T06:00:00")
    assert "AT5x" not in repr(session)
    form = kite_server.requests[-1].query
    assert form["checksum"] == [
        hashlib.sha256(f"{API_KEY}rq7Yt2Lm9Pq4{API_SECRET}".encode()).hexdigest()
    ]
    with pytest.raises(UpstreamError, match="invalid or has expired"):  # good for one exchange
        await exchange_request_token(
            API_KEY, API_SECRET, "rq7Yt2Lm9Pq4", base_url=kite_server.base_url
        )


def test_windows_respect_each_intervals_span() -> None:
    start, end = ist("2026-01-01T09:15:00"), ist("2026-05-15T15:30:00")
    cut = list(windows("minute", start, end))
    assert len(cut) == 3
    assert all(b - a < dt.timedelta(days=60) for a, b in cut)
    assert cut[0][0] == start
    assert cut[-1][1] == end
    assert all(nxt[0] - prev[1] == dt.timedelta(seconds=1) for prev, nxt in itertools.pairwise(cut))
    assert len(list(windows("day", start, end))) == 1


async def test_minute_candles_paginate_across_the_60_day_limit(
    kite: KiteProvider, kite_fake: KiteFake
) -> None:
    first, second = ist("2026-01-05T09:15:00"), ist("2026-04-01T10:00:00")
    kite_fake.candles[738561, "minute"] = [
        [first, 2450.5, 2452, 2449.05, 2451.15, 12000, 0],
        [second, 2611.1, 2612, 2610, 2611.95, 800, 0],
    ]
    bars = await kite.historical_bars(
        RELIANCE, Timeframe.M1, ist("2026-01-01T00:00:00"), ist("2026-05-01T00:00:00")
    )
    assert [(b.ts, b.open, b.close, b.volume, b.oi) for b in bars] == [
        (first.astimezone(dt.UTC), Decimal("2450.5"), Decimal("2451.15"), Decimal(12000), None),
        (second.astimezone(dt.UTC), Decimal("2611.1"), Decimal("2611.95"), Decimal(800), None),
    ]
    # 120 days of minutes: three requests, none over 60 days, in IST wall-clock time.
    assert [call[1:] for call in kite_fake.historical_calls] == [
        ("2026-01-01 00:00:00", "2026-03-01 23:59:59"),
        ("2026-03-02 00:00:00", "2026-04-30 23:59:59"),
        ("2026-05-01 00:00:00", "2026-05-01 00:00:00"),
    ]


async def test_derivative_day_candles_carry_oi(kite: KiteProvider, kite_fake: KiteFake) -> None:
    kite_fake.candles[13368834, "day"] = [
        [ist("2026-12-01T00:00:00"), 24410, 24530.5, 24380, 24501.2, 4_150_200, 11_250_075],
        [ist("2026-12-02T00:00:00"), 24501, 24560, 24440.1, 24455, 3_980_100, 11_420_150],
    ]
    bars = await kite.historical_bars(
        NIFTY_FUT, Timeframe.D1, dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 2, 23, 59, tzinfo=dt.UTC),
    )  # fmt: skip
    assert [(b.ts.date(), b.ts.hour, b.close, b.oi) for b in bars] == [
        (dt.date(2026, 12, 1), 0, Decimal("24501.2"), Decimal(11_250_075)),
        (dt.date(2026, 12, 2), 0, Decimal(24455), Decimal(11_420_150)),
    ]
    assert kite_fake.historical_calls[-1][0] == "day"
    with pytest.raises(InvalidInput, match="kite intervals"):
        await kite.candles(NIFTY_FUT, "2minute", bars[0].ts, bars[1].ts)


@pytest.mark.parametrize(
    ("timeframe", "interval", "end", "requests"),
    [
        # To May 1, 120 days: over the 100-day span of 3/5/10-minute candles, within the
        # 200 of 15/30-minute and the 400 of hourly; to Aug 1, 212 days: over the 200.
        (Timeframe.M3, "3minute", "2026-05-01", 2),
        (Timeframe.M5, "5minute", "2026-05-01", 2),
        (Timeframe.M10, "10minute", "2026-05-01", 2),
        (Timeframe.M15, "15minute", "2026-05-01", 1),
        (Timeframe.M15, "15minute", "2026-08-01", 2),
        (Timeframe.M30, "30minute", "2026-05-01", 1),
        (Timeframe.M30, "30minute", "2026-08-01", 2),
        (Timeframe.H1, "60minute", "2026-08-01", 1),
    ],
)
async def test_every_kite_interval_is_served_through_the_interface(
    kite: KiteProvider,
    kite_fake: KiteFake,
    timeframe: Timeframe,
    interval: str,
    end: str,
    requests: int,
) -> None:
    stamp, late = ist("2026-03-02T09:15:00"), ist("2026-07-01T09:15:00")
    kite_fake.candles[738561, interval] = [
        [stamp, 2450.5, 2452, 2449.05, 2451.15, 12000, 0],
        [late, 2490, 2495.5, 2488.1, 2494.05, 8000, 0],
    ]
    bars = await kite.historical_bars(
        RELIANCE, timeframe, ist("2026-01-01T00:00:00"), ist(f"{end}T00:00:00")
    )
    expected = [(stamp.astimezone(dt.UTC), Decimal("2451.15"))]
    if end == "2026-08-01":
        expected.append((late.astimezone(dt.UTC), Decimal("2494.05")))
    assert [(b.ts, b.close) for b in bars] == expected
    calls = [call for call in kite_fake.historical_calls if call[0] == interval]
    assert len(calls) == requests
    assert (calls[0][1], calls[-1][2]) == ("2026-01-01 00:00:00", f"{end} 00:00:00")
    if requests == 2:  # the second window starts a second after the first ends
        first_end = dt.datetime.strptime(calls[0][2], "%Y-%m-%d %H:%M:%S")
        assert calls[1][1] == f"{first_end + dt.timedelta(seconds=1):%Y-%m-%d %H:%M:%S}"


EMPTY_LEVEL = {"price": 0, "quantity": 0, "orders": 0}


def full_quote(token: int, last: float) -> dict[str, object]:
    return {
        "instrument_token": token, "timestamp": "2026-12-03 11:02:03",
        "last_trade_time": "2026-12-03 11:02:02", "last_price": last, "last_quantity": 5,
        "buy_quantity": 1200, "sell_quantity": 900, "volume": 5_400_321, "average_price": last,
        "oi": 0, "oi_day_high": 0, "oi_day_low": 0, "net_change": 0,
        "lower_circuit_limit": 1, "upper_circuit_limit": 9999,
        "ohlc": {"open": 2440, "high": 2460, "low": 2435.5, "close": 2438.35},
        "depth": {
            "buy": [{"price": last - 0.05, "quantity": 150, "orders": 3}] + [EMPTY_LEVEL] * 4,
            "sell": [{"price": last + 0.05, "quantity": 90, "orders": 2}] + [EMPTY_LEVEL] * 4,
        },
    }  # fmt: skip


async def test_quotes_go_out_in_batches_of_kites_limits(
    kite: KiteProvider, kite_fake: KiteFake, kite_server: HttpFake
) -> None:
    keys = [f"NSE:SYM{i}" for i in range(1200)]
    for i, key in enumerate(keys):
        kite_fake.quotes[key] = full_quote(100_000 + i, 100 + i / 100)
    ltp = await kite.quotes(keys, QuoteKind.LTP)
    assert kite_server.hit_count("/quote/ltp") == 2  # 1000 + 200
    assert len(ltp) == 1200
    assert ltp["NSE:SYM1199"].last == Decimal("111.99")
    full = await kite.quotes(keys[:501], QuoteKind.FULL)
    assert kite_server.hit_count("/quote") == 2  # 500 + 1
    quote = full["NSE:SYM0"]
    assert (quote.bid, quote.ask, quote.bid_size) == (
        Decimal("99.95"),
        Decimal("100.05"),
        Decimal(150),
    )
    assert (quote.prev_close, quote.change) == (Decimal("2438.35"), Decimal("-2338.35"))
    assert quote.ts == ist("2026-12-03T11:02:03")
    assert quote.oi is None  # Kite's 0 for an equity
    kite_fake.quotes["NSE:RELIANCE"] = full_quote(738561, 2450.65)
    assert (await kite.quote(RELIANCE)).last == Decimal("2450.65")


async def test_ohlc_quotes_go_out_in_batches_of_1000_with_last_and_previous_close(
    kite: KiteProvider, kite_fake: KiteFake, kite_server: HttpFake
) -> None:
    keys = [f"NSE:SYM{i}" for i in range(1000)]
    for i, key in enumerate(keys):
        kite_fake.quotes[key] = full_quote(100_000 + i, 100 + i / 100)
    kite_fake.quotes["NSE:NIFTY 50"] = {
        "instrument_token": 256265, "last_price": 24550.1,
        "ohlc": {"open": 24480, "high": 24560.2, "low": 24470.05, "close": 24400.05},
    }  # fmt: skip
    ohlc = await kite.quotes([*keys, "NSE:NIFTY 50", "NSE:NOSUCH"], QuoteKind.OHLC)
    assert kite_server.hit_count("/quote/ohlc") == 2  # 1000 + 2 (the fake refuses 1001)
    assert len(ohlc) == 1001  # the unknown key is simply absent
    index = ohlc["NSE:NIFTY 50"]  # a space in the key, encoded in the query
    assert (index.last, index.prev_close, index.change) == (
        Decimal("24550.1"), Decimal("24400.05"), Decimal("150.05"),
    )  # fmt: skip
    share = ohlc["NSE:SYM7"]
    assert (share.last, share.prev_close, share.change) == (
        Decimal("100.07"), Decimal("2438.35"), Decimal("-2338.28"),
    )  # fmt: skip
    # /quote/ohlc carries no book, volume or OI: none is made up.
    assert (share.bid, share.ask, share.volume, share.oi) == (None, None, None, None)


async def test_a_burst_waits_for_the_quote_limit_and_a_429_is_retried(
    kite: KiteProvider, kite_fake: KiteFake, kite_server: HttpFake, vtime: VirtualTime
) -> None:
    for i in range(4):
        kite_fake.quotes[f"NSE:S{i}"] = full_quote(1000 + i, 10 + i)
    kite_server.inject(
        "/quote/ltp",
        Reply.json(
            {"status": "error", "message": "Too many requests", "error_type": "NetworkException"},
            status=429, headers={"Retry-After": "2"},
        ),
    )  # fmt: skip
    for i in range(4):
        await kite.quotes([f"NSE:S{i}"], QuoteKind.LTP)
    # One request a second (our limiter, on the virtual clock), plus Kite's Retry-After once.
    assert kite_server.hit_count("/quote/ltp") == 5
    assert sum(vtime.sleeps) == pytest.approx(5.0, abs=0.01)


async def test_an_expired_session_is_marked_and_not_retried(
    kite: KiteProvider, kite_fake: KiteFake, kite_server: HttpFake, memory_tokens: MemoryTokens
) -> None:
    kite_fake.quotes["NSE:RELIANCE"] = full_quote(738561, 2450.65)
    kite_fake.session_open = False  # 06:00 IST came, or the user logged in elsewhere
    with pytest.raises(KiteSessionMissing, match="quantdesk kite login"):
        await kite.quote(RELIANCE)
    assert memory_tokens.rejected == ["Kite refused the access token (TokenException)"]
    hits = kite_server.hit_count("/quote")
    with pytest.raises(KiteSessionMissing):
        await kite.quote(RELIANCE)
    assert kite_server.hit_count("/quote") == hits  # no request without a token


async def test_instruments_dump_search_and_tokens(kite: KiteProvider) -> None:
    found = await kite.search_instruments("nifty26dec")
    assert [i.key for i in found] == ["NFO:NIFTY26DECFUT", "NFO:NIFTY26DEC24500CE"]
    assert await kite.instrument_token(NIFTY_FUT) == 13368834
    with pytest.raises(InvalidInput, match="NASDAQ"):
        await kite.instrument_token(
            Instrument(Exchange.NASDAQ, "AAPL", "Apple", InstrumentType.EQUITY, "USD")
        )


async def test_bfo_mcx_and_cds_instruments_are_kites(kite: KiteProvider) -> None:
    # Not in our master: found in the day's dump by key, as NFO's are.
    for exchange, symbol, token in (
        (Exchange.CDS, "USDINR26DECFUT", USDINR_TOKEN),
        (Exchange.MCX, "GOLD26DECFUT", GOLD_TOKEN),
        (Exchange.BFO, "SENSEX26D1085000CE", SENSEX_CALL_TOKEN),
    ):
        wanted = Instrument(exchange, symbol, symbol, InstrumentType.FUTURE, "INR")
        assert await kite.instrument_token(wanted) == token
    found = await kite.search_instruments("usdinr")
    assert [(i.key, i.multiplier) for i in found] == [("CDS:USDINR26DECFUT", Decimal(1000))]
