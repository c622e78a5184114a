"""Market data: bulk loads, a 100,000-bar query served as JSON, session-aware resampling.

Targets (issue 4): 1,000,000 1-minute bars into PostgreSQL < 10 s and into SQLite < 20 s; a
100,000-bar range query as JSON < 300 ms end to end; one year of 1-minute bars resampled to
15 minutes < 200 ms.  References measured in the same run:

* loads: pandas ``DataFrame.to_sql`` (SQLAlchemy executemany, ``method="multi"``) of 100,000
  rows into a table of the same shape, scaled x10 (a million would take minutes);
* query: the same bars through the ORM and a pydantic response model (``select(BarRow)`` +
  ``model_dump_json``), the usual FastAPI way, without HTTP;
* resampling: pandas ``resample().agg()`` + ``dropna`` on a clock grid (for NSE's 15-minute
  bars the clock grid from 03:45 UTC coincides with the 09:15 IST session grid).

PostgreSQL is the test harness's throwaway cluster (``tests/support/servers.py``): fsync and
synchronous_commit are off there, as on a bulk-load replica; SQLite runs with WAL and
synchronous=NORMAL, as in production.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import create_engine, desc, select
from tests.support.servers import PostgresServer

from quantdesk.app import create_app
from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.bars.resample import SessionBounds, resample
from quantdesk.marketdata.calendars import get_calendar
from quantdesk.marketdata.domain import BarArrays, Exchange, Instrument, InstrumentType, Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.models import BarRow
from quantdesk.marketdata.schemas import BarOut, BarsRows
from quantdesk.platform import migrations
from quantdesk.platform.db import Database
from quantdesk.settings import Settings

LOAD_BARS = 1_000_000
QUERY_BARS = 100_000
REFERENCE_ROWS = 100_000
PASSWORD = "a sufficiently long passphrase"  # noqa: S105 - benchmark data


def _settings(database_url: str, root: Path) -> Settings:
    return Settings(
        profile="test",
        database_url=database_url,
        var_dir=root / "var",
        secret_key="bench-secret-key-that-is-long-enough-000000",  # noqa: S106
        rate_limit_api="1000000/second",
        rate_limit_login_ip="1000000/minute",
        rate_limit_login_account="1000000/minute",
        log_level="ERROR",
        demo_data=False,
        _env_file=None,
    )


def _stock(symbol: str) -> Instrument:
    return Instrument(
        exchange=Exchange.NSE,
        symbol=symbol,
        name=symbol,
        type=InstrumentType.EQUITY,
        currency="INR",
        tick_size=Decimal("0.05"),
    )


def _minute_bars(count: int, seed: int = 1) -> BarArrays:
    """A random walk on the 0.05 tick, one bar a minute, with volume and open interest."""
    rng = np.random.default_rng(seed)
    ts = 1_700_000_040 + 60 * np.arange(count, dtype=np.int64)
    ticks = 50_000 + np.cumsum(rng.integers(-3, 4, count))
    close = ticks / 20
    open_ = np.roll(close, 1)
    open_[0] = close[0]
    high = np.maximum(open_, close) + rng.integers(0, 3, count) / 20
    low = np.minimum(open_, close) - rng.integers(0, 3, count) / 20
    volume = rng.integers(1, 5000, count).astype(np.float64)
    oi = rng.integers(10_000, 20_000, count).astype(np.float64)
    return BarArrays(ts, open_, high, low, close, volume, oi)


async def _best(operation: Callable[[], Awaitable[object]], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        await operation()
        best = min(best, time.perf_counter() - started)
    return best


async def _load_and_query(settings: Settings) -> dict[str, float]:
    """Bulk loads (two fresh instruments, best of two), a reload, and the 100k query."""
    figures: dict[str, float] = {}
    bars = _minute_bars(LOAD_BARS)
    database = Database(settings)
    try:
        async with database.session() as session:
            await InstrumentService(session).upsert_many([_stock("BENCH1"), _stock("BENCH2")])
        loads: list[float] = []
        for symbol in ("NSE:BENCH1", "NSE:BENCH2"):
            started = time.perf_counter()
            async with database.session() as session:
                await BarStore(session).bulk_load(symbol, Timeframe.M1, bars)
            loads.append(time.perf_counter() - started)
        figures["load"] = min(loads)
        started = time.perf_counter()
        async with database.session() as session:
            await BarStore(session).bulk_load("NSE:BENCH1", Timeframe.M1, bars)
        figures["reload"] = time.perf_counter() - started

        async def orm_query() -> None:
            async with database.session() as session:
                instrument = await InstrumentService(session).get_row("NSE:BENCH1")
                rows = await session.scalars(
                    select(BarRow)
                    .where(BarRow.instrument_id == instrument.id, BarRow.timeframe == "1m")
                    .order_by(desc(BarRow.ts))
                    .limit(QUERY_BARS)
                )
                bars_out = [
                    BarOut(
                        ts=row.ts,
                        open=str(row.open),
                        high=str(row.high),
                        low=str(row.low),
                        close=str(row.close),
                        volume=str(row.volume),
                        oi=None if row.oi is None else str(row.oi),
                    )
                    for row in reversed(list(rows))
                ]
                BarsRows(key="NSE:BENCH1", timeframe="1m", bars=bars_out).model_dump_json()

        figures["query_reference"] = await _best(orm_query, 3)
    finally:
        await database.dispose()
    figures["query"] = await _http_query(settings)
    return figures


async def _http_query(settings: Settings) -> float:
    """GET /api/v1/market/bars through the whole app: middleware, auth, database, JSON."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            credentials = {"email": "bench@example.com", "password": PASSWORD}
            await client.post("/api/v1/auth/register", json=credentials)
            login = await client.post("/api/v1/auth/login", json=credentials)
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            url = f"/api/v1/market/bars/NSE:BENCH1?timeframe=1m&limit={QUERY_BARS}"

            async def query() -> None:
                response = await client.get(url, headers=headers)
                assert response.status_code == 200, response.text
                assert len(response.json()["t"]) == QUERY_BARS

            return await _best(query, 7)


def _reference_load(sync_url: str) -> float:
    """pandas to_sql of REFERENCE_ROWS rows into a scratch table, scaled to LOAD_BARS."""
    bars = _minute_bars(REFERENCE_ROWS, seed=2)
    frame = pd.DataFrame(
        {
            "instrument_id": 1,
            "timeframe": "1m",
            "ts": pd.to_datetime(bars.ts, unit="s", utc=True),
            "open": bars.open,
            "high": bars.high,
            "low": bars.low,
            "close": bars.close,
            "volume": bars.volume,
            "oi": bars.oi,
        }
    )
    engine = create_engine(sync_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE IF EXISTS bars_reference")
            connection.exec_driver_sql(
                "CREATE TABLE bars_reference (instrument_id integer, timeframe varchar(3), "
                "ts timestamp, open numeric, high numeric, low numeric, close numeric, "
                "volume numeric, oi numeric, PRIMARY KEY (instrument_id, timeframe, ts))"
            )
        started = time.perf_counter()
        with engine.begin() as connection:
            frame.to_sql(
                "bars_reference",
                connection,
                if_exists="append",
                index=False,
                method="multi",
                chunksize=1000,
            )
        return (time.perf_counter() - started) * LOAD_BARS / REFERENCE_ROWS
    finally:
        engine.dispose()


def _resample_rows() -> list[tuple[str, float, float, str]]:
    sessions = get_calendar("NSE").sessions(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    bounds = SessionBounds.of(
        [(int(s.open_utc.timestamp()), int(s.close_utc.timestamp())) for s in sessions]
    )
    ts = np.concatenate(
        [
            np.arange(o, c, 60)
            for o, c in zip(bounds.opens.tolist(), bounds.closes.tolist(), strict=True)
        ]
    ).astype(np.int64)
    template = _minute_bars(ts.shape[0])
    bars = BarArrays(
        ts, template.open, template.high, template.low, template.close, template.volume
    )
    frame = pd.DataFrame(
        {
            "open": bars.open,
            "high": bars.high,
            "low": bars.low,
            "close": bars.close,
            "volume": bars.volume,
        },
        index=pd.to_datetime(bars.ts, unit="s", utc=True),
    )
    how = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    rows: list[tuple[str, float, float, str]] = []
    for timeframe, rule, offset in ((Timeframe.M15, "15min", None), (Timeframe.H1, "1h", "45min")):

        def ours_once(timeframe: Timeframe = timeframe) -> object:
            return resample(bars, timeframe, bounds)

        def pandas_once(rule: str = rule, offset: str | None = offset) -> object:
            return frame.resample(rule, offset=offset).agg(how).dropna()

        ours = min(_timed(ours_once) for _ in range(7))
        reference = min(_timed(pandas_once) for _ in range(5))
        target = "< 200 ms" if timeframe is Timeframe.M15 else ""
        rows.append(
            (
                f"resample 1 year of NSE 1m bars ({ts.shape[0]:,}) to {timeframe.value}",
                ours,
                reference,
                target,
            )
        )
    return rows


def _timed(operation: Callable[[], object]) -> float:
    started = time.perf_counter()
    operation()
    return time.perf_counter() - started


def _measure(database_url: str, root: Path) -> tuple[dict[str, float], float]:
    settings = _settings(database_url, root)
    migrations.upgrade(settings, "head")
    figures = asyncio.run(_load_and_query(settings))
    return figures, _reference_load(migrations.sync_url(settings))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def run() -> str:
    rows: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        server = PostgresServer()
        server.start()
        try:
            server.psql("CREATE DATABASE bench")
            postgres, postgres_reference = _measure(server.url("bench"), root / "pg")
        finally:
            server.destroy()
        sqlite, sqlite_reference = _measure(f"sqlite+aiosqlite:///{root / 'bench.db'}", root)
    for name, method, figures, reference, target in (
        ("PostgreSQL", "COPY", postgres, postgres_reference, "< 10 s"),
        ("SQLite", "executemany", sqlite, sqlite_reference, "< 20 s"),
    ):
        load = f"bulk load 1,000,000 1m bars, {name} ({method})"
        rows.append((load, figures["load"], reference, target))
        reload = f"re-load the same 1,000,000 bars (upsert), {name}"
        rows.append((reload, figures["reload"], float("nan"), ""))
        query = f"GET 100,000 1m bars as JSON, end to end, {name}"
        rows.append((query, figures["query"], figures["query_reference"], "< 300 ms"))
    rows += _resample_rows()
    lines = [
        "## Market data: bulk loads, range queries, resampling",
        "",
        "Best of several runs (loads: best of two fresh instruments).  References: pandas "
        "`to_sql` (100,000 rows, scaled x10) for loads; ORM + pydantic response model for the "
        "query (no HTTP); pandas `resample().agg()` for resampling.  PostgreSQL runs with "
        "fsync off (throwaway cluster).",
        "",
        "| operation | quantdesk | reference | target |",
        "|---|---:|---:|---|",
    ]
    for label, ours, reference, target in rows:
        shown = "—" if np.isnan(reference) else _ms(reference)
        lines.append(f"| {label} | {_ms(ours)} | {shown} | {target} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
