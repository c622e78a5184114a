"""The CSV provider: column mapping, timestamp formats, row-numbered validation errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.marketdata.domain import Bar, Exchange, Instrument, InstrumentType, Quote, Timeframe
from quantdesk.marketdata.providers.base import Provider
from quantdesk.marketdata.providers.csv_files import (
    CsvColumns,
    CsvProvider,
    CsvSource,
    parse_bars_csv,
)
from quantdesk.platform.exceptions import InvalidInput, NotFound

RELIANCE = Instrument(Exchange.NSE, "RELIANCE", "Reliance Industries", InstrumentType.EQUITY, "INR")
NIFTY_FUT = Instrument(Exchange.NFO, "NIFTY25SEPFUT", "Nifty Sep fut", InstrumentType.FUTURE, "INR")
DEFAULT = CsvColumns()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_default_columns_iso_daily() -> None:
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2024-01-04,2590.00,2610.50,2585.30,2605.10,4123456\n"
        "2024-01-03,2570,2595,2560.25,2588.4,3900000\n"
    )
    assert parse_bars_csv(text, DEFAULT, Timeframe.D1) == [
        Bar(
            utc("2024-01-03T00:00:00"),
            Decimal("2570"),
            Decimal("2595"),
            Decimal("2560.25"),
            Decimal("2588.4"),
            Decimal(3900000),
        ),
        Bar(
            utc("2024-01-04T00:00:00"),
            Decimal("2590.00"),
            Decimal("2610.50"),
            Decimal("2585.30"),
            Decimal("2605.10"),
            Decimal(4123456),
        ),
    ]


def test_mapped_columns_with_a_strptime_format_and_open_interest() -> None:
    # NSE bhavcopy-like headers, semicolon separated, exchange-local date-times.
    columns = CsvColumns(
        ts="Date",
        open="Open",
        high="High",
        low="Low",
        close="Close",
        volume="Shares Traded",
        oi="Open Int",
        ts_format="%d-%b-%Y %H:%M",
        timezone="Asia/Kolkata",
        delimiter=";",
    )
    text = (
        "Date;Open;High;Low;Close;Shares Traded;Open Int;Ignored\n"
        "05-Jan-2024 09:15;24500;24520.5;24490;24510.05;1500;1250000;x\n"
        "05-Jan-2024 09:16;24510.05;24530;24505;24528;900;1250400;y\n"
    )
    bars = parse_bars_csv(text, columns, Timeframe.M1)
    # 09:15 in Kolkata (UTC+05:30) is 03:45 UTC.
    assert [(b.ts, b.close, b.volume, b.oi) for b in bars] == [
        (utc("2024-01-05T03:45:00"), Decimal("24510.05"), Decimal(1500), Decimal(1250000)),
        (utc("2024-01-05T03:46:00"), Decimal("24528"), Decimal(900), Decimal(1250400)),
    ]


def test_offset_aware_iso_and_epoch_formats() -> None:
    aware = "timestamp,open,high,low,close,volume\n2024-01-05T09:15:00+05:30,1,2,1,2,0\n"
    assert parse_bars_csv(aware, DEFAULT, Timeframe.M1)[0].ts == utc("2024-01-05T03:45:00")
    epoch_ms = CsvColumns(ts="t", ts_format="epoch_ms", volume=None)
    text = "t,open,high,low,close\n1704465900000,1,2,1,2\n"
    [bar] = parse_bars_csv(text, epoch_ms, Timeframe.M1)
    assert (bar.ts, bar.volume, bar.oi) == (utc("2024-01-05T14:45:00"), Decimal(0), None)
    epoch_s = CsvColumns(ts="t", ts_format="epoch_s")
    text = "t,open,high,low,close,volume\n1704465900,1,2,1,2,5\n"
    assert parse_bars_csv(text, epoch_s, Timeframe.M1)[0].ts == utc("2024-01-05T14:45:00")


def test_daily_rows_with_times_key_by_the_local_session_date() -> None:
    columns = CsvColumns(timezone="Asia/Kolkata")
    text = "timestamp,open,high,low,close,volume\n2024-01-05T00:30:00+05:30,1,2,1,2,0\n"
    # 00:30 IST is still 4 January in UTC; the session is 5 January.
    assert parse_bars_csv(text, columns, Timeframe.D1)[0].ts == utc("2024-01-05T00:00:00")


def test_every_bad_row_is_reported_with_its_line_number() -> None:
    text = (
        "timestamp,open,high,low,close,volume\n"  # line 1
        "2024-01-02,100,110,95,105,1000\n"  # line 2: fine
        "2024-01-03,100,99,95,98,1000\n"  # line 3: high below open
        "\n"  # line 4: blank, skipped
        "2024-01-04,abc,110,95,105,-5\n"  # line 5: open not a number, volume negative
        "2024-13-01,100,110,95,105,1000\n"  # line 6: no such date
        "2024-01-02,100,110,95,105,1000\n"  # line 7: duplicate of line 2
        "2024-01-08,100,110,101,105,1000\n"  # line 8: low above open
        "2024-01-09,0,110,95,105,1000\n"  # line 9: zero price
    )
    with pytest.raises(InvalidInput) as caught:
        parse_bars_csv(text, DEFAULT, Timeframe.D1, source="reliance.csv")
    error = caught.value
    assert error.status == 422
    assert error.detail == (
        "reliance.csv: row 3, high: high 99 is below open, close or low (and 6 more)"
    )
    assert error.extra["errors"] == [
        {"row": 3, "column": "high", "message": "high 99 is below open, close or low"},
        {"row": 5, "column": "open", "message": "'abc' is not a number"},
        {"row": 5, "column": "volume", "message": "-5 is negative"},
        {"row": 6, "column": "timestamp", "message": "'2024-13-01' does not match ISO 8601"},
        {"row": 7, "column": "timestamp", "message": "duplicates the bar of row 2"},
        {"row": 8, "column": "low", "message": "low 101 is above open or close"},
        {"row": 9, "column": "open", "message": "price 0 is not positive"},
    ]
    assert error.extra["error_count"] == 7


def test_missing_columns_are_named() -> None:
    with pytest.raises(InvalidInput, match="missing column\\(s\\) volume; the header has") as c:
        parse_bars_csv("timestamp,open,high,low,close\n", DEFAULT, Timeframe.D1)
    assert c.value.extra["errors"] == [{"row": 1, "column": "volume", "message": "missing"}]


def test_minute_rows_must_sit_on_a_minute() -> None:
    text = "timestamp,open,high,low,close,volume\n2024-01-05T09:15:30,1,1,1,1,1\n"
    with pytest.raises(InvalidInput, match=r"row 2, timestamp: .* not on a minute boundary"):
        parse_bars_csv(text, DEFAULT, Timeframe.M1)


def test_short_rows_and_non_finite_numbers() -> None:
    text = "timestamp,open,high,low,close,volume\n2024-01-05,1,1\n2024-01-06,NaN,1,1,1,1\n"
    with pytest.raises(InvalidInput) as caught:
        parse_bars_csv(text, DEFAULT, Timeframe.D1)
    assert [(e["row"], e["column"]) for e in caught.value.extra["errors"]] == [
        (2, "low"),
        (2, "close"),
        (2, "volume"),
        (3, "open"),
    ]


def test_empty_file_has_no_bars() -> None:
    assert parse_bars_csv("", DEFAULT, Timeframe.D1) == []
    assert parse_bars_csv("timestamp,open,high,low,close,volume\n", DEFAULT, Timeframe.D1) == []


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(InvalidInput, match="time zone"):
        CsvColumns(timezone="Mars/Olympus")
    with pytest.raises(InvalidInput, match="delimiter"):
        CsvColumns(delimiter=";;")
    with pytest.raises(InvalidInput, match="1m or 1d"):
        parse_bars_csv("", DEFAULT, Timeframe.H1)


prices = st.decimals(min_value=Decimal("0.05"), max_value=Decimal("99999"), places=2)


@st.composite
def bar_rows(draw: st.DrawFn) -> list[Bar]:
    start = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)))
    start = start.replace(second=0, microsecond=0, tzinfo=UTC)
    steps = draw(st.lists(st.integers(1, 600), min_size=0, max_size=30))
    bars, ts = [], start
    for step in steps:
        ts += timedelta(minutes=step)
        o, c, extra_hi, extra_lo = draw(prices), draw(prices), draw(prices), draw(prices)
        high, low = max(o, c) + extra_hi, max(min(o, c) - extra_lo, Decimal("0.01"))
        volume = Decimal(draw(st.integers(0, 10**9)))
        bars.append(Bar(ts, o, high, low, c, volume))
    return bars


@given(bar_rows())
@settings(max_examples=200, deadline=None)
def test_written_bars_read_back_identically(bars: list[Bar]) -> None:
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{b.ts.isoformat()},{b.open},{b.high},{b.low},{b.close},{b.volume}" for b in bars]
    assert parse_bars_csv("\n".join(lines) + "\n", DEFAULT, Timeframe.M1) == bars


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    daily = tmp_path / "reliance_1d.csv"
    daily.write_text(
        "\ufefftimestamp,open,high,low,close,volume\n"  # with the BOM Excel writes
        "2024-01-03,2570,2595,2560.25,2588.4,3900000\n"
        "2024-01-04,2590.00,2610.50,2585.30,2605.10,4123456\n",
        encoding="utf-8",
    )
    minute = tmp_path / "reliance_1m.csv"
    minute.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-04 15:28:00,2604,2606,2603.5,2605.5,1200\n"
        "2024-01-04 15:29:00,2605.5,2606,2604.9,2605.1,1800\n",
        encoding="utf-8",
    )
    return {"daily": daily, "minute": minute}


def make_provider(files: dict[str, Path]) -> CsvProvider:
    ist = CsvColumns(timezone="Asia/Kolkata")
    return CsvProvider(
        [
            CsvSource(RELIANCE, files["daily"], Timeframe.D1, ist),
            CsvSource(RELIANCE, files["minute"], Timeframe.M1, ist),
        ]
    )


async def test_provider_serves_bars_and_quotes(files: dict[str, Path]) -> None:
    provider = make_provider(files)
    assert isinstance(provider, Provider)
    daily = await provider.historical_bars(
        RELIANCE, Timeframe.D1, utc("2024-01-04T00:00:00"), utc("2024-01-31T00:00:00")
    )
    assert [(b.ts, b.close) for b in daily] == [(utc("2024-01-04T00:00:00"), Decimal("2605.10"))]
    minute = await provider.historical_bars(
        RELIANCE, Timeframe.M1, utc("2024-01-04T09:58:00"), utc("2024-01-04T09:59:00")
    )
    assert [b.ts for b in minute] == [utc("2024-01-04T09:58:00"), utc("2024-01-04T09:59:00")]
    # The finest series answers the quote: the last minute's close at its open time.
    assert await provider.quote(RELIANCE) == Quote(
        key="NSE:RELIANCE",
        last=Decimal("2605.1"),
        ts=utc("2024-01-04T09:59:00"),
        volume=Decimal(1800),
    )
    assert [i.key for i in await provider.search_instruments("reliance ind")] == ["NSE:RELIANCE"]
    assert await provider.search_instruments("tcs") == []
    await provider.aclose()


async def test_daily_only_quote_has_the_previous_close(files: dict[str, Path]) -> None:
    provider = CsvProvider([CsvSource(RELIANCE, files["daily"], Timeframe.D1)])
    quote = await provider.quote(RELIANCE)
    assert (quote.last, quote.prev_close, quote.change) == (
        Decimal("2605.10"),
        Decimal("2588.4"),
        Decimal("16.70"),
    )


async def test_file_changes_are_picked_up(files: dict[str, Path]) -> None:
    provider = make_provider(files)
    window = (utc("2024-01-01T00:00:00"), utc("2024-01-31T00:00:00"))
    assert len(await provider.historical_bars(RELIANCE, Timeframe.D1, *window)) == 2
    with files["daily"].open("a", encoding="utf-8") as handle:
        handle.write("2024-01-05,2605,2620,2600,2615.75,3000000\n")
    bars = await provider.historical_bars(RELIANCE, Timeframe.D1, *window)
    assert [b.close for b in bars][-1] == Decimal("2615.75")


async def test_unknown_instrument_or_missing_file_is_not_found(
    files: dict[str, Path], tmp_path: Path
) -> None:
    provider = make_provider(files)
    with pytest.raises(NotFound, match="no 1d CSV file is configured for NFO:NIFTY25SEPFUT"):
        await provider.historical_bars(
            NIFTY_FUT, Timeframe.D1, utc("2024-01-01T00:00:00"), utc("2024-01-31T00:00:00")
        )
    with pytest.raises(NotFound):
        await provider.quote(NIFTY_FUT)
    gone = CsvProvider([CsvSource(NIFTY_FUT, tmp_path / "nope.csv", Timeframe.D1)])
    with pytest.raises(NotFound, match=r"nope\.csv"):
        await gone.quote(NIFTY_FUT)


async def test_invalid_file_reports_rows_through_the_provider(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,open,high,low,close,volume\n2024-01-03,1,0.5,1,1,1\n")
    provider = CsvProvider([CsvSource(NIFTY_FUT, path, Timeframe.D1)])
    with pytest.raises(InvalidInput, match=r"bad\.csv: row 2, high"):
        await provider.historical_bars(
            NIFTY_FUT, Timeframe.D1, utc("2024-01-01T00:00:00"), utc("2024-01-31T00:00:00")
        )


def test_sources_must_be_1m_or_1d(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="1m or 1d"):
        CsvProvider([CsvSource(RELIANCE, tmp_path / "x.csv", Timeframe.M5)])
