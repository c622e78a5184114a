"""Backfill from a provider: chunking, idempotency, resumption, instruments from search."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from quantdesk.marketdata.bars.backfill import (
    BackfillProgress,
    backfill,
    chunk_windows,
    inclusive_range,
)
from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import Bar, Instrument, Quote, Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.models import BarRow
from quantdesk.marketdata.providers.demo.provider import DemoProvider
from quantdesk.marketdata.providers.setup import build_provider
from quantdesk.platform.db import Database
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.settings import Settings

UTC = dt.UTC
ANCHOR = dt.date(2026, 6, 17)
START = dt.datetime(2026, 5, 25, tzinfo=UTC)
END = dt.datetime(2026, 6, 12, 23, 59, tzinfo=UTC)
CHUNK = dt.timedelta(days=3)


class Interrupted(Exception):
    pass


@dataclass
class RecordingProvider:
    """A provider that forwards to the demo market, records each request and can be made
    to fail after a number of requests (an outage half-way through a backfill)."""

    inner: DemoProvider
    fail_after: int | None = None
    requests: list[tuple[str, dt.datetime, dt.datetime]] = field(default_factory=list)
    name: str = "demo"

    async def search_instruments(self, query: str) -> list[Instrument]:
        return await self.inner.search_instruments(query)

    async def historical_bars(
        self, instrument: Instrument, timeframe: Timeframe, start: dt.datetime, end: dt.datetime
    ) -> list[Bar]:
        if self.fail_after is not None and len(self.requests) >= self.fail_after:
            raise Interrupted
        self.requests.append((instrument.key, start, end))
        return await self.inner.historical_bars(instrument, timeframe, start, end)

    async def quote(self, instrument: Instrument) -> Quote:
        return await self.inner.quote(instrument)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def demo() -> DemoProvider:
    return DemoProvider(seed=7, anchor=ANCHOR)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings)
    yield db
    await db.dispose()


async def stored(database: Database, timeframe: Timeframe) -> int:
    async with database.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(BarRow).where(BarRow.timeframe == timeframe.value)
        )
    return int(count or 0)


@given(
    start=st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1)),
    length_s=st.integers(0, 400 * 86_400),
    most_chunks=st.integers(1, 300),
)
def test_chunks_cover_the_range_without_overlap(
    start: dt.datetime, length_s: int, most_chunks: int
) -> None:
    start = start.replace(microsecond=0, tzinfo=UTC)
    end = start + dt.timedelta(seconds=length_s)
    size_s = -(-(length_s + 1) // most_chunks)  # ceil: at most ``most_chunks`` windows
    size = dt.timedelta(seconds=size_s)
    windows = chunk_windows(start, end, size)
    assert windows[0][0] == start
    assert windows[-1][1] == end
    for (_, a_end), (b_start, _) in itertools.pairwise(windows):
        assert b_start == a_end + dt.timedelta(seconds=1)
    assert all(lo <= hi and hi - lo < size for lo, hi in windows)
    assert len(windows) == -(-(length_s + 1) // size_s)


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(InvalidInput):
        chunk_windows(START, END, dt.timedelta(0))


async def test_running_twice_leaves_the_same_rows(database: Database, demo: DemoProvider) -> None:
    keys = ["NSE:TCS", "NASDAQ:AAPL"]
    events: list[BackfillProgress] = []
    first = await backfill(
        demo, keys, START, END, Timeframe.M1, database=database, chunk=CHUNK, progress=events.append
    )
    # 14 sessions each (Bakri Id and Memorial Day off): 375 NSE minutes, 390 NASDAQ ones.
    assert [i.bars for i in first.instruments] == [14 * 375, 14 * 390]
    assert await stored(database, Timeframe.M1) == first.bars
    assert events[-1] == BackfillProgress("NASDAQ:AAPL", 7, 7, 14 * 390, 1, 2)
    second = await backfill(demo, keys, START, END, Timeframe.M1, database=database, chunk=CHUNK)
    assert await stored(database, Timeframe.M1) == first.bars
    # Resumed at each instrument's newest bar: one chunk, that bar re-written.
    assert all(item.resumed and item.chunks == 1 for item in second.instruments)
    assert [i.bars for i in second.instruments] == [1, 1]


async def test_an_interrupted_backfill_continues_from_the_last_stored_bar(
    database: Database, demo: DemoProvider
) -> None:
    flaky = RecordingProvider(demo, fail_after=3)
    with pytest.raises(Interrupted):
        await backfill(
            flaky, ["NSE:SBIN"], START, END, Timeframe.M1, database=database, chunk=CHUNK
        )
    partial = await stored(database, Timeframe.M1)
    async with database.session() as session:
        newest = await BarStore(session).latest_ts("NSE:SBIN", Timeframe.M1)
    assert newest is not None
    assert 0 < partial < 14 * 375

    again = RecordingProvider(demo)
    report = await backfill(
        again, ["NSE:SBIN"], START, END, Timeframe.M1, database=database, chunk=CHUNK
    )
    assert again.requests[0][1] == newest  # picked up where it stopped
    assert report.instruments[0].resumed
    assert await stored(database, Timeframe.M1) == 14 * 375
    async with database.session() as session:
        series = await BarStore(session).series("NSE:SBIN", Timeframe.M1, start=START, limit=10_000)
    expected = await demo.historical_bars(
        await demo_instrument(demo, "NSE:SBIN"), Timeframe.M1, START, END
    )
    assert series.columnar()["c"] == [str(b.close) for b in expected]


async def demo_instrument(demo: DemoProvider, key: str) -> Instrument:
    return (await demo.market()).instrument(key)


async def test_recent_bars_from_elsewhere_do_not_count_as_progress(
    database: Database, demo: DemoProvider
) -> None:
    # Only the last week is stored (as a demo load would leave it): the older part of the
    # requested range must still be fetched.
    recent = dt.datetime(2026, 6, 8, tzinfo=UTC)
    await backfill(demo, ["NSE:ITC"], recent, END, Timeframe.M1, database=database, chunk=CHUNK)
    report = await backfill(
        demo, ["NSE:ITC"], START, END, Timeframe.M1, database=database, chunk=CHUNK
    )
    assert not report.instruments[0].resumed
    assert report.instruments[0].start == START
    assert await stored(database, Timeframe.M1) == 14 * 375


async def test_daily_backfill_and_instruments_from_search(
    database: Database, demo: DemoProvider
) -> None:
    start = dt.datetime(2025, 1, 1, tzinfo=UTC)
    end = dt.datetime(2026, 6, 16, tzinfo=UTC)
    report = await backfill(demo, ["nse:lt"], start, end, Timeframe.D1, database=database)
    async with database.session() as session:
        instrument = await InstrumentService(session).get("NSE:LT")
    assert instrument.name == "Larsen & Toubro Ltd"
    assert report.instruments[0].chunks == 2  # a year per request
    assert report.bars == await stored(database, Timeframe.D1) > 300
    with pytest.raises(NotFound):
        await backfill(demo, ["NSE:NOSUCH"], start, end, Timeframe.D1, database=database)
    with pytest.raises(InvalidInput):
        await backfill(demo, ["NSE:LT"], start, end, Timeframe.H1, database=database)


def test_cli_ranges_and_providers(settings: Settings) -> None:
    start, end = inclusive_range(dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 9))
    assert start == dt.datetime(2026, 1, 5, tzinfo=UTC)
    assert end == dt.datetime(2026, 1, 9, 23, 59, 59, tzinfo=UTC)
    provider = build_provider(settings, "demo")
    assert isinstance(provider, DemoProvider)
    assert provider.seed == settings.demo_seed
    with pytest.raises(InvalidInput, match="unknown provider"):
        build_provider(settings, "bloomberg")
    with pytest.raises(InvalidInput, match="API_KEY"):
        build_provider(settings, "polygon")
