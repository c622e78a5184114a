"""Expiry dates: exchange-announced dates, holiday rolling, rule changes, properties."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.marketdata.calendars import (
    CalendarDataUnavailable,
    Expiry,
    ExpiryRulesUnavailable,
    UnknownExchange,
    expiries,
    get_calendar,
    monthly_expiry,
    next_expiry,
)
from quantdesk.marketdata.calendars.expiry_rules import COVERAGE, EXPIRY_RULES
from quantdesk.platform.exceptions import InvalidInput, NotFound

D = dt.date


def weekly(*days: dt.date) -> list[Expiry]:
    return [Expiry(d, "weekly") for d in days]


# --- NIFTY ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2024, 1, D(2024, 1, 25)),
        (2024, 3, D(2024, 3, 28)),  # Good Friday 29 March does not touch Thursday
        (2025, 1, D(2025, 1, 30)),
        (2025, 8, D(2025, 8, 28)),  # last Thursday monthly
        (2025, 9, D(2025, 9, 30)),  # first last-Tuesday monthly
        (2025, 10, D(2025, 10, 28)),
        (2026, 3, D(2026, 3, 30)),  # 31 March 2026 (Mahavir Jayanti) rolls to Monday
    ],
)
def test_nifty_monthly(year: int, month: int, expected: dt.date) -> None:
    assert monthly_expiry("NIFTY", year, month) == expected


def test_nifty_around_the_thursday_to_tuesday_switch() -> None:
    assert expiries("NIFTY", D(2025, 8, 18), D(2025, 9, 16)) == [
        Expiry(D(2025, 8, 21), "weekly"),
        Expiry(D(2025, 8, 28), "monthly"),
        Expiry(D(2025, 9, 2), "weekly"),
        Expiry(D(2025, 9, 9), "weekly"),
        Expiry(D(2025, 9, 16), "weekly"),
    ]


@pytest.mark.parametrize(
    ("nominal", "rolled"),
    [
        (D(2024, 8, 15), D(2024, 8, 14)),  # Independence Day, a Thursday
        (D(2024, 4, 11), D(2024, 4, 10)),  # Id-Ul-Fitr, a Thursday
        (D(2023, 6, 29), D(2023, 6, 28)),  # Bakri Id moved the June 2023 monthly
    ],
)
def test_nifty_rolls_back_over_a_thursday_holiday(nominal: dt.date, rolled: dt.date) -> None:
    found = expiries("NIFTY", nominal - dt.timedelta(days=3), nominal + dt.timedelta(days=3))
    assert [e.date for e in found] == [rolled]


def test_nifty_weekly_rolled_back_into_the_previous_month() -> None:
    # 1 May 2025 (Thursday) was Maharashtra Day: that week's contract expired on 30 April,
    # after April's monthly (24 April).
    assert expiries("NIFTY", D(2025, 4, 21), D(2025, 5, 9)) == [
        Expiry(D(2025, 4, 24), "monthly"),
        Expiry(D(2025, 4, 30), "weekly"),
        Expiry(D(2025, 5, 8), "weekly"),
    ]


def test_nifty_weekly_on_diwali_tuesday_rolls_to_monday() -> None:
    # 2025-10-21 had only the Muhurat hour: not a full trading session, so Monday expires.
    assert expiries("NIFTY", D(2025, 10, 13), D(2025, 10, 24)) == weekly(
        D(2025, 10, 14), D(2025, 10, 20)
    )


def test_kind_filters() -> None:
    window = (D(2025, 9, 1), D(2025, 10, 31))
    assert expiries("NIFTY", *window, kind="monthly") == [
        Expiry(D(2025, 9, 30), "monthly"),
        Expiry(D(2025, 10, 28), "monthly"),
    ]
    assert [e.date for e in expiries("NIFTY", *window, kind="weekly")] == [
        D(2025, 9, 2), D(2025, 9, 9), D(2025, 9, 16), D(2025, 9, 23),
        D(2025, 10, 7), D(2025, 10, 14), D(2025, 10, 20),
    ]  # fmt: skip


# --- BANKNIFTY, FINNIFTY, MIDCPNIFTY -------------------------------------------------------


def test_banknifty_wednesday_weeklies_skip_the_thursday_monthly_week() -> None:
    # Sept 2023: weeklies moved to Wednesday (first 2023-09-06); the monthly stayed on the
    # last Thursday and no weekly was listed in its week.
    assert expiries("BANKNIFTY", D(2023, 8, 28), D(2023, 10, 5)) == [
        Expiry(D(2023, 8, 31), "monthly"),
        Expiry(D(2023, 9, 6), "weekly"),
        Expiry(D(2023, 9, 13), "weekly"),
        Expiry(D(2023, 9, 20), "weekly"),
        Expiry(D(2023, 9, 28), "monthly"),
        Expiry(D(2023, 10, 4), "weekly"),
    ]


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2024, 2, D(2024, 2, 29)),  # last Thursday monthly
        (2024, 3, D(2024, 3, 27)),  # first last-Wednesday monthly (NSE circular 2023-12-28)
        (2024, 12, D(2024, 12, 24)),  # Christmas Wednesday rolls to Tuesday
        (2025, 1, D(2025, 1, 30)),  # back to Thursday (NSE circular 2024-11-29)
        (2025, 9, D(2025, 9, 30)),
    ],
)
def test_banknifty_monthly(year: int, month: int, expected: dt.date) -> None:
    assert monthly_expiry("BANKNIFTY", year, month) == expected


@pytest.mark.parametrize(
    ("underlying", "last_weekly"),
    [
        ("BANKNIFTY", D(2024, 11, 13)),
        ("MIDCPNIFTY", D(2024, 11, 18)),
        ("FINNIFTY", D(2024, 11, 19)),
    ],
)
def test_weeklies_discontinued_in_november_2024(underlying: str, last_weekly: dt.date) -> None:
    found = expiries(underlying, D(2024, 11, 1), D(2025, 12, 31), kind="weekly")
    assert found[-1] == Expiry(last_weekly, "weekly")
    with pytest.raises(NotFound, match="no weekly expiry"):
        next_expiry(underlying, D(2025, 1, 1), kind="weekly")
    assert [e.kind for e in expiries(underlying, D(2025, 1, 1), D(2025, 12, 31))] == [
        "monthly"
    ] * 12


def test_midcpnifty_monday_expiry_moved_to_the_saturday_session() -> None:
    # NSE: "MIDCPNIFTY contract expiring on 22-Jan-2024 shall now expire on 20-Jan-2024".
    assert expiries("MIDCPNIFTY", D(2024, 1, 15), D(2024, 1, 26)) == weekly(
        D(2024, 1, 15), D(2024, 1, 20)
    )


def test_midcpnifty_first_monday_expiry() -> None:
    assert expiries("MIDCPNIFTY", D(2023, 8, 21), D(2023, 9, 5)) == [
        Expiry(D(2023, 8, 21), "weekly"),
        Expiry(D(2023, 8, 28), "monthly"),
        Expiry(D(2023, 9, 4), "weekly"),
    ]


def test_finnifty_moved_to_tuesday_in_october_2021() -> None:
    assert expiries("FINNIFTY", D(2021, 10, 4), D(2021, 11, 2)) == [
        Expiry(D(2021, 10, 7), "weekly"),
        Expiry(D(2021, 10, 14), "weekly"),
        Expiry(D(2021, 10, 19), "weekly"),
        Expiry(D(2021, 10, 26), "monthly"),
        Expiry(D(2021, 11, 2), "weekly"),
    ]


def test_stock_derivatives_are_monthly_only() -> None:
    assert expiries("RELIANCE", D(2025, 7, 1), D(2025, 10, 31), exchange="NFO") == [
        Expiry(D(2025, 7, 31), "monthly"),
        Expiry(D(2025, 8, 28), "monthly"),
        Expiry(D(2025, 9, 30), "monthly"),
        Expiry(D(2025, 10, 28), "monthly"),
    ]


def test_sensex_weeklies_moved_from_tuesday_to_thursday() -> None:
    assert expiries("SENSEX", D(2025, 8, 18), D(2025, 9, 12)) == [
        Expiry(D(2025, 8, 19), "weekly"),
        Expiry(D(2025, 8, 26), "monthly"),
        Expiry(D(2025, 9, 4), "weekly"),
        Expiry(D(2025, 9, 11), "weekly"),
    ]
    assert monthly_expiry("SENSEX", 2025, 1) == D(2025, 1, 28)


# --- US options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2025, 1, D(2025, 1, 17)),
        (2025, 4, D(2025, 4, 17)),  # Good Friday 2025-04-18 was the third Friday
        (2026, 6, D(2026, 6, 18)),  # Juneteenth 2026-06-19 is the third Friday
        (2014, 4, D(2014, 4, 17)),  # Good Friday again
    ],
)
def test_us_monthly_third_friday(year: int, month: int, expected: dt.date) -> None:
    assert monthly_expiry("SPY", year, month, exchange="US_OPTIONS") == expected


def test_us_weeklies_are_fridays_rolled_for_holidays_but_not_half_days() -> None:
    assert expiries("SPY", D(2024, 3, 18), D(2024, 4, 5), exchange="US_OPTIONS") == [
        Expiry(D(2024, 3, 22), "weekly"),
        Expiry(D(2024, 3, 28), "weekly"),  # Good Friday 2024-03-29
        Expiry(D(2024, 4, 5), "weekly"),
    ]
    # The 1 pm close after Thanksgiving is still a trading day.
    assert expiries("SPY", D(2024, 11, 25), D(2024, 11, 29), exchange="US_OPTIONS") == weekly(
        D(2024, 11, 29)
    )


def test_us_expiry_on_new_years_eve_needs_next_years_holiday() -> None:
    # 2027-01-01 is a Friday holiday, so that week's options expire on 2026-12-31.
    found = expiries("QQQ", D(2026, 12, 21), D(2026, 12, 31), exchange="US_OPTIONS")
    assert found == weekly(D(2026, 12, 24), D(2026, 12, 31))


# --- next_expiry and errors ----------------------------------------------------------------


def test_next_expiry_counts_the_day_itself() -> None:
    assert next_expiry("NIFTY", D(2025, 9, 2)) == Expiry(D(2025, 9, 2), "weekly")
    assert next_expiry("NIFTY", D(2025, 9, 3)) == Expiry(D(2025, 9, 9), "weekly")
    assert next_expiry("NIFTY", D(2025, 9, 3), kind="monthly") == Expiry(D(2025, 9, 30), "monthly")


def test_next_expiry_near_the_end_of_the_data() -> None:
    assert next_expiry("NIFTY", D(2026, 12, 23)) == Expiry(D(2026, 12, 29), "monthly")
    # Into the first provisional year, then past the last one.
    assert next_expiry("NIFTY", D(2026, 12, 30)) == Expiry(D(2027, 1, 5), "weekly", True)
    with pytest.raises(CalendarDataUnavailable, match="2036"):
        next_expiry("NIFTY", D(2035, 12, 26))


def test_rules_not_held_for_early_dates() -> None:
    with pytest.raises(ExpiryRulesUnavailable, match="start on 2023-08-21"):
        expiries("MIDCPNIFTY", D(2023, 8, 1), D(2023, 8, 31))
    with pytest.raises(ExpiryRulesUnavailable, match="SENSEX in 2023-04"):
        monthly_expiry("SENSEX", 2023, 4)
    with pytest.raises(ExpiryRulesUnavailable, match="start on 2023-05-15"):
        expiries("SENSEX", D(2023, 5, 1), D(2023, 5, 31))


def test_expiries_past_the_calendar_fail_loudly() -> None:
    with pytest.raises(CalendarDataUnavailable, match="NSE calendar data for 2036"):
        expiries("NIFTY", D(2035, 12, 1), D(2036, 1, 31))
    with pytest.raises(CalendarDataUnavailable):
        monthly_expiry("NIFTY", 2036, 1)


def test_bad_requests() -> None:
    with pytest.raises(InvalidInput, match="which exchange"):
        expiries("RELIANCE", D(2025, 1, 1), D(2025, 2, 1))
    with pytest.raises(UnknownExchange):
        expiries("RELIANCE", D(2025, 1, 1), D(2025, 2, 1), exchange="LSE")
    with pytest.raises(ExpiryRulesUnavailable, match="BANKEX"):
        expiries("BANKEX", D(2025, 1, 1), D(2025, 2, 1), exchange="BSE")
    with pytest.raises(InvalidInput, match="kind"):
        expiries("NIFTY", D(2025, 1, 1), D(2025, 2, 1), kind="daily")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="month"):
        monthly_expiry("NIFTY", 2025, 13)


# --- properties ----------------------------------------------------------------------------

_NSE_INDICES = ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50"]


def _nominal_weekday(underlying: str, kind: str, expiry: dt.date) -> int:
    """The rule's weekday for the week (weekly) or month (monthly) the expiry belongs to."""
    for rule in EXPIRY_RULES:
        if rule.market != "NSE" or rule.underlying != underlying or rule.cycle != kind:
            continue
        # An expiry rolls back at most a few days, into the same or the previous week/month.
        for ahead in range(7):
            nominal = expiry + dt.timedelta(days=ahead)
            start = (
                nominal - dt.timedelta(days=nominal.weekday())
                if kind == "weekly"
                else nominal.replace(day=1)
            )
            if rule.covers(start) and nominal.weekday() == rule.weekday:
                return rule.weekday
    raise AssertionError(f"no {kind} rule for {underlying} near {expiry}")


@settings(max_examples=200, deadline=None)
@given(
    start=st.dates(min_value=D(2016, 6, 1), max_value=D(2026, 9, 30)),
    span=st.integers(min_value=0, max_value=90),
    underlying=st.sampled_from(_NSE_INDICES),
)
def test_every_expiry_is_a_trading_day_at_or_before_its_nominal_day(
    start: dt.date, span: int, underlying: str
) -> None:
    nse = get_calendar("NSE")
    start = max(start, COVERAGE[("NSE", underlying)].covered_from)
    window = (start, start + dt.timedelta(days=span))
    found = expiries(underlying, *window)
    assert found == sorted(found)
    for expiry in found:
        assert window[0] <= expiry.date <= window[1]
        assert nse.is_trading_day(expiry.date)
        weekday = _nominal_weekday(underlying, expiry.kind, expiry.date)
        nominal = expiry.date + dt.timedelta(days=(weekday - expiry.date.weekday()) % 7)
        # Never after the nominal day; every day skipped on the way back was not tradable.
        skipped = [
            expiry.date + dt.timedelta(days=i) for i in range(1, (nominal - expiry.date).days + 1)
        ]
        assert not [d for d in skipped if nse.is_trading_day(d)]


@settings(max_examples=60, deadline=None)
@given(
    year=st.integers(min_value=2019, max_value=2026),
    month=st.integers(min_value=1, max_value=12),
)
def test_nifty_monthly_is_the_last_expiry_of_its_month(year: int, month: int) -> None:
    if (year, month) < (2019, 3):
        return  # weeklies began in February 2019
    first = D(year, month, 1)
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    in_month = expiries("NIFTY", first, last)
    monthly = Expiry(monthly_expiry("NIFTY", year, month), "monthly")
    at = in_month.index(monthly)
    assert [e.kind for e in in_month if e != monthly] == ["weekly"] * (len(in_month) - 1)
    # Only a weekly rolled back from a holiday early next month may follow the monthly
    # (2025-04-30: 1 May was Maharashtra Day).
    for later in in_month[at + 1 :]:
        weekday = _nominal_weekday("NIFTY", "weekly", later.date)
        nominal = later.date + dt.timedelta(days=(weekday - later.date.weekday()) % 7)
        assert nominal > last
    # One expiry per week: consecutive expiries are 4 to 10 days apart (holiday rolls).
    gaps = [(b.date - a.date).days for a, b in itertools.pairwise(in_month)]
    assert all(4 <= g <= 10 for g in gaps)


@settings(max_examples=60, deadline=None)
@given(day=st.dates(min_value=D(2019, 3, 1), max_value=D(2026, 11, 30)))
def test_next_expiry_is_the_first_of_the_list(day: dt.date) -> None:
    upcoming = next_expiry("NIFTY", day)
    assert upcoming.date >= day
    assert expiries("NIFTY", day, upcoming.date) == [upcoming]
