"""Where each exchange's sessions come from, how far that data reaches, and the one place
that touches pandas.

Sessions, holidays and early closes are read from two maintained packages rather than
written by hand:

* ``pandas_market_calendars`` (mcal) for NSE (the only package with an NSE calendar; it also
  models the weekday Muhurat sessions) and NYSE (its history of early closes and late opens
  before 2006 is richer than exchange_calendars').
* ``exchange_calendars`` (xcals) for BSE (``XBOM``: its holiday list is more accurate than
  mcal's BSE before 2021, which misses several Diwali and Eid closures) and NASDAQ (``XNAS``
  is a real NASDAQ calendar; mcal's "NASDAQ" is an alias of its NYSE calendar).

Each source is read once for its whole horizon (one ``schedule`` call is ~0.1 s whether it
spans one year or forty, because the packages evaluate their holiday rules per call) and
turned into plain tuples grouped by year, memoised: the pandas work happens once per
exchange and process.

Data horizons (checked against the installed versions, see docs/calendars.md):

* mcal 5.5 NSE: holiday list 1996-2026 ("Coverage is 1996 through 2026"); past 2026 it
  silently returns every weekday as a session, hence the hard ``last_year``.
* xcals 4.13 XBOM: precomputed holidays 1997-2026; it raises itself past 2026.
* NYSE / NASDAQ: rule-based (plus ad-hoc closures), so both packages extrapolate forever.
  We accept the extrapolation to 2030 because listed US options (LEAPS) expire up to about
  three years ahead; unscheduled closures (national days of mourning) cannot be known by
  anyone in advance.

Past the packages' data an Indian year is *provisional*: built from the rules (Monday to
Friday at regular hours) minus the holidays of the ``holidays`` package's NSE/BSE financial
calendars, whose fixed-date holidays are certain and whose lunar ones (Eid, Muharram) are
marked "(estimated)". Its Hindu festival tables (Holi, Diwali) reach 2035, so that is where
provisional years stop. An exchange's official list, once an admin imports it
(:mod:`.official`), replaces the provisional year, and any package year, for that exchange.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import holidays as holiday_rules
import pandas as pd
import pandas_market_calendars as mcal

# "always_open": no package; one session per calendar day, midnight to midnight (SIM).
# "derived": no package; the trading days of ``derived_from`` at this source's own hours
# (NSE's currency segment, MCX).
Package = Literal["pandas_market_calendars", "exchange_calendars", "always_open", "derived"]


@dataclass(frozen=True, slots=True)
class CalendarSource:
    """One exchange's session data: which package calendar, in which zone, for which years."""

    key: str
    package: Package
    package_code: str
    timezone: str
    first_year: int
    last_year: int
    horizon_note: str
    # Provisional years (after ``last_year``, up to ``provisional_last_year``) are weekdays at
    # ``regular_hours`` (exchange-local) minus the ``holidays`` package's financial calendar
    # ``provisional_code``; ``None`` for exchanges whose package data already extrapolate.
    provisional_code: str | None = None
    provisional_last_year: int | None = None
    regular_hours: tuple[dt.time, dt.time] | None = None
    # A "derived" source trades on the weekday trading days of this source (its holidays,
    # official list and provisional years included) unless it has an official list itself.
    derived_from: str | None = None
    # The close while New York is on daylight-saving time (MCX closes its international
    # commodities 25 minutes earlier then); ``regular_hours``' close otherwise.
    close_during_us_dst: dt.time | None = None

    @property
    def horizon_last_year(self) -> int:
        """The last year we can answer for, provisional years included."""
        return self.provisional_last_year or self.last_year

    def hours_on(self, day: dt.date) -> tuple[dt.time, dt.time]:
        """The regular session of ``day`` (exchange-local open and close)."""
        if self.regular_hours is None:  # pragma: no cover - only rule-built sources ask
            raise ValueError(f"{self.key} has no regular hours")
        opens, closes = self.regular_hours
        if self.close_during_us_dst is not None and us_on_daylight_saving(day):
            closes = self.close_during_us_dst
        return opens, closes


_NEW_YORK = ZoneInfo("America/New_York")


def us_on_daylight_saving(day: dt.date) -> bool:
    """Is New York on daylight-saving time on ``day``?  Judged at noon, so the Sunday of a
    switch counts as switched: MCX's circulars move its hours from the following Monday
    ("11-Mar-2024 to 01-Nov-2024, both days inclusive" for the 2024 US summer)."""
    return dt.datetime.combine(day, dt.time(12), tzinfo=_NEW_YORK).dst() != dt.timedelta(0)


# The ``holidays`` package's Hindu lunisolar tables (Holi, Diwali) end with 2035; a later year
# built from it would silently miss them.
PROVISIONAL_LAST_YEAR = 2035
INDIA_REGULAR_HOURS = (dt.time(9, 15), dt.time(15, 30))
# NSE currency derivatives (CDS): Monday to Friday 09:00-17:00 IST (NSE contract
# specifications, "Futures & Options on INR pairs").
CURRENCY_HOURS = (dt.time(9, 0), dt.time(17, 0))
# MCX non-agricultural commodities: 09:00-23:55 IST, 23:30 while the US is on daylight-saving
# time (MCX circulars, e.g. MCX/TRD/675/2023 from 2023-11-06; the 2024 summer timings ran
# 11-Mar-2024 to 01-Nov-2024 at 09:00-23:30).  Agricultural contracts close at 17:00 or 21:00.
MCX_HOURS = (dt.time(9, 0), dt.time(23, 55))
MCX_CLOSE_DURING_US_DST = dt.time(23, 30)

SOURCES: Mapping[str, CalendarSource] = {
    "SIM": CalendarSource(
        key="SIM",
        package="always_open",
        package_code="SIM",
        timezone="Asia/Kolkata",
        first_year=2000,
        last_year=2099,
        horizon_note="simulated: open every day, all day",
    ),
    "NSE": CalendarSource(
        key="NSE",
        package="pandas_market_calendars",
        package_code="NSE",
        timezone="Asia/Kolkata",
        first_year=1996,
        last_year=2026,
        horizon_note="mcal 5.5 NSE holiday list runs 1996-2026 (verified by mcal 2026-08-26)",
        provisional_code="XNSE",
        provisional_last_year=PROVISIONAL_LAST_YEAR,
        regular_hours=INDIA_REGULAR_HOURS,
    ),
    "BSE": CalendarSource(
        key="BSE",
        package="exchange_calendars",
        package_code="XBOM",
        timezone="Asia/Kolkata",
        first_year=1997,
        last_year=2026,
        horizon_note="exchange_calendars 4.13 XBOM precomputed holidays run 1997-2026",
        provisional_code="XBOM",
        provisional_last_year=PROVISIONAL_LAST_YEAR,
        regular_hours=INDIA_REGULAR_HOURS,
    ),
    # NSE's currency segment trades on NSE's trading days (its extra closures on Mumbai
    # bank-settlement holidays are not in any package: import the segment's list as CDS).
    # 2021 on: from April to November 2020 the segment traded shorter (COVID-19) hours.
    "CDS": CalendarSource(
        key="CDS",
        package="derived",
        package_code="NSE",
        timezone="Asia/Kolkata",
        first_year=2021,
        last_year=2026,
        horizon_note="NSE's trading days (mcal NSE, 2021-2026) at 09:00-17:00 IST",
        provisional_last_year=PROVISIONAL_LAST_YEAR,
        regular_hours=CURRENCY_HOURS,
        derived_from="NSE",
    ),
    # MCX closes its morning session on the NSE/BSE trading holidays; the evening sessions
    # it keeps open on many of them are in the override table (years we hold MCX's list).
    # 2022 on: the 09:00 open is documented from 2022-03-14 (earlier years opened at 10:00).
    "MCX": CalendarSource(
        key="MCX",
        package="derived",
        package_code="NSE",
        timezone="Asia/Kolkata",
        first_year=2022,
        last_year=2026,
        horizon_note="NSE's trading days (mcal NSE, 2022-2026) at 09:00-23:30/23:55 IST",
        provisional_last_year=PROVISIONAL_LAST_YEAR,
        regular_hours=MCX_HOURS,
        derived_from="NSE",
        close_during_us_dst=MCX_CLOSE_DURING_US_DST,
    ),
    "NYSE": CalendarSource(
        key="NYSE",
        package="pandas_market_calendars",
        package_code="NYSE",
        timezone="America/New_York",
        first_year=1990,
        last_year=2030,
        horizon_note="rule-based; holiday rules projected to 2030 (LEAPS horizon)",
    ),
    "NASDAQ": CalendarSource(
        key="NASDAQ",
        package="exchange_calendars",
        package_code="XNAS",
        timezone="America/New_York",
        first_year=1990,
        last_year=2030,
        horizon_note="rule-based; holiday rules projected to 2030 (LEAPS horizon)",
    ),
}


@dataclass(frozen=True, slots=True)
class PackageDay:
    """One trading date as the package reports it, in UTC."""

    date: dt.date
    segments: tuple[tuple[dt.datetime, dt.datetime], ...]
    early_close: bool


# The packages name the same US holidays differently ("Good Friday 1908+",
# "Juneteenth Starting at 2022", "President's Day"); we show the official NYSE names.
_CLEAN_HOLIDAY_NAMES: Mapping[str, str] = {
    "New Years Day": "New Year's Day",
    "New Year's Day": "New Year's Day",
    "Dr. Martin Luther King Jr. Day": "Martin Luther King, Jr. Day",
    "Presidents Day": "Washington's Birthday",
    "President's Day": "Washington's Birthday",
    "Good Friday 1908+": "Good Friday",
    "Good Friday": "Good Friday",
    "Memorial Day": "Memorial Day",
    "Juneteenth Starting at 2022": "Juneteenth National Independence Day",
    "Juneteenth National Independence Day": "Juneteenth National Independence Day",
    "July 4th": "Independence Day",
    "Labor Day": "Labor Day",
    "Thanksgiving": "Thanksgiving Day",
    "Christmas": "Christmas Day",
}


def _utc_list(column: Any) -> list[dt.datetime | None]:
    """A column of UTC timestamps as stdlib aware datetimes (``None`` for NaT)."""
    stamps = pd.Series(column).dt.tz_convert("UTC")
    return [None if pd.isna(ts) else ts.to_pydatetime().replace(tzinfo=dt.UTC) for ts in stamps]


def _segments(
    opens: list[dt.datetime | None],
    closes: list[dt.datetime | None],
    breaks: list[tuple[list[dt.datetime | None], list[dt.datetime | None]]],
    row: int,
) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
    """A day's trading windows: open to close, cut by any breaks or halts that day."""
    bounds = [opens[row]]
    for starts, ends in breaks:
        if starts[row] is not None:
            bounds += [starts[row], ends[row]]
    bounds.append(closes[row])
    edges = [b for b in bounds if b is not None]
    return tuple(zip(edges[::2], edges[1::2], strict=True))


@functools.cache
def _mcal_calendar(code: str) -> Any:
    return mcal.get_calendar(code)


@functools.cache
def _xcals_calendar(code: str, first_year: int, last_year: int) -> Any:
    # One instance for the whole horizon: XNAS builds in ~0.1 s whether for 1 or 41 years.
    return xcals.get_calendar(code, start=f"{first_year}-01-01", end=f"{last_year}-12-31")


def _mcal_days(source: CalendarSource) -> tuple[PackageDay, ...]:
    cal = _mcal_calendar(source.package_code)
    schedule = cal.schedule(
        f"{source.first_year}-01-01", f"{source.last_year}-12-31", interruptions=True
    )
    early = {ts.date() for ts in cal.early_closes(schedule).index}
    # mcal reports a halt (e.g. NSE's 2021-02-24 telecom outage) as interruption columns.
    columns = [str(c) for c in schedule.columns]
    halts = [
        (_utc_list(schedule[start]), _utc_list(schedule[start.replace("start", "end")]))
        for start in sorted(c for c in columns if c.startswith("interruption_start"))
    ]
    opens, closes = _utc_list(schedule["market_open"]), _utc_list(schedule["market_close"])
    dates = [pd.Timestamp(label).date() for label in schedule.index]
    return tuple(
        PackageDay(day, _segments(opens, closes, halts, row), early_close=day in early)
        for row, day in enumerate(dates)
    )


def _xcals_days(source: CalendarSource) -> tuple[PackageDay, ...]:
    cal = _xcals_calendar(source.package_code, source.first_year, source.last_year)
    schedule = cal.schedule
    early = {ts.date() for ts in cal.early_closes}
    breaks = [(_utc_list(schedule["break_start"]), _utc_list(schedule["break_end"]))]
    opens, closes = _utc_list(schedule["open"]), _utc_list(schedule["close"])
    dates = [pd.Timestamp(label).date() for label in schedule.index]
    return tuple(
        PackageDay(day, _segments(opens, closes, breaks, row), early_close=day in early)
        for row, day in enumerate(dates)
    )


@functools.cache
def package_days(source: CalendarSource) -> Mapping[int, tuple[PackageDay, ...]]:
    """The package's sessions over the source's horizon, by calendar year (memoised)."""
    days = (
        _mcal_days(source) if source.package == "pandas_market_calendars" else _xcals_days(source)
    )
    by_year: dict[int, list[PackageDay]] = {}
    for day in days:
        by_year.setdefault(day.date.year, []).append(day)
    return {year: tuple(found) for year, found in by_year.items()}


@functools.cache
def package_holiday_names(source: CalendarSource) -> Mapping[dt.date, str]:
    """Names of the package's rule-based holidays over the horizon (empty if it has none)."""
    if source.package in ("always_open", "derived"):
        return {}
    if source.package == "pandas_market_calendars":
        rules = _mcal_calendar(source.package_code).regular_holidays
    else:
        rules = _xcals_calendar(source.package_code, source.first_year, source.last_year)
        rules = rules.regular_holidays
    if rules is None:
        return {}
    named = rules.holidays(
        f"{source.first_year}-01-01", f"{source.last_year}-12-31", return_name=True
    )
    return {
        pd.Timestamp(label).date(): _CLEAN_HOLIDAY_NAMES.get(str(name), str(name))
        for label, name in named.items()
    }


@functools.cache
def provisional_holidays(source: CalendarSource, year: int) -> Mapping[dt.date, str]:
    """The maintained holiday list for a provisional year: weekday closures with names.

    Lunar-calendar dates carry the package's own "(estimated)" mark in their name.
    """
    if source.provisional_code is None:
        return {}
    found = holiday_rules.financial_holidays(source.provisional_code, years=year)
    return {day: str(name) for day, name in sorted(found.items()) if day.weekday() < 5}
