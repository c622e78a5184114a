"""``load_demo`` on the real database (SQLite, and PostgreSQL + Redis with ``--db=postgres``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import func, select

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import Exchange, Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.models import BarRow, InstrumentRow
from quantdesk.marketdata.providers.demo.loader import LoadProgress, LoadReport, _plans, load_demo
from quantdesk.marketdata.providers.demo.market import DemoMarket
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.settings import Settings
from tests.marketdata.providers.demo.conftest import ANCHOR, SEED

DAILY_YEARS, MINUTE_SESSIONS = 1, 2


async def load(
    ctx: AppContext,
    market: DemoMarket,
    *,
    options: bool = True,
    progress: Callable[[LoadProgress], None] | None = None,
) -> LoadReport:
    """A small load: a year of days, two sessions of minutes.  Option chains add ~800
    instruments but nothing new to idempotency or resumption, so only the first test
    loads them."""
    return await load_demo(
        ctx,
        seed=SEED,
        anchor=market.requested_anchor,
        market=market,
        options=options,
        daily_years=DAILY_YEARS,
        minute_sessions=MINUTE_SESSIONS,
        progress=progress,
    )


class Interrupted(Exception):
    pass


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[AppContext]:
    context = AppContext.build(settings)
    yield context
    await context.aclose()


async def row_counts(ctx: AppContext) -> tuple[int, int, int]:
    async with ctx.database.session() as session:
        instruments = await session.scalar(select(func.count()).select_from(InstrumentRow))
        daily = await session.scalar(
            select(func.count()).select_from(BarRow).where(BarRow.timeframe == "1d")
        )
        minutes = await session.scalar(
            select(func.count()).select_from(BarRow).where(BarRow.timeframe == "1m")
        )
    return int(instruments or 0), int(daily or 0), int(minutes or 0)


def expected_counts(market: DemoMarket, options: bool = True) -> tuple[int, int, int]:
    plans = _plans(market, DAILY_YEARS, MINUTE_SESSIONS, options)
    daily = sum(len(market.bars(p.instrument.key, Timeframe.D1, *p.daily)) for p in plans)
    minutes = sum(
        len(market.bars(p.instrument.key, Timeframe.M1, *p.minutes)) for p in plans if p.minutes
    )
    return len(plans), daily, minutes


async def test_load_writes_everything_once(ctx: AppContext, market: DemoMarket) -> None:
    events: list[LoadProgress] = []
    report = await load(ctx, market, progress=events.append)
    expected = expected_counts(market)
    assert await row_counts(ctx) == expected
    assert (report.instruments_inserted, report.daily_bars, report.minute_bars) == expected
    assert not report.already_loaded
    assert next(e.stage for e in events) == "instruments"
    assert events[-1].stage == "quotes"
    bar_events = [e for e in events if e.stage == "bars"]
    assert bar_events[-1].done == bar_events[-1].total == expected[0]

    again = await load(ctx, market)
    assert again.already_loaded
    assert (again.daily_bars, again.minute_bars, again.instruments_updated) == (0, 0, 0)
    assert await row_counts(ctx) == expected

    # What is stored is what the market generates, digit for digit.
    async with ctx.database.session() as session:
        store = BarStore(session)
        spec = market.underlyings["NSE:NIFTY 50"]
        last = market.last_index(spec)
        stored = await store.series("NFO:NIFTY26JUNFUT", Timeframe.M1, limit=750)
        generated = market.bars("NFO:NIFTY26JUNFUT", Timeframe.M1, last - 1, last)
        np.testing.assert_array_equal(stored.ts, generated.ts)
        assert stored.columnar()["c"] == [f"{c:.2f}" for c in generated.close.tolist()]
        chain = await InstrumentService(session).chain("NIFTY", dt.date(2026, 6, 30))
        assert len(chain) == 2 * 81
        # SIM, the always-open exchange: three equities, the index, its futures and options.
        instruments = InstrumentService(session)
        sim = await instruments.get_rows(
            ["SIM:ALPHA", "SIM:BETA", "SIM:GAMMA", "SIM:SIMIDX", "SIM:SIMIDX26JULFUT"]
        )
        assert len(sim) == 5
        assert {
            (r.lot_size, r.tick_size, r.currency) for k, r in sim.items() if "FUT" not in k
        } == {(Decimal(1), Decimal("0.05"), "INR")}
        assert sim["SIM:SIMIDX26JULFUT"].lot_size == Decimal(50)
        sim_chain = await instruments.chain("SIMIDX", dt.date(2026, 6, 18))
        assert len(sim_chain) == 2 * 21
        assert all(option.exchange is Exchange.SIM for option in sim_chain)
    quotes = await QuoteService(ctx.cache, ctx.bus).get_many(
        ["NSE:NIFTY 50", "NFO:NIFTY26JUN29000CE", "SIM:ALPHA"]
    )
    assert quotes["NSE:NIFTY 50"] == market.close_quote("NSE:NIFTY 50")
    assert quotes["SIM:ALPHA"] == market.close_quote("SIM:ALPHA")
    assert quotes["NFO:NIFTY26JUN29000CE"].oi is not None


async def test_a_later_day_appends_only_the_new_sessions(
    ctx: AppContext, market: DemoMarket
) -> None:
    earlier = DemoMarket(SEED, ANCHOR - dt.timedelta(days=7))
    await load(ctx, earlier, options=False)
    async with ctx.database.session() as session:
        before = await BarStore(session).series("NSE:LT", Timeframe.D1, limit=400)
    report = await load(ctx, market, options=False)
    # Five NSE sessions (and five US ones) passed: daily bars for those, minutes for the
    # window's two sessions.
    assert report.minute_bars > 0
    async with ctx.database.session() as session:
        after = await BarStore(session).series("NSE:LT", Timeframe.D1, limit=400)
        minutes = await BarStore(session).series("NSE:LT", Timeframe.M1, limit=5_000)
    assert len(after) == len(before) + 5
    # The sessions already stored are untouched: the data of a date do not depend on the anchor.
    assert after.columnar()["c"][: len(before)] == before.columnar()["c"]
    assert len(minutes) == 4 * 375  # two windows of two sessions, no overlap
    again = await load(ctx, market, options=False)
    assert again.already_loaded


async def test_an_interrupted_load_resumes(ctx: AppContext, market: DemoMarket) -> None:
    seen: list[str] = []

    def stop_after_some(event: LoadProgress) -> None:
        if event.stage == "bars" and event.key:
            seen.append(event.key)
            if len(seen) == 12:
                raise Interrupted

    with pytest.raises(Interrupted):
        await load(ctx, market, options=False, progress=stop_after_some)
    partial = await row_counts(ctx)
    expected = expected_counts(market, options=False)
    assert 0 < partial[1] < expected[1]
    report = await load(ctx, market, options=False)
    assert report.daily_bars == expected[1] - partial[1]
    assert report.minute_bars == expected[2] - partial[2]
    assert await row_counts(ctx) == expected
