"""Returns against hand-worked cases (TWR with Portfolio Performance's day convention,
Modified Dietz, Ghostfolio's ROAI) and against pyxirr for XIRR; holding periods and
financial years; the benchmark over the same flows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
import pyxirr
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.portfolios.accounting.gains import Jurisdiction, add_months, classify
from quantdesk.portfolios.accounting.lots import build_book
from quantdesk.portfolios.accounting.returns import (
    InstrumentInfo,
    Observations,
    compare,
    contributions,
    daily_series,
    performance,
    period_start,
    xirr,
)
from quantdesk.portfolios.accounting.types import Transaction as T  # noqa: N817
from quantdesk.portfolios.accounting.types import TxnType

D = Decimal
X = "NSE:ACME"
D0 = dt.date(2024, 3, 1)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def hand_case() -> tuple[list[T], Observations]:
    """Buy 10 @ 100 on day 0; closes 100, 110, 121, 121; buy 10 @ 110 on day 2; sell 5 @
    121 at the end of day 3."""
    txns = [
        T("b1", TxnType.BUY, day(0), "a", X, D(10), D(100)),
        T("b2", TxnType.BUY, day(2), "a", X, D(10), D(110)),
        T("s1", TxnType.SELL, day(3), "a", X, D(5), D(121)),
    ]
    closes = Observations.of({day(0): 100.0, day(1): 110.0, day(2): 121.0, day(3): 121.0})
    return txns, closes


def series_of(txns: list[T], closes: Observations, end: dt.date):  # type: ignore[no-untyped-def]
    book = build_book(txns)
    return daily_series(book.effects, {X: InstrumentInfo(X)}, {X: closes}, {}, end)


def test_twr_modified_dietz_roai_and_xirr_by_hand() -> None:
    txns, closes = hand_case()
    series = series_of(txns, closes, day(3))
    # Day returns, inflows at the start and outflows at the end of their day:
    # 1000/1000-1, 1100/1000-1, 2420/(1100+1100)-1, (1815+605)/2420-1.
    np.testing.assert_allclose(series.returns, [0.0, 0.1, 0.1, 0.0], atol=1e-15)
    figures = performance(series, day(0), day(3))
    assert figures.twr == pytest.approx(0.21, abs=1e-12)
    assert figures.net_performance == pytest.approx(320.0)
    # Modified Dietz over 4 days: 320 / (1000 x 4/4 + 1100 x 2/4 - 605 x 0/4).
    assert figures.modified_dietz == pytest.approx(320 / 1550, abs=1e-12)
    # ROAI: 320 over the average cost held (1000, 1000, 2100, 1600).
    assert figures.roai == pytest.approx(320 / 1425, abs=1e-12)
    expected = pyxirr.xirr([day(0), day(2), day(3), day(3)], [-1000.0, -1100.0, 605.0, 1815.0])
    assert figures.xirr == pytest.approx(expected, rel=1e-9)
    # A range from day 2: starts from day 1's value, 1100.
    later = performance(series, day(2), day(3))
    assert later.twr == pytest.approx(0.1, abs=1e-12)
    assert later.start_value == pytest.approx(1100.0)
    assert sum(contributions(series, day(0), day(3)).values()) == pytest.approx(320 / 1550)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3000), st.floats(-1e6, 1e5, allow_nan=False)),
        min_size=1,
        max_size=20,
    ),
    st.floats(1.0, 2e6),
)
def test_xirr_matches_pyxirr(flows: list[tuple[int, float]], final: float) -> None:
    """A portfolio's flows: money in and out on any days, a final value at the end."""
    end = max(d for d, _ in flows) + 1
    dates = [d for d, _ in flows] + [end]
    amounts = [a for _, a in flows] + [final]
    if not any(a < 0 for a in amounts):
        return
    try:
        expected = pyxirr.xirr([D0 + dt.timedelta(days=d) for d in dates], amounts)
    except pyxirr.InvalidPaymentsError:
        return
    ours = xirr(np.array(dates, dtype=np.float64), np.array(amounts))
    if expected is None or not -0.99 < expected < 10:
        return
    assert ours is not None
    if ours != pytest.approx(expected, abs=1e-9):
        # Flows that change sign often can have several rates: then ours must be a root too.
        years = (np.array(dates) - min(dates)) / 365.0
        npv = float(np.sum(np.array(amounts) / (1 + ours) ** years))
        assert abs(npv) < 1e-6 * float(np.abs(amounts).sum())


def test_holding_periods_and_financial_years() -> None:
    india = Jurisdiction("IN", 12, 4)
    us = Jurisdiction("US", 12, 1)
    bought = dt.date(2024, 1, 15)
    assert not india.is_long_term(bought, dt.date(2025, 1, 15))  # exactly 12 months
    assert india.is_long_term(bought, dt.date(2025, 1, 16))
    assert india.financial_year(dt.date(2025, 3, 31)) == "FY2024-25"
    assert india.financial_year(dt.date(2025, 4, 1)) == "FY2025-26"
    assert us.financial_year(dt.date(2025, 4, 1)) == "2025"
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    book = build_book(
        [
            T("b1", TxnType.BUY, dt.date(2023, 1, 2), "a", X, D(10), D(100)),
            T("b2", TxnType.BUY, dt.date(2024, 6, 3), "a", X, D(10), D(150)),
            T("s", TxnType.SELL, dt.date(2024, 7, 1), "a", X, D(15), D(160)),
        ]
    )
    report = classify(book.sales, india)
    assert (report.long_term, report.short_term) == (D(600), D(50))
    assert report.by_financial_year == {"FY2024-25": (D(50), D(600))}


def test_periods() -> None:
    today = dt.date(2026, 12, 3)  # a Thursday
    first = dt.date(2020, 5, 1)
    assert period_start("wtd", today, first) == dt.date(2026, 11, 30)
    assert period_start("mtd", today, first) == dt.date(2026, 12, 1)
    assert period_start("ytd", today, first) == dt.date(2026, 1, 1)
    assert period_start("1y", today, first) == dt.date(2025, 12, 4)
    assert period_start("max", today, first) == first


def test_benchmark_over_the_same_flows() -> None:
    txns, closes = hand_case()
    series = series_of(txns, closes, day(3))
    bench = Observations.of({day(0): 50.0, day(1): 50.0, day(2): 55.0, day(3): 60.0})
    result = compare(series, bench, day(0), day(3), 0.21)
    assert result.benchmark_twr == pytest.approx(0.2)
    # 1000 buys 20 units, 1100 buys 20, 605 sells 10.0833: 29.9167 units at 60.
    assert result.benchmark_value == pytest.approx((20 + 20 - 605 / 60) * 60)
    assert result.excess_return == pytest.approx(0.01)
    assert result.beta is not None
