"""The demo provider behind the ``Provider`` protocol: bars slices, quotes, search, errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from quantdesk.marketdata.domain import Instrument, Quote, Timeframe
from quantdesk.marketdata.providers.base import Provider
from quantdesk.marketdata.providers.demo.market import DemoMarket
from quantdesk.marketdata.providers.demo.provider import DemoProvider, LiveBook
from quantdesk.platform.exceptions import InvalidInput, NotFound
from tests.marketdata.providers.demo.conftest import ANCHOR

UTC = dt.UTC


@pytest.fixture
def provider(market: DemoMarket) -> DemoProvider:
    return DemoProvider(market=market)


def test_satisfies_the_provider_protocol(provider: DemoProvider) -> None:
    assert isinstance(provider, Provider)
    assert provider.name == "demo"
    assert provider.anchor == ANCHOR


async def test_daily_bars_are_the_inclusive_slice(
    provider: DemoProvider, market: DemoMarket
) -> None:
    instrument = market.instrument("NSE:INFY")
    start = dt.datetime(2026, 5, 4, tzinfo=UTC)
    end = dt.datetime(2026, 5, 8, tzinfo=UTC)
    bars = await provider.historical_bars(instrument, Timeframe.D1, start, end)
    assert [b.ts.date() for b in bars] == [dt.date(2026, 5, d) for d in (4, 5, 6, 7, 8)]
    assert all(b.ts == dt.datetime.combine(b.ts.date(), dt.time(), UTC) for b in bars)
    spec = market.underlyings["NSE:INFY"]
    sessions = market.sessions(spec)
    first = sessions.index_on_or_before(dt.date(2026, 5, 4))
    arrays = market.bars("NSE:INFY", Timeframe.D1, first, first + 4)
    assert [b.close for b in bars] == [Decimal(repr(c)) for c in arrays.close.tolist()]
    assert all(b.close % Decimal("0.05") == 0 for b in bars)
    assert all(b.volume == int(b.volume) and b.oi is None for b in bars)
    # One bar exactly: start == end on a bar's timestamp.
    one = await provider.historical_bars(instrument, Timeframe.D1, start, start)
    assert len(one) == 1
    assert one[0] == bars[0]


async def test_minute_bars_within_a_session(provider: DemoProvider, market: DemoMarket) -> None:
    instrument = market.instrument("NFO:NIFTY26JUNFUT")
    start = dt.datetime(2026, 6, 16, 4, 0, tzinfo=UTC)  # 09:30 IST
    end = dt.datetime(2026, 6, 16, 4, 29, tzinfo=UTC)
    bars = await provider.historical_bars(instrument, Timeframe.M1, start, end)
    assert len(bars) == 30
    assert bars[0].ts == start
    assert bars[-1].ts == end
    assert all(b.oi is not None and b.oi % 65 == 0 for b in bars)
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)
    # Nothing on the Bakri Id holiday, nothing on or after the anchor.
    holiday = await provider.historical_bars(
        instrument,
        Timeframe.M1,
        dt.datetime(2026, 5, 28, tzinfo=UTC),
        dt.datetime(2026, 5, 28, 23, 59, tzinfo=UTC),
    )
    assert holiday == []
    future = await provider.historical_bars(
        instrument,
        Timeframe.D1,
        dt.datetime.combine(ANCHOR, dt.time(), UTC),
        dt.datetime(2026, 12, 31, tzinfo=UTC),
    )
    assert future == []


async def test_quote_is_the_close_or_the_live_book(
    provider: DemoProvider, market: DemoMarket
) -> None:
    instrument = market.instrument("NASDAQ:MSFT")
    assert await provider.quote(instrument) == market.close_quote("NASDAQ:MSFT")
    book = LiveBook()
    live = Quote(key="NASDAQ:MSFT", last=Decimal("501.23"), ts=dt.datetime.now(UTC))
    book.update({"NASDAQ:MSFT": live})
    assert await DemoProvider(market=market, live=book).quote(instrument) == live


async def test_search_ranks_exact_then_prefix_then_name(provider: DemoProvider) -> None:
    found = await provider.search_instruments("reliance")
    assert found[0].key == "NSE:RELIANCE"
    assert {i.key for i in found[1:3]} == {"NFO:RELIANCE26JUNFUT", "NFO:RELIANCE26JULFUT"}
    by_name = await provider.search_instruments("Consultancy")
    assert [i.key for i in by_name] == ["NSE:TCS"]
    assert await provider.search_instruments("  ") == []
    assert await provider.search_instruments("NO SUCH THING") == []


async def test_refuses_what_it_cannot_serve(provider: DemoProvider, market: DemoMarket) -> None:
    instrument = market.instrument("NSE:SBIN")
    start, end = dt.datetime(2026, 6, 1, tzinfo=UTC), dt.datetime(2026, 6, 2, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="timeframes"):
        await provider.historical_bars(instrument, Timeframe.M5, start, end)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        await provider.historical_bars(instrument, Timeframe.D1, start.replace(tzinfo=None), end)
    with pytest.raises(InvalidInput, match="after end"):
        await provider.historical_bars(instrument, Timeframe.D1, end, start)
    stranger = Instrument(
        exchange=instrument.exchange,
        symbol="NOTLISTED",
        name="x",
        type=instrument.type,
        currency="INR",
    )
    with pytest.raises(NotFound):
        await provider.historical_bars(stranger, Timeframe.D1, start, end)
    with pytest.raises(NotFound):
        await provider.quote(stranger)


async def test_builds_its_market_lazily_for_its_anchor() -> None:
    provider = DemoProvider(seed=424_242, today=lambda: ANCHOR)
    assert provider.anchor == ANCHOR
    market = await provider.market()
    assert market.requested_anchor == ANCHOR
    assert await provider.market() is market
    await provider.aclose()
