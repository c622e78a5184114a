"""The Provider protocol's helpers, the registry, and the shared payload parsing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.marketdata.domain import Bar, Exchange, Instrument, InstrumentType, Timeframe
from quantdesk.marketdata.providers.base import Provider, ProviderRegistry, check_bars_request
from quantdesk.marketdata.providers.csv_files import CsvProvider, CsvSource
from quantdesk.marketdata.providers.parsing import (
    bars_in_range,
    epoch_to_utc,
    exact_decimal,
    instrument_key_or_none,
    session_date_of,
    session_day,
)
from quantdesk.platform.exceptions import InvalidInput, NotFound


class Boom(Exception):
    pass


def bad(message: str) -> Exception:
    return Boom(message)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class ClosingProvider(CsvProvider):
    """A provider that records being closed, or fails to close."""

    def __init__(self, name: str, fail: bool = False) -> None:
        super().__init__([], name=name)
        self.closed = False
        self.fail = fail

    async def aclose(self) -> None:
        self.closed = True
        if self.fail:
            raise RuntimeError(f"{self.name} would not close")


async def test_registry_finds_by_name_and_closes_everything() -> None:
    first, broken, last = (
        ClosingProvider("a"),
        ClosingProvider("b", fail=True),
        ClosingProvider("c"),
    )
    registry = ProviderRegistry([first, broken])
    registry.add(last)
    assert registry.names() == ["a", "b", "c"]
    assert registry.get("c") is last
    assert "a" in registry
    assert len(registry) == 3
    with pytest.raises(NotFound, match="unknown market-data provider 'z'; configured: a, b, c"):
        registry.get("z")
    with pytest.raises(ValueError, match="already registered"):
        registry.add(ClosingProvider("a"))
    with pytest.raises(RuntimeError, match="b would not close"):
        await registry.aclose()
    assert (first.closed, broken.closed, last.closed) == (True, True, True)


def test_csv_provider_satisfies_the_protocol(tmp_path: Path) -> None:
    instrument = Instrument(Exchange.NSE, "TCS", "TCS", InstrumentType.EQUITY, "INR")
    provider = CsvProvider([CsvSource(instrument, tmp_path / "tcs.csv", Timeframe.D1)])
    assert isinstance(provider, Provider)


def test_check_bars_request() -> None:
    start, end = utc("2024-01-01T00:00:00"), utc("2024-01-02T00:00:00")
    check_bars_request("x", Timeframe.M1, start, end)
    check_bars_request("x", Timeframe.D1, start, start)
    with pytest.raises(InvalidInput, match="serves timeframes 1m, 1d, not 1h"):
        check_bars_request("x", Timeframe.H1, start, end)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        check_bars_request("x", Timeframe.D1, start.replace(tzinfo=None), end)
    with pytest.raises(InvalidInput, match="after end"):
        check_bars_request("x", Timeframe.D1, end, start)


@given(st.decimals(allow_nan=False, allow_infinity=False))
@settings(deadline=None)
def test_exact_decimal_keeps_every_digit(number: Decimal) -> None:
    assert exact_decimal(str(number), "x", bad) == number
    assert str(exact_decimal(number, "x", bad)) == str(number)


@given(st.floats(allow_nan=False, allow_infinity=False))
@settings(deadline=None)
def test_floats_become_their_shortest_repr(number: float) -> None:
    assert exact_decimal(number, "x", bad) == Decimal(repr(number))


@pytest.mark.parametrize("value", [None, True, "abc", "NaN", "Infinity", [1], {"p": 1}])
def test_exact_decimal_rejects_non_numbers(value: object) -> None:
    with pytest.raises(Boom):
        exact_decimal(value, "price", bad)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))
@settings(deadline=None)
def test_epoch_units_agree(moment: datetime) -> None:
    moment = moment.replace(tzinfo=UTC)
    micros = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert epoch_to_utc(micros * 1000, "t", bad, scale=1_000_000_000) == moment
    assert epoch_to_utc(micros // 1000, "t", bad, scale=1000) == moment.replace(
        microsecond=moment.microsecond // 1000 * 1000
    )
    assert epoch_to_utc(micros // 1_000_000, "t", bad) == moment.replace(microsecond=0)


@pytest.mark.parametrize("value", ["1700000000", 1.5, Decimal("1.5"), True, None, 10**20])
def test_epoch_rejects_non_integers_and_out_of_range(value: object) -> None:
    with pytest.raises(Boom):
        epoch_to_utc(value, "t", bad)


@pytest.mark.parametrize(
    ("stamp", "exchange", "session"),
    [
        ("2024-01-05T00:00:00", Exchange.NASDAQ, date(2024, 1, 5)),  # Finnhub: midnight UTC
        ("2024-01-05T05:00:00", Exchange.NASDAQ, date(2024, 1, 5)),  # Polygon: midnight EST
        ("2024-07-05T04:00:00", Exchange.NYSE, date(2024, 7, 5)),  # midnight EDT
        ("2024-01-04T18:30:00", Exchange.NSE, date(2024, 1, 5)),  # midnight IST
        ("2024-01-05T00:00:00", Exchange.NSE, date(2024, 1, 5)),
    ],
)
def test_session_date_of_daily_stamps(stamp: str, exchange: Exchange, session: date) -> None:
    assert session_date_of(utc(stamp), exchange) == session
    assert session_day(session) == datetime(session.year, session.month, session.day, tzinfo=UTC)


def test_bars_in_range_sorts_trims_and_dedupes() -> None:
    def bar(ts: str, close: int) -> Bar:
        c = Decimal(close)
        return Bar(utc(ts), c, c, c, c)

    bars = [
        bar("2024-01-03T00:00:00", 3),
        bar("2024-01-01T00:00:00", 1),
        bar("2024-01-02T00:00:00", 2),
        bar("2024-01-02T00:00:00", 22),
    ]
    kept = bars_in_range(bars, utc("2024-01-02T00:00:00"), utc("2024-01-03T00:00:00"))
    assert [(b.ts.day, b.close) for b in kept] == [(2, Decimal(22)), (3, Decimal(3))]


def test_instrument_key_or_none() -> None:
    assert instrument_key_or_none(Exchange.NSE, "m&m") == "NSE:M&M"
    assert instrument_key_or_none(Exchange.NYSE, "BRK.B") == "NYSE:BRK.B"
    assert instrument_key_or_none(Exchange.NYSE, "^GSPC") is None
    assert instrument_key_or_none(Exchange.NYSE, "") is None
