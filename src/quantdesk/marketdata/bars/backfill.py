"""Backfill: historical bars from a provider into the bar store, chunked and resumable.

``backfill(provider, instruments, start, end, timeframe, database=...)`` walks each
instrument's range in chronological chunks (a few days of minutes, a year of days: sizes
every provider we support answers in one request, unless the provider names its own in
``backfill_chunks``, as Kite does with its per-request span limits), writes each chunk in
its own transaction, and reports progress after each one.

Only 1m and 1d bars are stored; the other timeframes (3m … 1h) are resampled from the
stored minutes when read, so they are never backfilled.

* **Idempotent**: bars are upserted on (instrument, timeframe, ts), so running the same
  backfill twice leaves the same rows.
* **Resumable**: when the stored bars of the range begin within its first chunk (an earlier
  run of this backfill wrote them, oldest first), the walk restarts from the newest stored
  bar in the range (re-fetching it, since it may have been a partial bar) instead of from
  ``start``.  Stored bars that begin later (another load filled only recent sessions) do
  not count as progress, so the older part is still fetched.
* Instruments missing from the master are looked up with the provider's instrument search
  (exact key match) and added, so ``quantdesk data backfill`` works on an empty database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import Instrument, Timeframe, make_key, parse_key
from quantdesk.marketdata.instruments.service import InstrumentService, to_domain
from quantdesk.marketdata.providers.base import Provider, check_bars_request
from quantdesk.marketdata.providers.setup import build_provider
from quantdesk.platform.db import Database
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.settings import Settings

DEFAULT_CHUNKS: dict[Timeframe, timedelta] = {
    Timeframe.M1: timedelta(days=5),
    Timeframe.D1: timedelta(days=365),
}


@dataclass(frozen=True, slots=True)
class BackfillProgress:
    """After each chunk: where one instrument stands, and how many instruments are done."""

    key: str
    chunk: int  # chunks of this instrument finished
    chunks: int  # chunks of this instrument in total (from its resume point)
    bars: int  # bars written for this instrument so far
    instrument: int  # 0-based position of this instrument
    instruments: int


ProgressCallback = Callable[[BackfillProgress], None]


@dataclass(slots=True)
class InstrumentBackfill:
    key: str
    start: datetime  # where this run started (after resuming)
    bars: int = 0
    chunks: int = 0
    resumed: bool = False


@dataclass(slots=True)
class BackfillReport:
    provider: str
    timeframe: Timeframe
    instruments: list[InstrumentBackfill] = field(default_factory=list)

    @property
    def bars(self) -> int:
        return sum(item.bars for item in self.instruments)


def provider_chunk(provider: Provider, timeframe: Timeframe) -> timedelta:
    """The provider's own chunk for ``timeframe`` (``backfill_chunks``), else the default."""
    own = getattr(provider, "backfill_chunks", None)
    if isinstance(own, Mapping) and isinstance(own.get(timeframe), timedelta):
        chunk: timedelta = own[timeframe]
        return chunk
    return DEFAULT_CHUNKS[timeframe]


def chunk_windows(
    start: datetime, end: datetime, size: timedelta
) -> list[tuple[datetime, datetime]]:
    """``[start, end]`` cut into consecutive inclusive windows of at most ``size``.

    Windows do not overlap: each one ends a second before the next one starts (bar
    timestamps are whole seconds).
    """
    if size <= timedelta(0):
        raise InvalidInput("chunk size must be positive")
    windows: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor <= end:
        upper = min(cursor + size - timedelta(seconds=1), end)
        windows.append((cursor, upper))
        cursor = upper + timedelta(seconds=1)
    return windows


async def _ensure_instruments(
    database: Database, provider: Provider, items: Sequence[str | Instrument]
) -> list[Instrument]:
    """The instruments to fill, from the master; unknown ones are added first."""
    keys = [_canonical(item if isinstance(item, str) else item.key) for item in items]
    found: list[Instrument] = []
    async with database.session() as session:
        service = InstrumentService(session)
        rows = await service.get_rows(keys)
        missing: list[Instrument] = []
        for item, key in zip(items, keys, strict=True):
            if key in rows:
                found.append(to_domain(rows[key]))
                continue
            instrument = (
                item if isinstance(item, Instrument) else await _search_exact(provider, key)
            )
            missing.append(instrument)
            found.append(instrument)
        if missing:
            await service.upsert_many(missing)
    return found


def _canonical(key: str) -> str:
    try:
        return make_key(*parse_key(key))
    except ValueError as exc:
        raise InvalidInput(str(exc), key=key) from None


async def _search_exact(provider: Provider, key: str) -> Instrument:
    symbol = key.partition(":")[2]
    for candidate in await provider.search_instruments(symbol):
        if candidate.key == key:
            return candidate
    raise NotFound(f"{provider.name} has no instrument {key}", provider=provider.name, key=key)


async def _resume_point(
    database: Database,
    key: str,
    timeframe: Timeframe,
    start: datetime,
    end: datetime,
    chunk: timedelta,
) -> tuple[datetime, bool]:
    """Where to (re)start: ``start``, or the newest stored bar when a previous run of this
    backfill got that far (see the module docstring)."""
    after_end = end + timedelta(seconds=1)
    async with database.session() as session:
        store = BarStore(session)
        oldest = await store.series(key, timeframe, start=start, end=after_end, limit=1)
        if len(oldest) == 0 or int(oldest.ts[0]) >= int((start + chunk).timestamp()):
            return start, False
        newest = await store.series(key, timeframe, end=after_end, limit=1)
    return max(start, datetime.fromtimestamp(int(newest.ts[-1]), UTC)), True


async def backfill(
    provider: Provider,
    instruments: Sequence[str | Instrument],
    start: datetime,
    end: datetime,
    timeframe: Timeframe,
    *,
    database: Database,
    chunk: timedelta | None = None,
    progress: ProgressCallback | None = None,
) -> BackfillReport:
    """Fetch ``[start, end]`` bars of each instrument from ``provider`` into the store."""
    check_bars_request(provider.name, timeframe, start, end)
    size = chunk or provider_chunk(provider, timeframe)
    resolved = await _ensure_instruments(database, provider, instruments)
    report = BackfillReport(provider=provider.name, timeframe=timeframe)
    notify = progress or (lambda _event: None)
    for position, instrument in enumerate(resolved):
        key = instrument.key
        first, resumed = await _resume_point(database, key, timeframe, start, end, size)
        item = InstrumentBackfill(key=key, start=first, resumed=resumed)
        report.instruments.append(item)
        windows = chunk_windows(first, end, size)
        notify(BackfillProgress(key, 0, len(windows), 0, position, len(resolved)))
        for window_start, window_end in windows:
            bars = await provider.historical_bars(instrument, timeframe, window_start, window_end)
            if bars:
                async with database.session(immediate=True) as session:
                    item.bars += await BarStore(session).bulk_load(key, timeframe, bars)
            item.chunks += 1
            notify(
                BackfillProgress(key, item.chunks, len(windows), item.bars, position, len(resolved))
            )
    return report


def inclusive_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """CLI dates as a UTC range: naive values are UTC, and a bare ``--to`` date includes
    that whole day."""
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    if end.time() == datetime.min.time():
        end = end + timedelta(days=1) - timedelta(seconds=1)
    return start, end


def run_backfill_cli(
    settings: Settings,
    provider_name: str,
    keys: Sequence[str],
    start: datetime,
    end: datetime,
    timeframe: Timeframe,
) -> BackfillReport:
    """``quantdesk data backfill`` with a rich progress bar per instrument."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    start, end = inclusive_range(start, end)
    console = Console(stderr=True)

    async def main() -> BackfillReport:
        database = Database(settings)
        provider = build_provider(settings, provider_name)
        try:
            with Progress(
                TextColumn("{task.description:<28}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[bars]} bars"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                tasks: dict[str, TaskID] = {}

                def show(event: BackfillProgress) -> None:
                    if event.key not in tasks:
                        tasks[event.key] = progress.add_task(event.key, total=event.chunks, bars=0)
                    progress.update(
                        tasks[event.key],
                        completed=event.chunk,
                        total=event.chunks,
                        bars=event.bars,
                    )

                return await backfill(
                    provider, keys, start, end, timeframe, database=database, progress=show
                )
        finally:
            await provider.aclose()
            await database.dispose()

    return asyncio.run(main())
