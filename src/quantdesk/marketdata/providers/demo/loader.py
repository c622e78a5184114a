"""``load_demo``: the demo data set into the database, through the market-data services.

What is written (``DemoMarket`` decides the values):

* the instrument master: 19 underlyings (15 standing in for NSE and US listings, 4 on SIM,
  the simulated exchange), their near- and next-month futures, NIFTY, BANKNIFTY and SIMIDX
  option chains for the coming expiries;
* daily bars for ``daily_years`` years (futures from listing, options for their last few
  sessions) and 1-minute bars for the last ``minute_sessions`` sessions of the underlyings
  and near-month futures (a quarter as many of SIM's 24-hour sessions);
* each instrument's closing quote, into the quote cache and onto the bus.

Idempotent and incremental: per instrument and timeframe, only sessions after the newest
stored bar are generated and written, so a second run writes nothing ("already loaded"),
a run on a later day appends the sessions since, and a run interrupted half-way resumes
where it stopped.  Because a date's data never depend on the anchor, appended bars join
the stored ones seamlessly.  Each instrument's bars are committed on their own, keeping
SQLite's write lock short while the app serves requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import BarArrays, Instrument, InstrumentType, Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.providers.demo.generator import empty_bars, take_bars
from quantdesk.marketdata.providers.demo.market import DemoMarket
from quantdesk.marketdata.providers.demo.provider import today_utc
from quantdesk.marketdata.providers.demo.universe import (
    DAILY_YEARS,
    MINUTE_SESSIONS,
    minute_sessions_for,
)
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.platform.logging import get_logger

log = get_logger("quantdesk.marketdata.providers.demo")


@dataclass(frozen=True, slots=True)
class LoadProgress:
    """One step of a load: ``done`` of ``total`` instruments, the current one's ``key``."""

    stage: str  # "instruments", "bars", "quotes"
    done: int
    total: int
    key: str | None = None


ProgressCallback = Callable[[LoadProgress], None]


@dataclass(slots=True)
class LoadReport:
    seed: int
    anchor: date
    instruments_inserted: int = 0
    instruments_updated: int = 0
    daily_bars: int = 0
    minute_bars: int = 0
    quotes: int = 0
    seconds: float = 0.0
    clamped_calendars: list[str] = field(default_factory=list)

    @property
    def already_loaded(self) -> bool:
        """Nothing new to write: the same seed and anchor were loaded before."""
        return not (
            self.instruments_inserted
            or self.instruments_updated
            or self.daily_bars
            or self.minute_bars
        )


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which sessions of one instrument to store at each timeframe."""

    instrument: Instrument
    daily: tuple[int, int]
    minutes: tuple[int, int] | None


def _plans(
    market: DemoMarket, daily_years: int, minute_sessions: int, options: bool = True
) -> list[_Plan]:
    plans: list[_Plan] = []
    for instrument in market.instruments():
        key = instrument.key
        if not options and instrument.type is InstrumentType.OPTION:
            continue
        spec = market.spec_of(key)
        sessions = market.sessions(spec)
        first, last = market.available(key)
        if last < first:
            continue
        window_start = market.anchor(spec) - timedelta(days=round(365.25 * daily_years))
        daily = (max(first, sessions.index_on_or_after(window_start)), last)
        minutes: tuple[int, int] | None = None
        near_future = key in market.futures and _is_near_month(market, key)
        if key in market.underlyings or near_future:
            count = minute_sessions_for(spec.calendar, minute_sessions)
            minutes = (max(first, last - count + 1), last)
        plans.append(_Plan(instrument, daily, minutes))
    return plans


def _is_near_month(market: DemoMarket, key: str) -> bool:
    listing = market.futures[key]
    same_root = [f for f in market.futures.values() if f.spec.key == listing.spec.key]
    return min(same_root, key=lambda f: f.contract.expiry_index) is listing


async def load_demo(
    ctx: AppContext,
    *,
    seed: int | None = None,
    anchor: date | None = None,
    daily_years: int = DAILY_YEARS,
    minute_sessions: int = MINUTE_SESSIONS,
    options: bool = True,
    progress: ProgressCallback | None = None,
    market: DemoMarket | None = None,
) -> LoadReport:
    """Write the demo data set (see the module docstring); safe to run any number of times.

    ``options=False`` leaves the option chains out (a quarter of the time, for a quick start).
    """
    started = time.perf_counter()
    seed = seed if seed is not None else ctx.settings.demo_seed
    anchor = anchor or today_utc()
    if market is None:
        market = await asyncio.to_thread(DemoMarket, seed, anchor)
    report = LoadReport(seed=seed, anchor=anchor, clamped_calendars=market.clamped_calendars)
    for calendar in report.clamped_calendars:
        log.warning("demo data stop at the end of the calendar's data", calendar=calendar)
    plans = await asyncio.to_thread(_plans, market, daily_years, minute_sessions, options)
    notify = progress or (lambda _event: None)

    notify(LoadProgress("instruments", 0, 1))
    # A writer from its first statement: the upsert reads the master, then writes, and on
    # SQLite a read transaction overtaken by another writer (a server's start-up loading
    # the demo FX rates) cannot become a write one ("database is locked" at once).
    async with ctx.database.session(immediate=True) as session:
        counts = await InstrumentService(session).upsert_many(p.instrument for p in plans)
    report.instruments_inserted, report.instruments_updated = counts.inserted, counts.updated
    notify(LoadProgress("instruments", 1, 1))

    done = 0
    for batch in _batches(market, plans):
        notify(LoadProgress("bars", done, len(plans), batch[0].instrument.key))
        written_daily, written_minutes = await _load_batch(ctx, market, batch)
        report.daily_bars += written_daily
        report.minute_bars += written_minutes
        done += len(batch)
    notify(LoadProgress("bars", len(plans), len(plans)))

    quotes = await asyncio.to_thread(market.close_quotes, [p.instrument.key for p in plans])
    report.quotes = await QuoteService(ctx.cache, ctx.bus).publish(quotes.values())
    notify(LoadProgress("quotes", 1, 1))
    report.seconds = time.perf_counter() - started
    log.info(
        "demo data loaded",
        seed=seed,
        anchor=anchor.isoformat(),
        daily_bars=report.daily_bars,
        minute_bars=report.minute_bars,
        instruments=len(plans),
        seconds=round(report.seconds, 2),
    )
    return report


def _batches(market: DemoMarket, plans: list[_Plan]) -> list[list[_Plan]]:
    """One batch per underlying or future, one per option expiry (hundreds of small series
    share a transaction: committing each would cost more than writing it)."""
    batches: dict[str, list[_Plan]] = {}
    for plan in plans:
        key = plan.instrument.key
        group = key
        if plan.instrument.expiry is not None and key not in market.futures:
            group = f"{plan.instrument.underlying}:{plan.instrument.expiry.isoformat()}"
        batches.setdefault(group, []).append(plan)
    return list(batches.values())


async def _load_batch(ctx: AppContext, market: DemoMarket, batch: list[_Plan]) -> tuple[int, int]:
    """Write the new bars of every instrument in ``batch`` in one transaction.

    A batch holds up to hundreds of small series (an expiry's options): what is stored is
    read in one query per timeframe and the bars are made in one worker-thread call, since
    a round trip or a thread hop per series cost more than the series' own work."""
    written = [0, 0]
    async with ctx.database.session(immediate=True) as session:
        rows = await InstrumentService(session).get_rows([p.instrument.key for p in batch])
        store = BarStore(session)
        stored = {
            timeframe: await store.latest_ts_many(list(rows.values()), timeframe)
            for timeframe in (Timeframe.D1, Timeframe.M1)
        }
        work = [
            (slot, timeframe, plan.instrument.key, window)
            for plan in batch
            for slot, timeframe, window in (
                (0, Timeframe.D1, plan.daily),
                (1, Timeframe.M1, plan.minutes),
            )
            if window is not None
        ]

        def make() -> list[BarArrays]:
            return [
                _bars_after(market, key, timeframe, window, stored[timeframe].get(rows[key].id))
                for _, timeframe, key, window in work
            ]

        for (slot, timeframe, key, _), bars in zip(
            work, await asyncio.to_thread(make), strict=True
        ):
            if len(bars):
                written[slot] += await store.bulk_load(rows[key], timeframe, bars)
    return written[0], written[1]


def _bars_after(
    market: DemoMarket,
    key: str,
    timeframe: Timeframe,
    window: tuple[int, int],
    latest: datetime | None,
) -> BarArrays:
    """The window's bars newer than ``latest`` (everything when nothing is stored)."""
    first, last = window
    if latest is not None:
        sessions = market.sessions(market.spec_of(key))
        stored_day = latest.astimezone(UTC).date()
        # Start at the session holding the newest stored bar: a daily bar is stamped with its
        # own date, a minute bar's UTC date is its session's or the one before it.
        first = max(first, sessions.index_on_or_after(stored_day - timedelta(days=1)))
    if first > last:
        return empty_bars()
    bars = market.bars(key, timeframe, first, last)
    if latest is None:
        return bars
    return take_bars(bars, np.flatnonzero(bars.ts > int(latest.timestamp())))
