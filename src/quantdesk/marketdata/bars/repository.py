"""The bar store: idempotent bulk loads and range queries, served at any timeframe.

Only 1m and 1d bars are stored; 5m/15m/30m/1h are resampled from 1m on each exchange's
sessions and 1w from 1d (``resample``).  ``BarStore(session)`` works inside the caller's
unit of work (the request's, or the CLI's), so a failed load writes nothing.

Loads and range reads bypass the ORM (``bar_sql``): a million rows through per-object
bookkeeping would take minutes.  Prices leave exactly as stored — decimal text from the
database, never a float — and a resampled bar takes its open, high, low and close text from
the very source bars that hold them, so resampling adds no digits either.  Callers that load
on SQLite while other writers are active should open their session with ``immediate=True``
to take the write lock up front.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise
from typing import Any

import numpy as np
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.bars import sql as bar_sql
from quantdesk.marketdata.bars.prep import matrix_lines, prepare, timestamp_matrix
from quantdesk.marketdata.bars.resample import Buckets, buckets_for
from quantdesk.marketdata.bars.sql import Joined
from quantdesk.marketdata.bars.trading_sessions import session_bounds
from quantdesk.marketdata.domain import (
    STORED_TIMEFRAMES,
    Bar,
    BarArrays,
    Exchange,
    FloatArray,
    Instrument,
    IntArray,
    Timeframe,
    make_key,
)
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.models import InstrumentRow
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.platform.responses import ORJSON_OPTIONS

MAX_LIMIT = 100_000
# Stored bars one request may read to build coarser ones (about four years of NSE minutes);
# a longer span returns the bars this many minutes make.
MAX_BASE_READ = 1_000_000


class BarSeries:
    """Bars of one instrument and timeframe: ``ts`` epoch seconds (bar open, UTC) ascending,
    values as decimal text.

    A series read straight from storage keeps the database's joined text and splits it into
    per-bar lists only when asked, so the columnar JSON of a stored timeframe never builds a
    Python object per value.
    """

    def __init__(
        self,
        key: str,
        timeframe: Timeframe,
        ts: IntArray,
        values: dict[str, list[str]] | None = None,
        oi: list[str | None] | None = None,
        joined: Joined | None = None,
    ) -> None:
        if joined is None and (values is None or oi is None):
            raise ValueError("a series needs either values and oi or the joined text")
        self.key = key
        self.timeframe = timeframe
        self.ts = ts
        self._values = values
        self._oi = oi
        self._joined = joined

    @classmethod
    def from_joined(cls, key: str, timeframe: Timeframe, joined: Joined) -> BarSeries:
        return cls(key, timeframe, joined.ts, joined=joined)

    def _column(self, name: str) -> list[str]:
        if self._values is None:
            assert self._joined is not None  # noqa: S101 - guaranteed by __init__
            self._values = {c: self._joined.values(c) for c in bar_sql.VALUE_COLUMNS[:-1]}
        return self._values[name]

    @property
    def open(self) -> list[str]:
        return self._column("open")

    @property
    def high(self) -> list[str]:
        return self._column("high")

    @property
    def low(self) -> list[str]:
        return self._column("low")

    @property
    def close(self) -> list[str]:
        return self._column("close")

    @property
    def volume(self) -> list[str]:
        return self._column("volume")

    @property
    def oi(self) -> list[str | None]:
        if self._oi is None:
            assert self._joined is not None  # noqa: S101 - guaranteed by __init__
            self._oi = self._joined.oi_values()
        return self._oi

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def columnar(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "timeframe": self.timeframe.value,
            "t": self.ts,
            "o": self.open,
            "h": self.high,
            "l": self.low,
            "c": self.close,
            "v": self.volume,
            "oi": self.oi,
        }

    def columnar_json(self) -> bytes:
        """The columnar shape as JSON bytes (straight from the database text when it can)."""
        if self._joined is not None:
            return self._joined.columnar_json(self.key, self.timeframe)
        return orjson.dumps(self.columnar(), option=ORJSON_OPTIONS)

    def rows(self) -> list[dict[str, Any]]:
        stamps = matrix_lines(timestamp_matrix(self.ts, "T", "Z"), strip=False)
        columns = (self.open, self.high, self.low, self.close, self.volume, self.oi)
        return [
            {"ts": t, "open": o, "high": h, "low": lo, "close": c, "volume": v, "oi": oi}
            for t, o, h, lo, c, v, oi in zip(stamps, *columns, strict=True)
        ]

    def arrays(self) -> BarArrays:
        """The series as float64 columns (analytics, charts); NaN where OI is missing."""

        def floats(values: Sequence[str | None]) -> FloatArray:
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

        return BarArrays(
            ts=self.ts,
            open=floats(self.open),
            high=floats(self.high),
            low=floats(self.low),
            close=floats(self.close),
            volume=floats(self.volume),
            oi=floats(self.oi),
        )


# Range bounds are clamped to what a bar can carry: no bar opens before 1900 or after 2200,
# and an instant like 0001-01-01T00:00+14:00 (year 0 in UTC) cannot reach PostgreSQL.
_EARLIEST_TS = int(dt.datetime(1900, 1, 1, tzinfo=dt.UTC).timestamp())
_LATEST_TS = int(dt.datetime(2200, 1, 1, tzinfo=dt.UTC).timestamp())


def _epoch(at: dt.datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput("times must be timezone-aware (e.g. 2024-01-01T00:00:00Z)")
    if at.year < 1900:
        return _EARLIEST_TS
    if at.year >= 2200:
        return _LATEST_TS
    return int(at.timestamp())


class BarStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._driver: tuple[object, Any] | None = None

    async def _connection(self) -> Any:
        """The driver connection of the session's current transaction, found once per
        transaction: finding it costs a round trip (``bar_sql.driver``), and a loader writes
        hundreds of series in one transaction."""
        transaction = self.session.get_transaction()
        if self._driver is not None and transaction is self._driver[0]:
            return self._driver[1]
        conn = await bar_sql.driver(self.session)
        self._driver = (self.session.get_transaction(), conn)
        return conn

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def _instrument(self, instrument: str | Instrument | InstrumentRow) -> InstrumentRow:
        if isinstance(instrument, InstrumentRow):
            return instrument
        key = instrument.key if isinstance(instrument, Instrument) else instrument
        return await InstrumentService(self.session).get_row(key)

    async def bulk_load(
        self,
        instrument: str | Instrument | InstrumentRow,
        timeframe: Timeframe,
        bars: BarArrays | Sequence[Bar],
    ) -> int:
        """Upsert ``bars`` (1m or 1d) of an instrument already in the master; returns the
        number of distinct bars written.  Loading the same bars again changes nothing."""
        if timeframe not in STORED_TIMEFRAMES:
            stored = ", ".join(t.value for t in STORED_TIMEFRAMES)
            raise InvalidInput(f"only {stored} bars are stored; {timeframe.value} is derived")
        row = await self._instrument(instrument)
        prepared = prepare(bars, timeframe, row.tick_size)
        if len(prepared) == 0:
            return 0
        conn = await self._connection()
        if self._postgres:
            await bar_sql.load_postgres(conn, row.id, timeframe, prepared)
        else:
            await bar_sql.load_sqlite(conn, row.id, timeframe, prepared)
        return len(prepared)

    async def latest_ts(
        self, instrument: str | Instrument | InstrumentRow, timeframe: Timeframe
    ) -> dt.datetime | None:
        """Open time of the newest stored bar (resumable backfills start after it)."""
        row = await self._instrument(instrument)
        return (await self.latest_ts_many([row], timeframe)).get(row.id)

    async def latest_ts_many(
        self, rows: Sequence[InstrumentRow], timeframe: Timeframe
    ) -> dict[int, dt.datetime]:
        """The open time of each instrument's newest stored bar, in one query, by instrument
        id (those with no stored bar of ``timeframe`` are left out)."""
        if not rows:
            return {}
        conn = await self._connection()
        newest = bar_sql.newest_postgres if self._postgres else bar_sql.newest_sqlite
        found = await newest(conn, [row.id for row in rows], timeframe.stored_base)
        return {key: dt.datetime.fromtimestamp(ts, dt.UTC) for key, ts in found.items()}

    async def series(
        self,
        instrument: str | Instrument | InstrumentRow,
        timeframe: Timeframe,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        limit: int = 10_000,
    ) -> BarSeries:
        """Bars opening in ``[start, end)``, ascending, at most ``limit``.

        With ``start`` the earliest ``limit`` bars from it; without, the latest ``limit``
        bars before ``end`` (default: all time).  A bar still forming at ``end`` is returned
        from the minutes stored so far (a partial bar).
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
        row = await self._instrument(instrument)
        start_ts = _epoch(start) if start is not None else None
        end_ts = _epoch(end) if end is not None else None
        if start_ts is not None and end_ts is not None and start_ts >= end_ts:
            raise InvalidInput("from must be before to", field="from")
        key = make_key(row.exchange, row.symbol)
        base = timeframe.stored_base
        newest = start_ts is None
        if timeframe is base:
            fetched = await self._fetch(row.id, base, start_ts, end_ts, limit, newest)
            return BarSeries.from_joined(key, timeframe, fetched)
        # Each target bar holds at most ``per_bucket`` base bars, so this many base bars
        # always covers ``limit`` target bars plus one possibly cut-off bucket at the edge.
        weekly = timeframe is Timeframe.W1
        per_bucket = 7 if weekly else timeframe.duration // base.duration
        width = 7 * 86_400 if weekly else int(timeframe.duration.total_seconds())
        wanted = min((limit + 2) * per_bucket, MAX_BASE_READ)
        # Reach back one bucket so the bucket holding ``start`` is complete, then drop it.
        fetch_start = start_ts - width if start_ts is not None else None
        fetched = await self._fetch(row.id, base, fetch_start, end_ts, wanted, newest)
        if len(fetched) == 0:
            return BarSeries.from_joined(key, timeframe, fetched)
        sessions = (
            None
            if weekly
            else session_bounds(Exchange(row.exchange), int(fetched.ts[0]), int(fetched.ts[-1]))
        )
        high, low = fetched.floats("high"), fetched.floats("low")
        buckets = buckets_for(timeframe, fetched.ts, high, low, sessions)
        truncated = len(fetched) == wanted
        if start_ts is None:
            first = 1 if truncated and len(buckets) > 0 else 0
            chosen = slice(max(first, len(buckets) - limit), len(buckets))
        else:
            first = int(np.searchsorted(buckets.ts, start_ts, side="left"))
            stop = len(buckets) - 1 if truncated else len(buckets)
            chosen = slice(first, max(first, min(stop, first + limit)))
        return _resampled(key, timeframe, fetched, buckets, chosen)

    async def _fetch(
        self,
        instrument_id: int,
        timeframe: Timeframe,
        start_ts: int | None,
        end_ts: int | None,
        limit: int,
        newest: bool,
    ) -> Joined:
        conn = await self._connection()
        fetch = bar_sql.fetch_postgres if self._postgres else bar_sql.fetch_sqlite
        return await fetch(conn, instrument_id, timeframe, start_ts, end_ts, limit, newest)


def _resampled(
    key: str, timeframe: Timeframe, fetched: Joined, buckets: Buckets, chosen: slice
) -> BarSeries:
    def pick(values: Sequence[Any], index: IntArray) -> list[Any]:
        return [values[i] for i in index[chosen].tolist()]

    values = {
        "open": pick(fetched.values("open"), buckets.first),
        "high": pick(fetched.values("high"), buckets.high),
        "low": pick(fetched.values("low"), buckets.low),
        "close": pick(fetched.values("close"), buckets.last),
        "volume": _volume_sums(buckets, fetched.values("volume"), chosen),
    }
    return BarSeries(
        key, timeframe, buckets.ts[chosen], values, pick(fetched.oi_values(), buckets.last)
    )


def _volume_sums(buckets: Buckets, text: list[str], chosen: slice) -> list[str]:
    volume = np.array(text, dtype=np.float64)
    sums = buckets.sum(volume)[chosen]
    if np.array_equal(volume, np.rint(volume)) and np.all(sums < 2.0**53):
        # Whole-number volumes add exactly in float64 below 2**53.
        return [str(int(v)) for v in sums.tolist()]
    bounds = np.append(buckets.starts, buckets.members.shape[0]).tolist()
    members = buckets.members.tolist()
    exact = [
        sum((Decimal(text[members[j]]) for j in range(a, b)), Decimal(0))
        for a, b in pairwise(bounds)
    ]
    return [format(v, "f") for v in exact[chosen]]
