"""The derivatives segments Kite serves besides NFO: BFO (BSE's F&O), CDS/BCD (currency) and
MCX (commodities).  Dates and times are hand-checked against the exchanges' published hours:
BFO = BSE; CDS 09:00-17:00 IST on NSE's trading days; MCX 09:00-23:55 IST, 23:30 while New
York is on daylight-saving time, evening sessions (17:00-) on most NSE holidays (2025 list)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from quantdesk.marketdata.calendars import Expiry, expiries, get_calendar, next_expiry
from quantdesk.marketdata.calendars.errors import CalendarDataUnavailable
from quantdesk.marketdata.calendars.official import install_official_years, parse_official_list
from quantdesk.marketdata.calendars.sources import us_on_daylight_saving

D = dt.date


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def windows(exchange: str, day: dt.date) -> list[tuple[dt.datetime, dt.datetime, str]]:
    return [(s.open_utc, s.close_utc, s.kind) for s in get_calendar(exchange).sessions_on(day)]


@pytest.fixture
def no_official_lists() -> Iterator[None]:
    install_official_years([])
    yield
    install_official_years([])


def test_bfo_keeps_bses_sessions_and_holidays() -> None:
    bfo, bse = get_calendar("BFO"), get_calendar("BSE")
    assert bfo.name == "BFO"
    assert bfo.sessions(D(2025, 1, 1), D(2025, 12, 31)) == bse.sessions(
        D(2025, 1, 1), D(2025, 12, 31)
    )
    assert bfo.holidays(2025) == bse.holidays(2025)
    # 2025-02-26 Mahashivratri closed; 2025-02-01 the Saturday budget session (09:15 IST).
    assert windows("BFO", D(2025, 2, 26)) == []
    assert windows("BFO", D(2025, 2, 1)) == [
        (utc("2025-02-01T03:45"), utc("2025-02-01T10:00"), "regular")
    ]


def test_cds_trades_0900_to_1700_ist_on_nses_weekday_trading_days() -> None:
    assert windows("CDS", D(2025, 6, 10)) == [
        (utc("2025-06-10T03:30"), utc("2025-06-10T11:30"), "regular")
    ]
    assert windows("BCD", D(2025, 6, 10)) == windows("CDS", D(2025, 6, 10))
    # NSE's holidays close it, Muhurat day included; the budget Saturday is not carried over.
    assert windows("CDS", D(2025, 2, 26)) == []
    assert windows("CDS", D(2025, 10, 21)) == []
    assert windows("CDS", D(2025, 2, 1)) == []
    assert [h.date for h in get_calendar("CDS").holidays(2025)] == [
        h.date for h in get_calendar("NSE").holidays(2025)
    ]
    cds = get_calendar("CDS")
    assert cds.is_open(utc("2025-06-10T11:29"))
    assert not cds.is_open(utc("2025-06-10T11:30"))  # 17:00 IST: NSE's equity closed at 15:30
    assert get_calendar("NSE").is_open(utc("2025-06-10T09:59"))
    assert not get_calendar("NSE").is_open(utc("2025-06-10T10:00"))
    assert not cds.is_open(utc("2025-06-10T03:29"))  # 08:59 IST


@pytest.mark.parametrize(
    ("day", "close_utc"),
    [
        (D(2025, 1, 7), "2025-01-07T18:25"),  # winter: 23:55 IST
        (D(2025, 3, 7), "2025-03-07T18:25"),  # Friday before the US switch (Sunday 03-09)
        (D(2025, 3, 10), "2025-03-10T18:00"),  # MCX circular: 23:30 from Monday 2025-03-10
        (D(2025, 6, 10), "2025-06-10T18:00"),
        (D(2025, 10, 31), "2025-10-31T18:00"),  # Friday before the US switch back (11-02)
        (D(2025, 11, 3), "2025-11-03T18:25"),
        (D(2024, 11, 4), "2024-11-04T18:25"),  # "11-Mar-2024 to 01-Nov-2024" at 23:30
    ],
)
def test_mcx_opens_at_0900_ist_and_closes_with_the_us_summer(day: dt.date, close_utc: str) -> None:
    (session,) = get_calendar("MCX").sessions_on(day)
    assert session.open_utc == dt.datetime.combine(day, dt.time(3, 30), tzinfo=dt.UTC)
    assert session.close_utc == utc(close_utc)
    assert session.kind == "regular"


def test_the_us_daylight_saving_rule() -> None:
    assert [us_on_daylight_saving(D(2024, 3, d)) for d in (8, 10, 11)] == [False, True, True]
    assert [us_on_daylight_saving(D(2024, 11, d)) for d in (1, 3, 4)] == [True, False, False]


def test_mcx_holidays_close_the_morning_but_keep_the_evening() -> None:
    mcx = get_calendar("MCX")
    # Holi 2025-03-14 (US summer): 17:00-23:30 IST only, and a trading day.
    assert windows("MCX", D(2025, 3, 14)) == [
        (utc("2025-03-14T11:30"), utc("2025-03-14T18:00"), "regular")
    ]
    assert mcx.is_trading_day(D(2025, 3, 14))
    assert not mcx.is_open(utc("2025-03-14T06:00"))  # 11:30 IST: morning closed
    assert mcx.is_open(utc("2025-03-14T12:00"))
    # Mahashivratri 2025-02-26 (US winter): 17:00-23:55 IST.
    assert windows("MCX", D(2025, 2, 26)) == [
        (utc("2025-02-26T11:30"), utc("2025-02-26T18:25"), "regular")
    ]
    # New Year's Day: morning only.
    assert windows("MCX", D(2025, 1, 1)) == [
        (utc("2025-01-01T03:30"), utc("2025-01-01T11:30"), "early_close")
    ]
    # Closed all day on five dates only, as MCX's 2025 list says.
    assert [(h.date, h.name) for h in mcx.holidays(2025)] == [
        (D(2025, 4, 18), "Good Friday"),
        (D(2025, 8, 15), "Independence Day"),
        (D(2025, 10, 2), "Mahatma Gandhi Jayanti / Dussehra"),
        (D(2025, 10, 21), "Diwali Laxmi Pujan"),
        (D(2025, 12, 25), "Christmas"),
    ]


def test_mcx_status_after_the_close_points_at_the_next_morning() -> None:
    status = get_calendar("MCX").status(utc("2025-06-10T17:45"))  # 23:15 IST
    assert status.is_open
    assert status.next_close == utc("2025-06-10T18:00")
    after = get_calendar("MCX").status(utc("2025-06-10T18:10"))
    assert not after.is_open
    assert after.next_open == utc("2025-06-11T03:30")


def test_segment_horizons() -> None:
    with pytest.raises(CalendarDataUnavailable):
        get_calendar("MCX").sessions_on(D(2021, 6, 1))  # before the 09:00 open we verified
    with pytest.raises(CalendarDataUnavailable):
        get_calendar("CDS").sessions_on(D(2020, 6, 1))  # the COVID-19 short hours
    assert get_calendar("CDS").last_year == 2035


def test_provisional_years_follow_nse_and_its_official_list(no_official_lists: None) -> None:
    cds, mcx = get_calendar("CDS"), get_calendar("MCX")
    assert cds.is_provisional(2027)
    assert mcx.is_provisional(2027)
    assert not cds.is_trading_day(D(2027, 3, 22))  # Holi, from the holidays package
    (session,) = cds.sessions_on(D(2027, 1, 15))
    assert session.provisional
    (nse_year,) = parse_official_list("NSE", "date,name\n2027-01-26,Republic Day\n", "test")
    install_official_years([nse_year])
    assert not cds.is_provisional(2027)
    assert cds.is_trading_day(D(2027, 3, 22))
    assert not cds.is_trading_day(D(2027, 1, 26))
    assert windows("MCX", D(2027, 3, 22)) == [
        (utc("2027-03-22T03:30"), utc("2027-03-22T18:00"), "regular")  # 2027-03-14 US switch
    ]


def test_an_official_mcx_list_carries_evening_sessions(no_official_lists: None) -> None:
    text = (
        "date,name,kind,open,close\n"
        "2027-03-26,Good Friday\n"
        "2027-03-22,Holi (evening session),regular,17:00,23:30\n"
    )
    (year,) = parse_official_list("mcx", text, "MCX circular")
    install_official_years([year])
    mcx = get_calendar("MCX")
    assert windows("MCX", D(2027, 3, 22)) == [
        (utc("2027-03-22T11:30"), utc("2027-03-22T18:00"), "regular")
    ]
    assert [h.date for h in mcx.holidays(2027)] == [D(2027, 3, 26)]
    # CDS still follows NSE (provisional): MCX's list is MCX's alone.
    assert get_calendar("CDS").is_provisional(2027)


def test_the_currency_segment_reads_its_own_nse_json_list(no_official_lists: None) -> None:
    text = (
        '{"CM": [{"tradingDate": "26-Jan-2027", "description": "Republic Day"}],'
        ' "CD": [{"tradingDate": "19-Feb-2027", "description": "Chhatrapati Shivaji Jayanti"},'
        ' {"tradingDate": "26-Jan-2027", "description": "Republic Day"}]}'
    )
    (year,) = parse_official_list("CDS", text, "holiday-master.json")
    assert dict(year.holidays) == {
        D(2027, 1, 26): "Republic Day",
        D(2027, 2, 19): "Chhatrapati Shivaji Jayanti",
    }
    install_official_years([year])
    assert not get_calendar("CDS").is_trading_day(D(2027, 2, 19))
    assert get_calendar("NSE").is_trading_day(D(2027, 2, 19))


def test_sensex_weekly_expiries_resolve_on_bfo() -> None:
    # SENSEX weeklies on Thursdays from 2025-09-01 (SEBI 2025); monthly: the last Thursday.
    # 2025-10-02 (Gandhi Jayanti, a Thursday) rolls back to Wednesday 2025-10-01.
    assert expiries("SENSEX", D(2025, 9, 1), D(2025, 10, 3), exchange="BFO") == [
        Expiry(D(2025, 9, 4), "weekly"),
        Expiry(D(2025, 9, 11), "weekly"),
        Expiry(D(2025, 9, 18), "weekly"),
        Expiry(D(2025, 9, 25), "monthly"),
        Expiry(D(2025, 10, 1), "weekly"),
    ]
    assert next_expiry("SENSEX", D(2025, 12, 26), exchange="BFO") == Expiry(D(2026, 1, 1), "weekly")
