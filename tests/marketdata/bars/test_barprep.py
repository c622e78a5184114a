"""Vectorised decimal and timestamp text against Python's own formatting."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.marketdata.bars.prep import (
    csv_bytes,
    decimal_scale,
    fixed_point_matrix,
    matrix_lines,
    parse_timestamps,
    prepare,
    price_scale,
    timestamp_matrix,
)
from quantdesk.marketdata.domain import Bar, BarArrays, Timeframe
from quantdesk.platform.exceptions import InvalidInput


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-(10**14), 10**14), min_size=1, max_size=50),
    st.integers(0, 6),
)
def test_fixed_point_text_equals_decimal_formatting(units: list[int], scale: int) -> None:
    values = np.array([u / 10**scale for u in units], dtype=np.float64)
    expected = [format(Decimal(u).scaleb(-scale), "f") for u in units]
    assert matrix_lines(fixed_point_matrix(values, scale)) == expected


def test_fixed_point_edge_cases() -> None:
    values = np.array([0.0, -0.0, 0.05, -0.05, 7.0, np.nan, -1234.5])
    assert matrix_lines(fixed_point_matrix(values, 2)) == [
        "0.00",
        "0.00",
        "0.05",
        "-0.05",
        "7.00",
        "",
        "-1234.50",
    ]
    assert matrix_lines(fixed_point_matrix(np.array([3.0, -40.0]), 0)) == ["3", "-40"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**31), 253_402_300_799), min_size=1, max_size=50))
def test_timestamps_equal_datetime_formatting(stamps: list[int]) -> None:
    ts = np.array(stamps, dtype=np.int64)
    expected = [
        (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=s)).strftime(
            "%Y-%m-%d %H:%M:%S.000000"
        )
        for s in stamps
    ]
    text = matrix_lines(timestamp_matrix(ts, " ", ".000000"), strip=False)
    assert text == expected
    assert parse_timestamps("".join(text), len(stamps)).tolist() == stamps
    ascending = np.sort(ts)  # the sorted fast path gives the same text
    assert matrix_lines(timestamp_matrix(ascending, " ", ".000000"), strip=False) == sorted(
        expected
    )


def test_parse_timestamps_checks_the_width() -> None:
    with pytest.raises(ValueError, match="26 characters"):
        parse_timestamps("2024-01-01 00:00:00", 1)
    assert parse_timestamps("", 0).shape == (0,)


def test_scales() -> None:
    assert [price_scale(Decimal(t)) for t in ("0.05", "1", "0.0001", "5E+1", "0.10")] == [
        2,
        0,
        4,
        0,
        1,
    ]
    assert decimal_scale(np.array([2500.05, 2500.0]), 2) == 2
    assert decimal_scale(np.array([2500.055]), 2) == 3
    # Float arithmetic noise is read as the decimal it stands for...
    assert decimal_scale(np.array([0.1 + 0.2, 2500.05 + 0.1]), 2) == 2
    assert matrix_lines(fixed_point_matrix(np.array([0.1 + 0.2, 2500.05 + 0.1]), 2)) == [
        "0.30",
        "2500.15",
    ]
    # ...but a value that never was a short decimal is not rounded into one.
    assert decimal_scale(np.array([1 / 3]), 2) is None
    assert decimal_scale(np.array([2500.0 + 1e-9]), 2) == 9
    assert decimal_scale(np.array([1e300]), 0) is None
    assert decimal_scale(np.array([np.nan, 1.5]), 0) == 1


def test_csv_rows() -> None:
    prices = fixed_point_matrix(np.array([1.5, -20.25]), 2)
    missing = fixed_point_matrix(np.array([np.nan, 3.0]), 0)
    stamps = timestamp_matrix(np.array([0, 60], dtype=np.int64), "T", "+00")
    assert csv_bytes([stamps, prices, missing]) == (
        b"1970-01-01T00:00:00+00,1.50,\n1970-01-01T00:01:00+00,-20.25,3\n"
    )


def minute(i: int) -> dt.datetime:
    return dt.datetime(2024, 11, 18, 3, 45, tzinfo=dt.UTC) + dt.timedelta(minutes=i)


def test_prepare_decimal_bars_keeps_their_digits_and_dedupes() -> None:
    one, two = Decimal("1.10"), Decimal("2.0")
    bars = [
        Bar(minute(1), two, two, two, two, Decimal(5), Decimal("7.50")),
        Bar(minute(0), one, one, one, one),
        Bar(minute(1), one, two, one, two, Decimal("0.5")),  # same ts: the last wins
    ]
    prepared = prepare(bars, Timeframe.M1, Decimal("0.05"))
    assert prepared.ts.tolist() == [int(minute(0).timestamp()), int(minute(1).timestamp())]
    assert matrix_lines(prepared.columns["open"]) == ["1.10", "1.10"]
    assert matrix_lines(prepared.columns["close"]) == ["1.10", "2.0"]
    assert matrix_lines(prepared.columns["volume"]) == ["0", "0.5"]
    assert matrix_lines(prepared.columns["oi"]) == ["", ""]


def test_prepare_float_bars_use_the_tick_scale_or_more() -> None:
    ts = np.array([0, 60], dtype=np.int64)
    bars = BarArrays(
        ts,
        np.array([10.0, 10.125]),
        np.array([10.5, 10.5]),
        np.array([9.5, 10.0]),
        np.array([10.25, 10.5]),
        np.array([100.0, 250.0]),
        oi=np.array([np.nan, 12.0]),
    )
    prepared = prepare(bars, Timeframe.M1, Decimal("0.05"))
    assert matrix_lines(prepared.columns["open"]) == ["10.000", "10.125"]  # 3 places needed
    assert matrix_lines(prepared.columns["close"]) == ["10.25", "10.50"]
    assert matrix_lines(prepared.columns["volume"]) == ["100", "250"]
    assert matrix_lines(prepared.columns["oi"]) == ["", "12"]


def test_prepare_rejects_a_wrong_daily_stamp() -> None:
    one = np.array([1.0])
    bars = BarArrays(np.array([3600], dtype=np.int64), one, one, one, one, one)
    with pytest.raises(InvalidInput, match="not on a 1d boundary"):
        prepare(bars, Timeframe.D1, Decimal("0.01"))
    with pytest.raises(InvalidInput, match="oi has a different length"):
        prepare(
            BarArrays(np.array([0], dtype=np.int64), one, one, one, one, one, np.ones(2)),
            Timeframe.D1,
            Decimal("0.01"),
        )
    with pytest.raises(InvalidInput, match="finite"):
        nan_bar = Bar(minute(0), Decimal("NaN"), Decimal(1), Decimal(1), Decimal(1))
        prepare([nan_bar], Timeframe.M1, Decimal("0.01"))
