"""Our calendars against the packages they read and against the *other* package.

NYSE comes from pandas_market_calendars and NASDAQ from exchange_calendars, so comparing
each with the other package's calendar is an independent check of the adapter. NSE and BSE
must equal their package except on the dates of our override table, and our copies of
mcal's NSE Muhurat hours must equal mcal's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pandas_market_calendars as mcal
import pytest

from quantdesk.marketdata.calendars import get_calendar
from quantdesk.marketdata.calendars.overrides import HOLIDAY_NAMES, SESSION_OVERRIDES

UTC = dt.UTC
Bounds = dict[dt.date, tuple[dt.datetime, dt.datetime]]


def _day_bounds(schedule: pd.DataFrame, open_col: str, close_col: str) -> Bounds:
    """The first open and last close of each day in a package schedule, in UTC."""
    return {
        pd.Timestamp(label).date(): (
            pd.Timestamp(o).to_pydatetime().astimezone(UTC),
            pd.Timestamp(c).to_pydatetime().astimezone(UTC),
        )
        for label, o, c in zip(schedule.index, schedule[open_col], schedule[close_col], strict=True)
    }


def _our_bounds(exchange: str, first: dt.date, last: dt.date) -> Bounds:
    bounds: Bounds = {}
    for s in get_calendar(exchange).sessions(first, last):
        opened, _ = bounds.get(s.date, (s.open_utc, s.close_utc))
        bounds[s.date] = (opened, s.close_utc)
    return bounds


def _override_dates(exchange: str) -> set[dt.date]:
    return {o.date for o in SESSION_OVERRIDES if exchange in o.exchanges}


@pytest.mark.parametrize(("exchange", "reference"), [("NYSE", "XNYS"), ("NASDAQ", "XNYS")])
def test_us_sessions_equal_exchange_calendars_xnys(exchange: str, reference: str) -> None:
    # From 2007 on the two packages agree to the minute (before that mcal holds extra
    # historical early closes and late opens); 2030 is our horizon.
    ref = xcals.get_calendar(reference, start="2007-01-01", end="2030-12-31").schedule
    assert _our_bounds(exchange, dt.date(2007, 1, 1), dt.date(2030, 12, 31)) == _day_bounds(
        ref, "open", "close"
    )


def test_nasdaq_equals_mcal_nasdaq() -> None:
    ref = mcal.get_calendar("NASDAQ").schedule("2007-01-01", "2030-12-31")
    ours = _our_bounds("NASDAQ", dt.date(2007, 1, 1), dt.date(2030, 12, 31))
    assert ours == _day_bounds(ref, "market_open", "market_close")


def test_nse_equals_mcal_except_on_override_dates() -> None:
    ref = _day_bounds(
        mcal.get_calendar("NSE").schedule("1996-01-01", "2026-12-31"), "market_open", "market_close"
    )
    ours = _our_bounds("NSE", dt.date(1996, 1, 1), dt.date(2026, 12, 31))
    overridden = _override_dates("NSE")
    assert {d: b for d, b in ours.items() if d not in overridden} == {
        d: b for d, b in ref.items() if d not in overridden
    }


def test_our_nse_muhurat_hours_equal_mcal_where_mcal_has_them() -> None:
    ref = _day_bounds(
        mcal.get_calendar("NSE").schedule("1996-01-01", "2026-12-31"), "market_open", "market_close"
    )
    ours = _our_bounds("NSE", dt.date(1996, 1, 1), dt.date(2026, 12, 31))
    shared = {o.date for o in SESSION_OVERRIDES if "NSE" in o.exchanges} & set(ref)
    assert len(shared) == 19
    assert {d: ours[d] for d in shared} == {d: ref[d] for d in shared}


def test_every_late_opening_nse_session_in_mcal_is_in_our_special_table() -> None:
    # mcal models Muhurat as a late open; each one must be marked special by our table.
    cal = mcal.get_calendar("NSE")
    schedule = cal.schedule("1996-01-01", "2026-12-31")
    late = {ts.date() for ts in cal.late_opens(schedule).index}
    special = {o.date for o in SESSION_OVERRIDES if "NSE" in o.exchanges and o.kind == "special"}
    assert late
    assert late <= special


def test_bse_equals_exchange_calendars_xbom_except_on_override_dates() -> None:
    ref = _day_bounds(
        xcals.get_calendar("XBOM", start="1997-01-01", end="2026-12-31").schedule, "open", "close"
    )
    ours = _our_bounds("BSE", dt.date(1997, 1, 1), dt.date(2026, 12, 31))
    overridden = _override_dates("BSE")
    assert {d: b for d, b in ours.items() if d not in overridden} == {
        d: b for d, b in ref.items() if d not in overridden
    }


def test_nse_and_bse_share_trading_days_since_2014() -> None:
    # The two exchanges close on the same days; the packages agree from 2014 (before that
    # XBOM keeps several Diwali days open and the two disagree on Muharram 2013).
    first, last = dt.date(2014, 1, 1), dt.date(2026, 12, 31)
    assert get_calendar("NSE").trading_days(first, last) == get_calendar("BSE").trading_days(
        first, last
    )


def test_named_holidays_are_holidays() -> None:
    # Guards the names table against a date typo: every named date must be closed.
    for (exchange, day), name in HOLIDAY_NAMES.items():
        named = {(h.date, h.name) for h in get_calendar(exchange).holidays(day.year)}
        assert (day, name) in named


def _random_instants(seed: int, n: int, first: str, last: str) -> Iterator[dt.datetime]:
    rng = np.random.default_rng(seed)
    lo, hi = pd.Timestamp(first, tz="UTC").value, pd.Timestamp(last, tz="UTC").value
    minutes = (rng.integers(lo, hi, n) // 60_000_000_000) * 60_000_000_000
    for ns in minutes:
        yield pd.Timestamp(int(ns), tz="UTC").to_pydatetime().astimezone(UTC)


def test_is_open_matches_exchange_calendars_on_random_minutes() -> None:
    # exchange_calendars' default "left" side: open on the open minute, closed on the close.
    ref = xcals.get_calendar("XNYS", start="2006-01-01", end="2030-12-31")
    ours = get_calendar("NYSE")
    instants = list(_random_instants(7, 4000, "2006-01-02", "2030-12-30"))
    assert [ours.is_open(at) for at in instants] == [
        bool(ref.is_open_on_minute(pd.Timestamp(at))) for at in instants
    ]


def test_is_open_matches_mcal_nse_on_random_minutes_off_override_dates() -> None:
    cal = mcal.get_calendar("NSE")
    schedule = cal.schedule("2000-01-01", "2026-12-31")
    ours = get_calendar("NSE")
    overridden = _override_dates("NSE")
    checked = 0
    # mcal's open_at_time costs ~3 ms a call, hence fewer samples than above.
    for at in _random_instants(11, 600, "2000-01-03", "2026-12-30"):
        if at.astimezone(ours.timezone).date() in overridden:
            continue
        checked += 1
        assert ours.is_open(at) == cal.open_at_time(schedule, pd.Timestamp(at)), at
    assert checked > 590
