"""SIM, the simulated exchange: open every day all day, days ending at local midnight, and
Thursday expiries (weekly; monthly on the month's last Thursday) that never roll."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.marketdata.calendars import expiries, get_calendar, monthly_expiry, next_expiry
from quantdesk.marketdata.domain import EXCHANGE_CURRENCY, Exchange, parse_key
from tests.conftest import UserFactory

IST = ZoneInfo("Asia/Kolkata")
UTC = dt.UTC


def test_sim_is_an_exchange_in_inr() -> None:
    assert parse_key("SIM:ALPHA") == (Exchange.SIM, "ALPHA")
    assert EXCHANGE_CURRENCY[Exchange.SIM] == "INR"
    assert get_calendar("sim").timezone == IST


@pytest.mark.parametrize(
    "at",
    [
        dt.datetime(2026, 12, 5, 3, 0, tzinfo=IST),  # Saturday, 3 a.m.
        dt.datetime(2026, 12, 6, 23, 59, 59, tzinfo=IST),  # Sunday, a second to midnight
        dt.datetime(2026, 12, 7, 0, 0, tzinfo=IST),  # Monday, midnight itself
        dt.datetime(2026, 1, 26, 11, 0, tzinfo=IST),  # Republic Day: NSE is shut
        dt.datetime(2026, 10, 20, 18, 30, tzinfo=IST),  # a Diwali evening
        dt.datetime(2027, 12, 31, 23, 0, tzinfo=IST),  # new year's eve, past NSE's list
    ],
)
def test_always_open_and_a_day_ends_at_local_midnight(at: dt.datetime) -> None:
    status = get_calendar("SIM").status(at.astimezone(UTC))
    assert status.is_open
    assert status.session is not None
    assert status.session.date == at.date()
    midnight = dt.datetime.combine(at.date() + dt.timedelta(days=1), dt.time(0), IST)
    # DAY orders expire at the session close: the next local midnight.
    assert status.next_close == midnight.astimezone(UTC)
    assert status.next_open == status.next_close  # the next day's session starts at once


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=dt.datetime(2000, 1, 1, 0, 0), max_value=dt.datetime(2099, 12, 30)))
def test_open_at_every_instant_of_its_horizon(naive: dt.datetime) -> None:
    at = naive.replace(tzinfo=UTC)
    calendar = get_calendar("SIM")
    status = calendar.status(at)
    assert status.is_open
    assert calendar.is_open(at)
    assert at < status.next_close <= at + dt.timedelta(days=1)
    assert status.next_close.astimezone(IST).time() == dt.time(0)


def test_every_day_is_a_trading_day_and_none_a_holiday() -> None:
    calendar = get_calendar("SIM")
    assert calendar.holidays(2026) == []
    days = calendar.trading_days(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    assert len(days) == 365
    assert calendar.is_trading_day(dt.date(2026, 12, 6))  # a Sunday
    sessions = calendar.sessions(dt.date(2026, 3, 1), dt.date(2026, 3, 3))
    assert [(s.open_utc, s.close_utc) for s in sessions] == [
        (
            dt.datetime(2026, 2, 28, 18, 30, tzinfo=UTC),
            dt.datetime(2026, 3, 1, 18, 30, tzinfo=UTC),
        ),
        (
            dt.datetime(2026, 3, 1, 18, 30, tzinfo=UTC),
            dt.datetime(2026, 3, 2, 18, 30, tzinfo=UTC),
        ),
        (
            dt.datetime(2026, 3, 2, 18, 30, tzinfo=UTC),
            dt.datetime(2026, 3, 3, 18, 30, tzinfo=UTC),
        ),
    ]
    assert calendar.previous_trading_day(dt.date(2026, 3, 1)) == dt.date(2026, 2, 28)


def test_expiries_are_thursdays_monthly_on_the_last_one() -> None:
    found = expiries("SIMIDX", dt.date(2026, 12, 1), dt.date(2027, 1, 31), exchange="SIM")
    assert [(e.date.isoformat(), e.kind) for e in found] == [
        ("2026-12-03", "weekly"),
        ("2026-12-10", "weekly"),
        ("2026-12-17", "weekly"),
        ("2026-12-24", "weekly"),  # Christmas Eve: SIM has no holidays, nothing rolls
        ("2026-12-31", "monthly"),
        ("2027-01-07", "weekly"),
        ("2027-01-14", "weekly"),
        ("2027-01-21", "weekly"),
        ("2027-01-28", "monthly"),
    ]
    assert all(not e.provisional for e in found)
    # Any underlying listed on SIM follows the same rule.
    assert monthly_expiry("ALPHA", 2026, 4, exchange="SIM") == dt.date(2026, 4, 30)
    assert next_expiry("SIMIDX", dt.date(2026, 12, 25), "monthly", "SIM").date == dt.date(
        2026, 12, 31
    )
    assert next_expiry("SIMIDX", dt.date(2026, 12, 4), exchange="SIM").date == dt.date(2026, 12, 10)


async def test_the_calendar_endpoints_answer_for_sim(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    viewer = await make_user("viewer")
    status = await client.get(
        "/api/v1/calendar/SIM/status",
        params={"at": "2026-12-06T03:00:00+05:30"},
        headers=viewer.headers,
    )
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["is_open"] is True
    assert body["next_close"].startswith("2026-12-06T18:30:00")
    holidays = await client.get(
        "/api/v1/calendar/SIM/holidays", params={"year": 2026}, headers=viewer.headers
    )
    assert holidays.status_code == 200
    assert holidays.json()["holidays"] == []
    listed = await client.get(
        "/api/v1/calendar/SIM/expiries",
        params={"underlying": "SIMIDX", "from": "2026-12-01", "to": "2026-12-31"},
        headers=viewer.headers,
    )
    assert listed.status_code == 200, listed.text
    assert [e["date"] for e in listed.json()["expiries"]][-1] == "2026-12-31"
