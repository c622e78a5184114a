"""The bar store on both databases: bulk loads, exact round trips, idempotency, ranges."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import Bar, BarArrays, Exchange, Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.models import BarRow
from quantdesk.platform.db import Database
from quantdesk.platform.exceptions import InvalidInput, NotFound
from tests.marketdata.samples import equity

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
MONDAY = dt.date(2024, 11, 18)
KEY = "NSE:RELIANCE"


def at(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(int(hhmm[:2]), int(hhmm[2:])), IST).astimezone(dt.UTC)


def minutes(start: dt.datetime, count: int, base: float = 2500.0) -> BarArrays:
    ts = int(start.timestamp()) + 60 * np.arange(count, dtype=np.int64)
    close = np.round(base + 0.05 * np.arange(count), 2)
    return BarArrays(
        ts=ts,
        open=close.copy(),
        high=np.round(close + 0.5, 2),
        low=np.round(close - 0.5, 2),
        close=close,
        volume=np.full(count, 100.0),
    )


@pytest.fixture
async def store_db(md_database: Database) -> Database:
    async with md_database.session(immediate=True) as session:
        await InstrumentService(session).upsert_many(
            [equity("RELIANCE", "Reliance Industries"), equity("AAPL", "Apple", Exchange.NASDAQ)]
        )
    return md_database


async def count_rows(database: Database) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(BarRow)) or 0)


async def test_float_bars_are_written_at_tick_scale(store_db: Database) -> None:
    bars = minutes(at(MONDAY, "0915"), 3)
    async with store_db.session() as session:
        assert await BarStore(session).bulk_load(KEY, Timeframe.M1, bars) == 3
    async with store_db.session() as session:
        series = await BarStore(session).series(KEY, Timeframe.M1)
    assert series.ts.tolist() == bars.ts.tolist()
    assert series.close == ["2500.00", "2500.05", "2500.10"]
    assert series.high == ["2500.50", "2500.55", "2500.60"]
    assert series.volume == ["100", "100", "100"]
    assert series.oi == [None, None, None]
    assert series.rows()[0] == {
        "ts": "2024-11-18T03:45:00Z",
        "open": "2500.00",
        "high": "2500.50",
        "low": "2499.50",
        "close": "2500.00",
        "volume": "100",
        "oi": None,
    }


decimal_prices = st.decimals(
    min_value=Decimal("0.0001"), max_value=Decimal("99999999.99"), places=4, allow_nan=False
)


async def test_decimal_bars_round_trip_exactly(store_db: Database) -> None:
    samples: list[tuple[Decimal, Decimal, Decimal]] = []

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(decimal_prices, decimal_prices, st.integers(0, 10**12))
    def collect(a: Decimal, b: Decimal, volume: int) -> None:
        samples.append((a, b, Decimal(volume)))

    collect()
    samples += [
        (Decimal("0.10"), Decimal("1E+2"), Decimal("0")),
        (Decimal("2500.1000"), Decimal("7"), Decimal("1.5")),
    ]
    start = at(MONDAY, "0915")
    bars = [
        Bar(
            ts=start + dt.timedelta(minutes=i),
            open=a,
            high=max(a, b),
            low=min(a, b),
            close=b,
            volume=v,
            oi=Decimal(i) if i % 2 else None,
        )
        for i, (a, b, v) in enumerate(samples)
    ]
    async with store_db.session() as session:
        await BarStore(session).bulk_load(KEY, Timeframe.M1, bars)
    async with store_db.session() as session:
        series = await BarStore(session).series(KEY, Timeframe.M1, limit=1000)
        orm = list(await session.scalars(select(BarRow).order_by(BarRow.ts)))
    assert len(series) == len(bars) == len(orm)
    for bar, o, h, lo, c, v, oi, row in zip(
        bars,
        series.open,
        series.high,
        series.low,
        series.close,
        series.volume,
        series.oi,
        orm,
        strict=True,
    ):
        assert (o, h, lo, c, v) == tuple(
            format(x, "f") for x in (bar.open, bar.high, bar.low, bar.close, bar.volume)
        )
        assert oi == (None if bar.oi is None else format(bar.oi, "f"))
        # Through the ORM: the same instant (aware UTC) and the same digits and exponent.
        assert row.ts == bar.ts
        assert row.ts.tzinfo is not None
        assert row.close.as_tuple() == Decimal(format(bar.close, "f")).as_tuple()


async def test_reloading_is_idempotent_and_updates_overlaps(store_db: Database) -> None:
    first = minutes(at(MONDAY, "0915"), 100)
    async with store_db.session() as session:
        await BarStore(session).bulk_load(KEY, Timeframe.M1, first)
    async with store_db.session() as session:
        await BarStore(session).bulk_load(KEY, Timeframe.M1, first)
    assert await count_rows(store_db) == 100
    overlapping = minutes(at(MONDAY, "1005"), 100, base=3000.0)  # bars 50..149
    async with store_db.session() as session:
        await BarStore(session).bulk_load(KEY, Timeframe.M1, overlapping)
    assert await count_rows(store_db) == 150
    async with store_db.session() as session:
        series = await BarStore(session).series(KEY, Timeframe.M1, limit=1000)
    assert series.close[49] == "2502.45"
    assert series.close[50] == "3000.00"
    assert series.ts.tolist() == sorted(set(first.ts.tolist()) | set(overlapping.ts.tolist()))


async def test_daily_and_minute_series_are_kept_apart(store_db: Database) -> None:
    day = int(dt.datetime.combine(MONDAY, dt.time(), dt.UTC).timestamp())
    daily = BarArrays(
        np.array([day]),
        np.array([1.0]),
        np.array([2.0]),
        np.array([0.5]),
        np.array([1.5]),
        np.array([10.0]),
        oi=np.array([7.0]),
    )
    async with store_db.session() as session:
        store = BarStore(session)
        await store.bulk_load(KEY, Timeframe.D1, daily)
        await store.bulk_load(KEY, Timeframe.M1, minutes(at(MONDAY, "0915"), 5))
    async with store_db.session() as session:
        store = BarStore(session)
        d = await store.series(KEY, Timeframe.D1)
        m = await store.series(KEY, Timeframe.M1)
        latest = await store.latest_ts(KEY, Timeframe.M5)
        nothing = await store.latest_ts("NASDAQ:AAPL", Timeframe.D1)
        rows = await InstrumentService(session).get_rows([KEY, "NASDAQ:AAPL"])
        many = {
            timeframe: await store.latest_ts_many(list(rows.values()), timeframe)
            for timeframe in (Timeframe.D1, Timeframe.M1)
        }
    assert (len(d), len(m)) == (1, 5)
    assert d.close == ["1.50"]
    assert d.oi == ["7"]
    assert latest == at(MONDAY, "0919")
    assert nothing is None
    # The same in one query for many instruments; one with no bars is left out.
    reliance = rows[KEY].id
    assert many == {
        Timeframe.D1: {reliance: dt.datetime.combine(MONDAY, dt.time(), dt.UTC)},
        Timeframe.M1: {reliance: at(MONDAY, "0919")},
    }


async def test_duplicate_timestamps_in_one_load_keep_the_last(store_db: Database) -> None:
    bars = minutes(at(MONDAY, "0915"), 3)
    doubled = BarArrays(
        np.concatenate((bars.ts, bars.ts[:1])),
        np.concatenate((bars.open, [10.0])),
        np.concatenate((bars.high, [11.0])),
        np.concatenate((bars.low, [9.0])),
        np.concatenate((bars.close, [10.5])),
        np.concatenate((bars.volume, [1.0])),
    )
    async with store_db.session() as session:
        assert await BarStore(session).bulk_load(KEY, Timeframe.M1, doubled) == 3
    async with store_db.session() as session:
        series = await BarStore(session).series(KEY, Timeframe.M1)
    assert series.close == ["10.50", "2500.05", "2500.10"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda b: b.high.__setitem__(7, b.open[7] - 1),
            r"bar 7 \(2024-11-18T03:52:00\+00:00\): high is below",
        ),
        (lambda b: b.low.__setitem__(3, b.close[3] + 1), "bar 3 .*low is above"),
        (lambda b: b.ts.__setitem__(2, b.ts[2] + 30), "bar 2 .*not on a 1m boundary"),
        (lambda b: b.volume.__setitem__(4, -1.0), "bar 4 .*volume is negative"),
        (lambda b: b.close.__setitem__(5, np.nan), "bar 5 .*close is not a finite"),
        (
            lambda b: b.close.__setitem__(1, 2500.0 + 1 / 3),
            "close values are not short decimals",
        ),
    ],
)
async def test_bad_bars_write_nothing(store_db: Database, mutate: object, message: str) -> None:
    bars = minutes(at(MONDAY, "0915"), 10)
    mutate(bars)  # type: ignore[operator]
    with pytest.raises(InvalidInput, match=message):
        async with store_db.session() as session:
            store = BarStore(session)
            await store.bulk_load(KEY, Timeframe.M1, minutes(at(MONDAY, "1200"), 10))
            await store.bulk_load(KEY, Timeframe.M1, bars)
    assert await count_rows(store_db) == 0  # the first, valid load was rolled back too


async def test_bad_requests(store_db: Database) -> None:
    async with store_db.session() as session:
        store = BarStore(session)
        with pytest.raises(InvalidInput, match="5m is derived"):
            await store.bulk_load(KEY, Timeframe.M5, minutes(at(MONDAY, "0915"), 5))
        with pytest.raises(NotFound):
            await store.bulk_load("NSE:NOPE", Timeframe.M1, minutes(at(MONDAY, "0915"), 5))
        with pytest.raises(InvalidInput, match="timezone-aware"):
            naive = Bar(dt.datetime(2024, 1, 1), Decimal(1), Decimal(1), Decimal(1), Decimal(1))
            await store.bulk_load(KEY, Timeframe.M1, [naive])
        with pytest.raises(InvalidInput, match="length"):
            bad = minutes(at(MONDAY, "0915"), 5)
            await store.bulk_load(
                KEY,
                Timeframe.M1,
                BarArrays(bad.ts, bad.open[:2], bad.high, bad.low, bad.close, bad.volume),
            )
        with pytest.raises(InvalidInput, match="from must be before to"):
            await store.series(KEY, Timeframe.M1, start=at(MONDAY, "1000"), end=at(MONDAY, "1000"))
        with pytest.raises(InvalidInput, match="limit"):
            await store.series(KEY, Timeframe.M1, limit=0)
        with pytest.raises(InvalidInput, match="timezone-aware"):
            await store.series(KEY, Timeframe.M1, start=dt.datetime(2024, 1, 1))
        assert await store.bulk_load(KEY, Timeframe.M1, []) == 0


async def test_range_and_limit_semantics(store_db: Database) -> None:
    async with store_db.session() as session:
        await BarStore(session).bulk_load(KEY, Timeframe.M1, minutes(at(MONDAY, "0915"), 60))
    async with store_db.session() as session:
        store = BarStore(session)
        window = await store.series(
            KEY, Timeframe.M1, start=at(MONDAY, "0920"), end=at(MONDAY, "0925")
        )
        first3 = await store.series(KEY, Timeframe.M1, start=at(MONDAY, "0920"), limit=3)
        last3 = await store.series(KEY, Timeframe.M1, limit=3)
        before = await store.series(KEY, Timeframe.M1, end=at(MONDAY, "0920"), limit=2)
    assert window.ts.tolist() == [int(at(MONDAY, f"092{m}").timestamp()) for m in range(5)]
    assert first3.ts.tolist() == window.ts.tolist()[:3]
    assert last3.ts.tolist() == [int(at(MONDAY, h).timestamp()) for h in ("1012", "1013", "1014")]
    assert before.ts.tolist() == [int(at(MONDAY, h).timestamp()) for h in ("0918", "0919")]


async def test_resampled_series_follow_nse_sessions(store_db: Database) -> None:
    thursday = dt.date(2024, 11, 14)  # Friday the 15th is an NSE holiday
    async with store_db.session() as session:
        store = BarStore(session)
        await store.bulk_load(KEY, Timeframe.M1, minutes(at(thursday, "0915"), 375))
        await store.bulk_load(KEY, Timeframe.M1, minutes(at(MONDAY, "0915"), 108, base=3000))
    async with store_db.session() as session:
        store = BarStore(session)
        hourly = await store.series(KEY, Timeframe.H1, limit=1000)
        latest3 = await store.series(KEY, Timeframe.M5, limit=3)
        from_0917 = await store.series(KEY, Timeframe.M5, start=at(MONDAY, "0917"), limit=2)
        spanning = await store.series(
            KEY, Timeframe.M15, start=at(thursday, "1500"), end=at(MONDAY, "0945")
        )
    hours = [dt.datetime.fromtimestamp(int(t), IST).strftime("%d %H%M") for t in hourly.ts]
    assert hours == [
        f"14 {h}" for h in ("0915", "1015", "1115", "1215", "1315", "1415", "1515")
    ] + [
        "18 0915",
        "18 1015",
    ]
    assert hourly.volume[:7] == ["6000"] * 6 + ["1500"]
    assert hourly.volume[-1] == "4800"  # 10:15-11:02: a partial last bar of 48 minutes
    assert hourly.open[7] == "3000.00"
    assert hourly.close[7] == "3002.95"
    assert hourly.high[0] == "2503.45"
    assert hourly.low[0] == "2499.50"
    assert [dt.datetime.fromtimestamp(int(t), IST).strftime("%H%M") for t in latest3.ts] == [
        "1050",
        "1055",
        "1100",
    ]
    assert latest3.volume == ["500", "500", "300"]
    # The bucket holding 09:17 began at 09:15, before ``from``: the first bar is 09:20.
    assert from_0917.ts.tolist() == [
        int(at(MONDAY, "0920").timestamp()),
        int(at(MONDAY, "0925").timestamp()),
    ]
    labels = [dt.datetime.fromtimestamp(int(t), IST).strftime("%d %H%M") for t in spanning.ts]
    assert labels == ["14 1500", "14 1515", "18 0915", "18 0930"]  # no Friday, no weekend


async def test_weekly_series_from_daily_bars(store_db: Database) -> None:
    days = [dt.date(2024, 11, d) for d in (11, 12, 13, 14, 18, 19)]
    ts = np.array([int(dt.datetime.combine(d, dt.time(), dt.UTC).timestamp()) for d in days])
    values = np.array([10.0, 12.0, 11.0, 13.0, 20.0, 19.5])
    daily = BarArrays(ts, values, values + 1, values - 1, values, np.full(6, 5.0))
    async with store_db.session() as session:
        await BarStore(session).bulk_load(KEY, Timeframe.D1, daily)
    async with store_db.session() as session:
        weekly = await BarStore(session).series(KEY, Timeframe.W1)
    assert weekly.ts.tolist() == [ts[0], ts[4]]
    assert (weekly.open, weekly.high, weekly.low, weekly.close, weekly.volume) == (
        ["10.00", "20.00"],
        ["14.00", "21.00"],
        ["9.00", "18.50"],
        ["13.00", "19.50"],
        ["20", "10"],
    )


async def test_fractional_volumes_sum_exactly(store_db: Database) -> None:
    start = at(MONDAY, "0915")
    bars = [
        Bar(
            start + dt.timedelta(minutes=i),
            Decimal(1),
            Decimal(1),
            Decimal(1),
            Decimal(1),
            Decimal("0.1"),
        )
        for i in range(3)
    ]
    async with store_db.session() as session:
        await BarStore(session).bulk_load(KEY, Timeframe.M1, bars)
    async with store_db.session() as session:
        series = await BarStore(session).series(KEY, Timeframe.M5)
    assert series.volume == ["0.3"]  # not 0.30000000000000004


async def test_arrays_view_for_analytics(store_db: Database) -> None:
    bars = minutes(at(MONDAY, "0915"), 4)
    async with store_db.session() as session:
        await BarStore(session).bulk_load(KEY, Timeframe.M1, bars)
    async with store_db.session() as session:
        arrays = (await BarStore(session).series(KEY, Timeframe.M1)).arrays()
    assert np.array_equal(arrays.close, bars.close)
    assert np.array_equal(arrays.ts, bars.ts)
    assert np.isnan(arrays.oi).all()
