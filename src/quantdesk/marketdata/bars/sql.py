"""The bar store's SQL, per database, at the driver level (asyncpg, aiosqlite).

Writes: PostgreSQL gets one ``COPY`` of CSV text, straight into ``bars`` when no stored bar
overlaps the load's span (inside a savepoint, so a concurrent load of the same span falls
back cleanly), else into a temporary table merged with ``INSERT … ON CONFLICT DO UPDATE``.
SQLite gets one ``executemany`` of ``INSERT … ON CONFLICT DO UPDATE``.

Reads: a range query returns *one row* whose columns are the bars' values joined into text
by the database (``string_agg`` / ``group_concat``), so 100,000 bars cost a handful of
Python objects instead of 700,000, and the columnar JSON is assembled by concatenation.
An aggregate over an ordered subquery keeps that order in both databases; ``ts`` comes back
too and is checked, and should the order ever differ the columns are re-sorted by it (all
columns of a row enter the aggregates together, so they always stay aligned).

The statements are assembled from constants and numbered placeholders only (the ``# nosec
B608`` / ``noqa: S608`` marks); every value — instrument id, timeframe, bounds, limits — is
a bound parameter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.bars.prep import (
    ByteMatrix,
    PreparedBars,
    csv_bytes,
    matrix_lines,
    parse_timestamps,
    timestamp_matrix,
)
from quantdesk.marketdata.domain import FloatArray, IntArray, Timeframe
from quantdesk.platform.responses import ORJSON_OPTIONS

VALUE_COLUMNS = ("open", "high", "low", "close", "volume", "oi")
# Separator of the joined text columns: a JSON string boundary, so '["' + text + '"]' is
# already the JSON array.  Prices are digits, '.', '-' only, so it cannot occur inside one.
QUOTED = '","'
_SET = ", ".join(f"{c} = excluded.{c}" for c in VALUE_COLUMNS)
_INSERT = "INSERT INTO bars (instrument_id, timeframe, ts, open, high, low, close, volume, oi) "
_SQLITE_UPSERT = (
    _INSERT
    + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    + f"ON CONFLICT (instrument_id, timeframe, ts) DO UPDATE SET {_SET}"  # nosec B608
)
_PG_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS qd_bars_load (ts timestamptz, open numeric, "
    "high numeric, low numeric, close numeric, volume numeric, oi numeric) ON COMMIT DROP"
)
_PG_MERGE = (
    _INSERT  # noqa: S608 - constants only; values are bound parameters
    + "SELECT $1, $2, ts, open, high, low, close, volume, oi FROM qd_bars_load "  # nosec B608
    + f"ON CONFLICT (instrument_id, timeframe, ts) DO UPDATE SET {_SET}"  # nosec B608
)
# Refresh planner statistics after loads this big, so the first queries use the primary
# key rather than a plan made for an empty table (autovacuum would get there later).
_ANALYZE_AFTER_ROWS = 50_000
# The SQLite stamp format of SQLAlchemy's DateTime: "YYYY-MM-DD HH:MM:SS.ffffff".
_SQLITE_STAMP_WIDTH = 26


async def driver(session: AsyncSession) -> Any:
    """The driver connection inside the session's transaction (asyncpg or aiosqlite)."""
    connection = await session.connection()
    # asyncpg's adapter opens its transaction lazily, at the first statement it runs.
    await connection.exec_driver_sql("SELECT 1")
    raw = await connection.get_raw_connection()
    return raw.driver_connection


@dataclass(frozen=True, slots=True)
class Joined:
    """Bars as the database returned them: ``ts`` ascending and each column as joined text
    (``QUOTED``-separated; ``oi`` as comma-separated JSON values, ``null`` where missing)."""

    ts: IntArray
    text: dict[str, str]

    @classmethod
    def empty(cls) -> Joined:
        return cls(np.empty(0, dtype=np.int64), dict.fromkeys(VALUE_COLUMNS, ""))

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def values(self, column: str) -> list[str]:
        return self.text[column].split(QUOTED) if len(self) else []

    def oi_values(self) -> list[str | None]:
        if not len(self):
            return []
        return [None if v == "null" else v[1:-1] for v in self.text["oi"].split(",")]

    def floats(self, column: str) -> FloatArray:
        return np.array(self.values(column), dtype=np.float64)

    def columnar_json(self, key: str, timeframe: Timeframe) -> bytes:
        """``{"key", "timeframe", "t", "o", "h", "l", "c", "v", "oi"}`` without building
        a Python object per value."""
        head = orjson.dumps({"key": key, "timeframe": timeframe.value})[:-1]
        parts = [head, b',"t":', orjson.dumps(self.ts, option=ORJSON_OPTIONS)]
        for name, column in zip("ohlcv", VALUE_COLUMNS, strict=False):
            body = self.text[column].encode()
            parts.append(f',"{name}":'.encode())
            parts.append(b'["' + body + b'"]' if len(self) else b"[]")
        parts += [b',"oi":[', self.text["oi"].encode(), b"]}"]
        return b"".join(parts)

    def sorted(self) -> Joined:
        """Self when ascending (always, in practice); else re-ordered by ``ts``."""
        if len(self) < 2 or bool(np.all(np.diff(self.ts) > 0)):
            return self
        order = np.argsort(self.ts, kind="stable").tolist()
        text: dict[str, str] = {}
        for column in VALUE_COLUMNS:
            separator = "," if column == "oi" else QUOTED
            values = self.text[column].split(separator)
            text[column] = separator.join([values[i] for i in order])
        return Joined(self.ts[order], text)


# -- writing ---------------------------------------------------------------------------


def _prefix_matrix(prefix: str, count: int) -> ByteMatrix:
    return np.broadcast_to(np.frombuffer(prefix.encode(), dtype=np.uint8), (count, len(prefix)))


async def load_postgres(
    conn: Any, instrument_id: int, timeframe: Timeframe, bars: PreparedBars
) -> None:
    values = [bars.columns[c] for c in VALUE_COLUMNS]
    stamps = timestamp_matrix(bars.ts, "T", "+00")
    first = dt.datetime.fromtimestamp(int(bars.ts[0]), dt.UTC)
    last = dt.datetime.fromtimestamp(int(bars.ts[-1]), dt.UTC)
    overlaps = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM bars WHERE instrument_id = $1 AND timeframe = $2 "
        "AND ts BETWEEN $3 AND $4)",
        instrument_id,
        timeframe.value,
        first,
        last,
    )
    copied = False
    if not overlaps:
        prefix = _prefix_matrix(f"{instrument_id},{timeframe.value}", len(bars))
        body = csv_bytes([prefix, stamps, *values])
        try:
            async with conn.transaction():  # a savepoint inside the unit of work
                await conn.copy_to_table(
                    "bars",
                    source=memoryview(body),  # bytes would be taken for a file path
                    columns=["instrument_id", "timeframe", "ts", *VALUE_COLUMNS],
                    format="csv",
                )
            copied = True
        except Exception as exc:
            # 23505 unique_violation: a concurrent load wrote into the span meanwhile, so
            # merge instead.  Matched by SQLSTATE to keep asyncpg out of the imports.
            if getattr(exc, "sqlstate", None) != "23505":
                raise
    if not copied:
        await conn.execute(_PG_STAGE)
        await conn.execute("TRUNCATE qd_bars_load")
        await conn.copy_to_table(
            "qd_bars_load",
            source=memoryview(csv_bytes([stamps, *values])),
            columns=["ts", *VALUE_COLUMNS],
            format="csv",
        )
        await conn.execute(_PG_MERGE, instrument_id, timeframe.value)
    if len(bars) >= _ANALYZE_AFTER_ROWS:
        await conn.execute("ANALYZE bars")


async def load_sqlite(
    conn: Any, instrument_id: int, timeframe: Timeframe, bars: PreparedBars
) -> None:
    # SQLAlchemy stores UTCDateTime on SQLite as naive UTC "YYYY-MM-DD HH:MM:SS.ffffff";
    # writing the same text keeps ORM reads and these raw range scans consistent.
    stamps = matrix_lines(timestamp_matrix(bars.ts, " ", ".000000"), strip=False)
    columns = [matrix_lines(bars.columns[c]) for c in VALUE_COLUMNS]
    oi = [value or None for value in columns[-1]] if bars.has_oi else repeat(None)
    rows = zip(
        repeat(instrument_id), repeat(timeframe.value), stamps, *columns[:-1], oi, strict=False
    )
    await conn.executemany(_SQLITE_UPSERT, list(rows))


# -- reading ---------------------------------------------------------------------------


def _sqlite_time(ts: int) -> str:
    stamp = timestamp_matrix(np.array([ts], dtype=np.int64), " ", ".000000")
    return matrix_lines(stamp, strip=False)[0]


def _where(
    placeholder: Any, instrument_id: int, timeframe: Timeframe, bounds: list[tuple[str, Any]]
) -> tuple[str, list[Any]]:
    params: list[Any] = [instrument_id, timeframe.value]
    clauses = [f"instrument_id = {placeholder(1)}", f"timeframe = {placeholder(2)}"]
    for operator, value in bounds:
        params.append(value)
        clauses.append(f"ts {operator} {placeholder(len(params))}")
    return " AND ".join(clauses), params


async def fetch_sqlite(
    conn: Any,
    instrument_id: int,
    timeframe: Timeframe,
    start_ts: int | None,
    end_ts: int | None,
    limit: int,
    newest: bool,
) -> Joined:
    def bounds(start: int | None) -> list[tuple[str, Any]]:
        found = [(">=", _sqlite_time(start))] if start is not None else []
        return found + ([("<", _sqlite_time(end_ts))] if end_ts is not None else [])

    if newest:
        # The limit-th newest bar before ``end``; reading ascending from it avoids a sort.
        where, params = _where(lambda _: "?", instrument_id, timeframe, bounds(None))
        cursor = await conn.execute(
            f"SELECT ts FROM bars WHERE {where} ORDER BY ts DESC LIMIT 1 OFFSET ?",  # noqa: S608  # nosec B608
            (*params, limit - 1),
        )
        row = await cursor.fetchone()
        await cursor.close()
        if row is not None:
            start_ts = int(parse_timestamps(row[0], 1)[0])
    where, params = _where(lambda _: "?", instrument_id, timeframe, bounds(start_ts))
    cursor = await conn.execute(
        "SELECT count(*), group_concat(ts, ''), group_concat(open, '\",\"'), "  # noqa: S608  # nosec B608
        "group_concat(high, '\",\"'), group_concat(low, '\",\"'), "
        "group_concat(close, '\",\"'), group_concat(volume, '\",\"'), "
        "group_concat(CASE WHEN oi IS NULL THEN 'null' ELSE '\"' || oi || '\"' END, ',') "
        "FROM (SELECT ts, open, high, low, close, volume, oi FROM bars "
        f"WHERE {where} ORDER BY ts LIMIT ?)",
        (*params, limit),
    )
    row = await cursor.fetchone()
    await cursor.close()
    count = int(row[0])
    if count == 0:
        return Joined.empty()
    ts = parse_timestamps(row[1], count, _SQLITE_STAMP_WIDTH)
    return Joined(ts, dict(zip(VALUE_COLUMNS, row[2:], strict=True))).sorted()


async def newest_sqlite(
    conn: Any, instrument_ids: list[int], timeframe: Timeframe
) -> dict[int, int]:
    """The newest stored bar's ``ts`` (epoch seconds) of each instrument that has any."""
    marks = ", ".join("?" * len(instrument_ids))
    cursor = await conn.execute(
        "SELECT instrument_id, max(ts) FROM bars WHERE timeframe = ? "  # noqa: S608  # nosec B608
        f"AND instrument_id IN ({marks}) GROUP BY instrument_id",
        (timeframe.value, *instrument_ids),
    )
    rows = await cursor.fetchall()
    await cursor.close()
    return {int(row[0]): int(parse_timestamps(row[1], 1, len(row[1]))[0]) for row in rows}


async def newest_postgres(
    conn: Any, instrument_ids: list[int], timeframe: Timeframe
) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT instrument_id, date_part('epoch', max(ts))::bigint FROM bars "
        "WHERE timeframe = $1 AND instrument_id = ANY($2::int[]) GROUP BY instrument_id",
        timeframe.value,
        instrument_ids,
    )
    return {int(row[0]): int(row[1]) for row in rows}


async def fetch_postgres(
    conn: Any,
    instrument_id: int,
    timeframe: Timeframe,
    start_ts: int | None,
    end_ts: int | None,
    limit: int,
    newest: bool,
) -> Joined:
    def bounds(start: int | None) -> list[tuple[str, Any]]:
        found = [(">=", dt.datetime.fromtimestamp(start, dt.UTC))] if start is not None else []
        if end_ts is not None:
            found.append(("<", dt.datetime.fromtimestamp(end_ts, dt.UTC)))
        return found

    def placeholder(n: int) -> str:
        return f"${n}"

    if newest:
        where, params = _where(placeholder, instrument_id, timeframe, bounds(None))
        cutoff = await conn.fetchval(
            f"SELECT date_part('epoch', ts)::bigint FROM bars WHERE {where} "  # noqa: S608  # nosec B608
            f"ORDER BY ts DESC LIMIT 1 OFFSET ${len(params) + 1}",
            *params,
            limit - 1,
        )
        if cutoff is not None:
            start_ts = int(cutoff)
    where, params = _where(placeholder, instrument_id, timeframe, bounds(start_ts))
    row = await conn.fetchrow(
        "SELECT count(*), string_agg(date_part('epoch', ts)::bigint::text, ','), "  # noqa: S608  # nosec B608
        "string_agg(open::text, '\",\"'), string_agg(high::text, '\",\"'), "
        "string_agg(low::text, '\",\"'), string_agg(close::text, '\",\"'), "
        "string_agg(volume::text, '\",\"'), "
        "string_agg(CASE WHEN oi IS NULL THEN 'null' ELSE '\"' || oi::text || '\"' END, ',') "
        "FROM (SELECT ts, open, high, low, close, volume, oi FROM bars "
        f"WHERE {where} ORDER BY ts LIMIT ${len(params) + 1}) AS page",
        *params,
        limit,
    )
    count = int(row[0])
    if count == 0:
        return Joined.empty()
    ts = np.array(row[1].split(","), dtype=np.int64)
    return Joined(ts, dict(zip(VALUE_COLUMNS, row[2:], strict=True))).sorted()
