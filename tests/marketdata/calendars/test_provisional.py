"""Years past the calendar packages' data: provisional years from the rules and the
``holidays`` package, and the official lists that replace them."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator

import holidays as holiday_rules
import pytest

from quantdesk.marketdata.calendars import Expiry, expiries, get_calendar, next_expiry
from quantdesk.marketdata.calendars.official import (
    install_official_years,
    official_year,
    parse_official_list,
)
from quantdesk.marketdata.calendars.sources import PROVISIONAL_LAST_YEAR
from quantdesk.platform.exceptions import InvalidInput

D = dt.date
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


@pytest.fixture
def no_official_lists() -> Iterator[None]:
    install_official_years([])
    yield
    install_official_years([])


@pytest.mark.parametrize("exchange", ["NSE", "NFO", "BSE"])
def test_2027_is_provisional_with_the_maintained_holidays(
    exchange: str, no_official_lists: None
) -> None:
    cal = get_calendar(exchange)
    assert cal.is_provisional(2027)
    assert not cal.is_provisional(2026)
    holidays = cal.holidays(2027)
    assert all(h.provisional for h in holidays)
    assert {h.date: h.name for h in holidays} == {
        D(2027, 1, 26): "Republic Day",
        D(2027, 3, 10): "Eid al-Fitr (estimated)",
        D(2027, 3, 22): "Holi",
        D(2027, 3, 26): "Good Friday",
        D(2027, 4, 14): "Dr. B. R. Ambedkar Jayanti",
        D(2027, 4, 15): "Ram Navami",
        D(2027, 5, 17): "Eid al-Adha (estimated)",
        D(2027, 6, 16): "Ashura (estimated)",
        D(2027, 10, 29): "Diwali Lakshmi Puja",
    }
    assert len(cal.trading_days(D(2027, 1, 1), D(2027, 12, 31))) == 261 - 9
    (session,) = cal.sessions_on(D(2027, 1, 15))
    assert session.provisional
    assert session.kind == "regular"
    assert session.open_utc.astimezone(IST).time() == dt.time(9, 15)
    assert session.close_utc.astimezone(IST).time() == dt.time(15, 30)


def test_the_year_boundary_is_seamless(no_official_lists: None) -> None:
    nse = get_calendar("NSE")
    assert nse.next_trading_day(D(2026, 12, 31)) == D(2027, 1, 1)
    assert nse.previous_trading_day(D(2027, 1, 1)) == D(2026, 12, 31)
    status = nse.status(dt.datetime(2026, 12, 31, 12, 0, tzinfo=dt.UTC))
    assert status.next_open == dt.datetime(2027, 1, 1, 3, 45, tzinfo=dt.UTC)


def test_expiry_rules_roll_on_provisional_holidays(no_official_lists: None) -> None:
    # NIFTY's January 2027 contract: last Tuesday 2027-01-26 is Republic Day -> Monday.
    january = expiries("NIFTY", D(2027, 1, 18), D(2027, 1, 31))
    assert january == [
        Expiry(D(2027, 1, 19), "weekly", True),
        Expiry(D(2027, 1, 25), "monthly", True),
    ]
    # SENSEX (Thursday): Holi on Monday 2027-03-22 does not move the 2027-03-25 monthly.
    assert expiries("SENSEX", D(2027, 3, 22), D(2027, 3, 31), "monthly") == [
        Expiry(D(2027, 3, 25), "monthly", True)
    ]
    # The 2026 data are the exchanges' own lists: not provisional.
    assert next_expiry("NIFTY", D(2026, 12, 23)) == Expiry(D(2026, 12, 29), "monthly", False)


def test_the_provisional_horizon_is_where_the_festival_tables_end() -> None:
    # The ``holidays`` package's Indian lunisolar festivals (which its NSE/BSE calendars
    # use) reach PROVISIONAL_LAST_YEAR and no further; a later year would lose Holi and
    # Diwali silently, so it is refused instead.
    for year, festivals in ((PROVISIONAL_LAST_YEAR, True), (PROVISIONAL_LAST_YEAR + 1, False)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "available only from 2001 to 2035"
            names = set(holiday_rules.country_holidays("IN", years=year).values())
        assert ({"Holi", "Diwali"} <= names) is festivals
    assert get_calendar("NSE").last_year == PROVISIONAL_LAST_YEAR


def test_sensex_expiries_since_the_2023_relaunch() -> None:
    # BSE relaunched SENSEX F&O on 2023-05-15 with Friday expiries; monthly: last Friday.
    assert expiries("SENSEX", D(2023, 5, 15), D(2023, 6, 10)) == [
        Expiry(D(2023, 5, 19), "weekly"),
        Expiry(D(2023, 5, 26), "monthly"),
        Expiry(D(2023, 6, 2), "weekly"),
        Expiry(D(2023, 6, 9), "weekly"),
    ]
    # Friday holidays roll to Thursday: Republic Day 2024-01-26, Good Friday 2024-03-29.
    assert Expiry(D(2024, 1, 25), "monthly") in expiries("SENSEX", D(2024, 1, 1), D(2024, 1, 31))
    assert Expiry(D(2024, 3, 28), "monthly") in expiries("SENSEX", D(2024, 3, 1), D(2024, 3, 31))
    # The Friday era ends with the 2025-01-03 weekly; Tuesdays follow.
    assert expiries("SENSEX", D(2024, 12, 23), D(2025, 1, 10)) == [
        Expiry(D(2024, 12, 27), "monthly"),
        Expiry(D(2025, 1, 3), "weekly"),
        Expiry(D(2025, 1, 7), "weekly"),
    ]


OFFICIAL_2027 = """date,name,kind,open,close
2027-01-26,Republic Day
2027-03-10,Id-Ul-Fitr (Ramadan Eid)
2027-03-11,Shri Ram Navami (moved)
2027-11-01,Diwali Laxmi Pujan
2027-11-01,Muhurat trading,special,18:00,19:00
2027-02-06,Union Budget,regular,09:15,15:30
2027-05-01,Maharashtra Day
"""


def test_an_official_list_replaces_the_provisional_year(no_official_lists: None) -> None:
    (year,) = parse_official_list("nse", OFFICIAL_2027, "NSE circular 2026-12-12")
    assert year.exchange == "NSE"
    assert year.year == 2027
    assert D(2027, 5, 1) not in year.holidays  # a Saturday closes nothing
    install_official_years([year])
    nse = get_calendar("NSE")
    assert not nse.is_provisional(2027)
    assert [(h.date, h.name, h.provisional) for h in nse.holidays(2027)] == [
        (D(2027, 1, 26), "Republic Day", False),
        (D(2027, 3, 10), "Id-Ul-Fitr (Ramadan Eid)", False),
        (D(2027, 3, 11), "Shri Ram Navami (moved)", False),
        (D(2027, 11, 1), "Diwali Laxmi Pujan", False),
    ]
    assert nse.is_trading_day(D(2027, 3, 22))  # the estimated Holi closure is gone
    assert nse.is_trading_day(D(2027, 2, 6))  # the Saturday budget session
    (muhurat,) = nse.sessions_on(D(2027, 11, 1))
    assert (muhurat.kind, muhurat.name) == ("special", "Muhurat trading")
    assert not nse.is_trading_day(D(2027, 11, 1))
    # BSE is its own list: still provisional.
    assert get_calendar("BSE").is_provisional(2027)
    # Expiries follow the installed list at once (memoised per installed version).
    assert next_expiry("NIFTY", D(2027, 1, 20)) == Expiry(D(2027, 1, 25), "monthly", False)
    install_official_years([])
    assert official_year("NSE", 2027) is None
    assert nse.is_provisional(2027)
    assert not nse.is_trading_day(D(2027, 3, 22))


def test_nse_holiday_json_is_accepted() -> None:
    text = (
        '{"CM": [{"Sr_no": 1, "tradingDate": "26-Jan-2027", "weekDay": "Tuesday",'
        ' "description": "Republic Day"}]}'
    )
    (year,) = parse_official_list("NSE", text, "holiday-master.json")
    assert year.holidays == {D(2027, 1, 26): "Republic Day"}


@pytest.mark.parametrize(
    ("exchange", "text", "message"),
    [
        ("NYSE", "date,name\n2027-01-01,New Year\n", "NSE, BSE, CDS, MCX, not NYSE"),
        ("NSE", "day,what\n2027-01-01,x\n", "header line"),
        ("NSE", "date,name\n", "no days"),
        ("NSE", "date,name\n2027-13-01,Bad\n", "line 2: date must be"),
        ("NSE", "date,name\n2027-01-26,\n", "line 2: every day needs a name"),
        ("NSE", "date,name\n2027-01-26,A\n2027-01-26,B\n", "line 3: 2027-01-26 is listed twice"),
        ("NSE", "date,name,kind\n2027-01-26,A,closed\n", "line 2: kind must be"),
        ("NSE", "date,name,kind,open,close\n2027-11-01,M,special,19:00,18:00\n", "close must be"),
        ("NSE", "date,name,kind,open\n2027-11-01,M,special,6pm\n", "open must be a local time"),
        ("NSE", '{"CM": 3}', '"CM" list'),
        ("NSE", "{not json", "not valid JSON"),
    ],
)
def test_bad_official_lists_are_refused_whole(exchange: str, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_official_list(exchange, text, "file.csv")
