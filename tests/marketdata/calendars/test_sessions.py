"""Exchange calendars: known holidays, special sessions, status, DST, horizons, input checks."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.marketdata.calendars import (
    CalendarDataUnavailable,
    ExchangeCalendar,
    Holiday,
    Session,
    UnknownExchange,
    get_calendar,
)
from quantdesk.platform.exceptions import InvalidInput

UTC = dt.UTC
D = dt.date


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def nse() -> ExchangeCalendar:
    return get_calendar("NSE")


@pytest.fixture(scope="module")
def bse() -> ExchangeCalendar:
    return get_calendar("BSE")


@pytest.fixture(scope="module")
def nyse() -> ExchangeCalendar:
    return get_calendar("NYSE")


# --- holidays ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (D(2024, 1, 22), "Special holiday (Ram Mandir Pran Pratishtha)"),
        (D(2024, 1, 26), "Republic Day"),
        (D(2024, 3, 25), "Holi"),
        (D(2024, 8, 15), "Independence Day"),
        (D(2025, 2, 26), "Mahashivratri"),
        (D(2025, 10, 2), "Mahatma Gandhi Jayanti / Dussehra"),
        (D(2026, 1, 15), "Maharashtra Municipal Corporation Elections"),
    ],
)
@pytest.mark.parametrize("exchange", ["NSE", "NFO", "BSE"])
def test_indian_holidays_are_closed_and_named(exchange: str, day: dt.date, name: str) -> None:
    cal = get_calendar(exchange)
    assert not cal.is_trading_day(day)
    assert cal.sessions(day, day) == []
    assert Holiday(day, name) in cal.holidays(day.year)


def test_nse_2024_holiday_list_is_the_exchange_circular(nse: ExchangeCalendar) -> None:
    # NSE circular of 2023-12-26 plus the 2024-01-22 special holiday; 2024-11-01 (Diwali)
    # is listed because only the Muhurat hour traded.
    assert [h.date for h in nse.holidays(2024)] == [
        D(2024, 1, 22), D(2024, 1, 26), D(2024, 3, 8), D(2024, 3, 25), D(2024, 3, 29),
        D(2024, 4, 11), D(2024, 4, 17), D(2024, 5, 1), D(2024, 5, 20), D(2024, 6, 17),
        D(2024, 7, 17), D(2024, 8, 15), D(2024, 10, 2), D(2024, 11, 1), D(2024, 11, 15),
        D(2024, 11, 20), D(2024, 12, 25),
    ]  # fmt: skip


def test_nyse_2025_holidays_include_carters_day_of_mourning(nyse: ExchangeCalendar) -> None:
    assert nyse.holidays(2025) == [
        Holiday(D(2025, 1, 1), "New Year's Day"),
        Holiday(D(2025, 1, 9), "National Day of Mourning (President Jimmy Carter)"),
        Holiday(D(2025, 1, 20), "Martin Luther King, Jr. Day"),
        Holiday(D(2025, 2, 17), "Washington's Birthday"),
        Holiday(D(2025, 4, 18), "Good Friday"),
        Holiday(D(2025, 5, 26), "Memorial Day"),
        Holiday(D(2025, 6, 19), "Juneteenth National Independence Day"),
        Holiday(D(2025, 7, 4), "Independence Day"),
        Holiday(D(2025, 9, 1), "Labor Day"),
        Holiday(D(2025, 11, 27), "Thanksgiving Day"),
        Holiday(D(2025, 12, 25), "Christmas Day"),
    ]


@pytest.mark.parametrize("exchange", ["NYSE", "NASDAQ", "US_OPTIONS"])
def test_juneteenth_is_a_us_holiday_from_2022_only(exchange: str) -> None:
    cal = get_calendar(exchange)
    assert cal.is_trading_day(D(2021, 6, 18))  # Friday before the first observance
    assert not cal.is_trading_day(D(2022, 6, 20))  # 19 June 2022 was a Sunday: observed Monday
    assert not cal.is_trading_day(D(2024, 6, 19))
    assert Holiday(D(2024, 6, 19), "Juneteenth National Independence Day") in cal.holidays(2024)


def test_holidays_are_weekdays_that_are_not_trading_days(nse: ExchangeCalendar) -> None:
    weekdays = [D(2025, 1, 1) + dt.timedelta(days=i) for i in range(365)]
    expected = [d for d in weekdays if d.weekday() < 5 and not nse.is_trading_day(d)]
    assert [h.date for h in nse.holidays(2025)] == expected


# --- sessions ------------------------------------------------------------------------------


def test_nse_regular_session_is_0915_to_1530_ist(nse: ExchangeCalendar) -> None:
    assert nse.sessions(D(2025, 1, 2), D(2025, 1, 2)) == [
        Session(D(2025, 1, 2), utc(2025, 1, 2, 3, 45), utc(2025, 1, 2, 10, 0), "regular")
    ]


@pytest.mark.parametrize("exchange", ["NSE", "BSE", "NFO"])
@pytest.mark.parametrize(
    ("day", "opens", "closes"),
    [
        # 2024-11-01 18:00-19:00 IST; 2025-10-21 13:45-14:45 IST (afternoon, unusually).
        (D(2024, 11, 1), utc(2024, 11, 1, 12, 30), utc(2024, 11, 1, 13, 30)),
        (D(2025, 10, 21), utc(2025, 10, 21, 8, 15), utc(2025, 10, 21, 9, 15)),
        # A Sunday: 2023-11-12 18:15-19:15 IST.
        (D(2023, 11, 12), utc(2023, 11, 12, 12, 45), utc(2023, 11, 12, 13, 45)),
    ],
)
def test_muhurat_is_a_short_special_session(
    exchange: str, day: dt.date, opens: dt.datetime, closes: dt.datetime
) -> None:
    cal = get_calendar(exchange)
    assert cal.sessions(day, day) == [
        Session(day, opens, closes, "special", "Muhurat trading (Diwali)")
    ]
    assert cal.is_open(opens + dt.timedelta(minutes=30))
    assert not cal.is_open(closes)
    assert not cal.is_trading_day(day)


@pytest.mark.parametrize("exchange", ["NSE", "BSE"])
@pytest.mark.parametrize("day", [D(2024, 1, 20), D(2025, 2, 1), D(2026, 2, 1)])
def test_weekend_full_sessions_are_trading_days(exchange: str, day: dt.date) -> None:
    # 2024-01-20 (Saturday make-up day), Budget days 2025-02-01 (Sat) and 2026-02-01 (Sun).
    cal = get_calendar(exchange)
    assert day.weekday() >= 5
    assert cal.is_trading_day(day)
    (session,) = cal.sessions(day, day)
    assert (session.kind, session.open_utc.time(), session.close_utc.time()) == (
        "regular",
        dt.time(3, 45),
        dt.time(10, 0),
    )


def test_dr_drill_has_two_special_windows(nse: ExchangeCalendar) -> None:
    sessions = nse.sessions(D(2024, 3, 2), D(2024, 3, 2))
    assert [(s.open_utc, s.close_utc, s.kind) for s in sessions] == [
        (utc(2024, 3, 2, 3, 45), utc(2024, 3, 2, 4, 30), "special"),  # 09:15-10:00 IST
        (utc(2024, 3, 2, 6, 0), utc(2024, 3, 2, 7, 0), "special"),  # 11:30-12:30 IST
    ]
    assert not nse.is_open(utc(2024, 3, 2, 5, 0))  # the switch-over gap
    assert not nse.is_trading_day(D(2024, 3, 2))


def test_nse_telecom_halt_splits_the_day(nse: ExchangeCalendar) -> None:
    # 2021-02-24: halted 11:40-15:45 IST, trading extended to 17:00 IST.
    day = D(2021, 2, 24)
    assert [(s.open_utc, s.close_utc) for s in nse.sessions(day, day)] == [
        (utc(2021, 2, 24, 3, 45), utc(2021, 2, 24, 6, 10)),
        (utc(2021, 2, 24, 10, 15), utc(2021, 2, 24, 11, 30)),
    ]
    assert not nse.is_open(utc(2021, 2, 24, 8, 0))
    assert nse.is_trading_day(day)


def test_nyse_day_after_thanksgiving_closes_at_1300_et(nyse: ExchangeCalendar) -> None:
    assert nyse.sessions(D(2024, 11, 29), D(2024, 11, 29)) == [
        Session(D(2024, 11, 29), utc(2024, 11, 29, 14, 30), utc(2024, 11, 29, 18, 0), "early_close")
    ]
    assert nyse.is_trading_day(D(2024, 11, 29))
    assert not nyse.is_open(utc(2024, 11, 29, 18, 30))  # 13:30 ET


@pytest.mark.parametrize(
    ("day", "open_utc"),
    [
        (D(2024, 3, 8), utc(2024, 3, 8, 14, 30)),  # EST: 09:30 ET is 14:30 UTC
        (D(2024, 3, 11), utc(2024, 3, 11, 13, 30)),  # EDT from Sunday 2024-03-10
        (D(2024, 11, 1), utc(2024, 11, 1, 13, 30)),  # still EDT
        (D(2024, 11, 4), utc(2024, 11, 4, 14, 30)),  # EST again from 2024-11-03
    ],
)
def test_nyse_open_follows_us_daylight_saving(
    nyse: ExchangeCalendar, day: dt.date, open_utc: dt.datetime
) -> None:
    (session,) = nyse.sessions(day, day)
    assert session.open_utc == open_utc
    assert session.close_utc == open_utc + dt.timedelta(hours=6, minutes=30)


def test_sessions_span_years_in_order(nyse: ExchangeCalendar) -> None:
    sessions = nyse.sessions(D(2024, 12, 30), D(2025, 1, 3))
    assert [s.date for s in sessions] == [
        D(2024, 12, 30),
        D(2024, 12, 31),
        D(2025, 1, 2),
        D(2025, 1, 3),
    ]


# --- status --------------------------------------------------------------------------------


def test_status_while_open(nyse: ExchangeCalendar) -> None:
    status = nyse.status(utc(2024, 11, 29, 17, 0))
    assert status.is_open
    assert status.session is not None
    assert status.session.kind == "early_close"
    assert status.next_close == utc(2024, 11, 29, 18, 0)
    assert status.next_open == utc(2024, 12, 2, 14, 30)


def test_status_over_a_holiday_weekend(nse: ExchangeCalendar) -> None:
    # Friday 2024-03-22 after the close: Monday 2024-03-25 is Holi, so Tuesday is next.
    status = nse.status(utc(2024, 3, 22, 12, 0))
    assert not status.is_open
    assert status.session is None
    assert status.next_open == utc(2024, 3, 26, 3, 45)
    assert status.next_close == utc(2024, 3, 26, 10, 0)


def test_status_before_a_muhurat_session_points_at_it(nse: ExchangeCalendar) -> None:
    status = nse.status(utc(2024, 11, 1, 6, 0))
    assert not status.is_open
    assert (status.next_open, status.next_close) == (
        utc(2024, 11, 1, 12, 30),
        utc(2024, 11, 1, 13, 30),
    )


def test_status_converts_any_zone_to_utc(nse: ExchangeCalendar) -> None:
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    status = nse.status(dt.datetime(2025, 1, 2, 9, 15, tzinfo=ist))
    assert status.is_open
    assert status.at == utc(2025, 1, 2, 3, 45)
    assert status.at.tzinfo is UTC


# --- trading-day navigation ----------------------------------------------------------------


def test_previous_and_next_trading_day_skip_holidays_and_weekends(nse: ExchangeCalendar) -> None:
    assert nse.previous_trading_day(D(2024, 3, 26)) == D(2024, 3, 22)  # over Holi + weekend
    assert nse.next_trading_day(D(2024, 3, 22)) == D(2024, 3, 26)
    assert nse.next_trading_day(D(2024, 1, 19)) == D(2024, 1, 20)  # the Saturday session
    assert nse.next_trading_day(D(2024, 1, 20)) == D(2024, 1, 23)  # 22nd was a holiday
    assert nse.previous_trading_day(D(2025, 1, 1)) == D(2024, 12, 31)


def test_trading_days_in_a_range(nyse: ExchangeCalendar) -> None:
    assert nyse.trading_days(D(2025, 1, 6), D(2025, 1, 10)) == [
        D(2025, 1, 6), D(2025, 1, 7), D(2025, 1, 8), D(2025, 1, 10)
    ]  # fmt: skip


# --- horizons and input checks -------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "year"),
    [("NSE", 2036), ("NFO", 2036), ("BSE", 2036), ("NYSE", 2031), ("NSE", 1995)],
)
def test_years_past_the_data_fail_loudly(exchange: str, year: int) -> None:
    cal = get_calendar(exchange)
    with pytest.raises(
        CalendarDataUnavailable, match=rf"{exchange} calendar data for {year}"
    ) as err:
        cal.is_trading_day(D(year, 3, 1))
    assert (err.value.exchange, err.value.year) == (exchange, year)
    with pytest.raises(CalendarDataUnavailable):
        cal.holidays(year)
    with pytest.raises(CalendarDataUnavailable):
        cal.is_open(utc(year, 3, 1, 12, 0))


def test_status_fails_loudly_when_the_next_open_is_past_the_data(nse: ExchangeCalendar) -> None:
    assert not nse.is_open(utc(2035, 12, 31, 12, 0))  # after the last close: still known
    with pytest.raises(CalendarDataUnavailable, match="2036"):
        nse.status(utc(2035, 12, 31, 12, 0))


def test_next_trading_day_fails_loudly_at_the_horizon(nse: ExchangeCalendar) -> None:
    with pytest.raises(CalendarDataUnavailable):
        nse.next_trading_day(D(2035, 12, 31))


def test_unknown_exchange() -> None:
    with pytest.raises(UnknownExchange, match="LSE"):
        get_calendar("LSE")


def test_exchange_codes_are_case_insensitive() -> None:
    assert get_calendar(" nse ").name == "NSE"


def test_naive_datetimes_are_rejected(nyse: ExchangeCalendar) -> None:
    with pytest.raises(InvalidInput, match="timezone-aware"):
        nyse.is_open(dt.datetime(2025, 1, 2, 15, 0))  # naive on purpose


def test_datetimes_are_not_dates(nyse: ExchangeCalendar) -> None:
    with pytest.raises(InvalidInput, match="not a datetime"):
        nyse.is_trading_day(utc(2025, 1, 2, 15, 0))


# --- properties ----------------------------------------------------------------------------

_INSTANTS = st.datetimes(
    min_value=dt.datetime(2000, 1, 3), max_value=dt.datetime(2026, 12, 20), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(at=_INSTANTS, exchange=st.sampled_from(["NSE", "BSE", "NYSE", "NASDAQ"]))
def test_status_is_consistent_with_sessions(at: dt.datetime, exchange: str) -> None:
    cal = get_calendar(exchange)
    status = cal.status(at)
    day = at.astimezone(cal.timezone).date()
    containing = [s for s in cal.sessions(day, day) if s.open_utc <= at < s.close_utc]
    assert status.is_open == bool(containing) == cal.is_open(at)
    assert status.next_open > at
    if status.session is not None:
        assert status.session == containing[0]
        assert status.next_close == status.session.close_utc
    else:
        assert status.next_close > status.next_open
    # Nothing opens between now and the reported next open.
    window = cal.sessions(
        day - dt.timedelta(days=1), status.next_open.date() + dt.timedelta(days=1)
    )
    assert not [s for s in window if at < s.open_utc < status.next_open]


@settings(max_examples=300, deadline=None)
@given(
    day=st.dates(min_value=D(2000, 1, 10), max_value=D(2026, 12, 20)),
    exchange=st.sampled_from(["NSE", "BSE", "NYSE", "NASDAQ"]),
)
def test_previous_and_next_trading_days_are_adjacent(day: dt.date, exchange: str) -> None:
    cal = get_calendar(exchange)
    before, after = cal.previous_trading_day(day), cal.next_trading_day(day)
    assert before < day < after
    assert cal.is_trading_day(before)
    assert cal.is_trading_day(after)
    between = cal.trading_days(before, after)
    assert between == ([before, day, after] if cal.is_trading_day(day) else [before, after])
