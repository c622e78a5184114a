"""Exchange calendars: sessions, holidays, trading days and open/closed status.

``get_calendar("NSE")`` returns an :class:`ExchangeCalendar` whose methods are pure: UTC
datetimes and plain dates in, dataclasses out. Each (exchange, year) is built once from the
package data (:mod:`.sources`) plus our overrides (:mod:`.overrides`) and memoised, so a
call after the first is a dict lookup and a bisect.

A *trading day* is a date with a ``regular`` or ``early_close`` session. A ``special``
session (NSE's Muhurat hour, a DR drill) makes the market open for a while but the exchange
counts the day as a holiday, so it is neither a trading day nor an expiry day.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from quantdesk.marketdata.calendars.errors import CalendarDataUnavailable, UnknownExchange
from quantdesk.marketdata.calendars.models import (
    TRADING_DAY_KINDS,
    Holiday,
    MarketStatus,
    Session,
    SessionKind,
)
from quantdesk.marketdata.calendars.official import official_year, registry_version
from quantdesk.marketdata.calendars.overrides import HOLIDAY_NAMES, overrides_for
from quantdesk.marketdata.calendars.sources import (
    SOURCES,
    CalendarSource,
    package_days,
    package_holiday_names,
    provisional_holidays,
)
from quantdesk.platform.exceptions import InvalidInput

# Exchange codes we answer to, and the session source each one reads. NSE's F&O segment
# (NFO) keeps the cash market's hours, and BSE's (BFO) BSE's; BSE's currency segment (BCD)
# keeps the same hours and days as NSE's (CDS); US listed options follow the NYSE calendar.
EXCHANGE_ALIASES: Mapping[str, str] = {
    "NSE": "NSE",
    "NFO": "NSE",
    "BSE": "BSE",
    "BFO": "BSE",
    "CDS": "CDS",
    "BCD": "CDS",
    "MCX": "MCX",
    "NYSE": "NYSE",
    "NASDAQ": "NASDAQ",
    "US_OPTIONS": "NYSE",
    "SIM": "SIM",
}

_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class _Year:
    """One exchange-year, indexed for bisection."""

    sessions: tuple[Session, ...]
    opens: tuple[dt.datetime, ...]
    session_dates: tuple[dt.date, ...]
    by_date: Mapping[dt.date, tuple[Session, ...]]
    trading_days: tuple[dt.date, ...]
    trading_day_set: frozenset[dt.date]
    holidays: tuple[Holiday, ...]
    provisional: bool


def _local_to_utc(day: dt.date, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, at, tzinfo=zone).astimezone(dt.UTC)


def _local_sessions(
    day: dt.date,
    segments: Iterable[tuple[dt.time, dt.time]],
    kind: SessionKind,
    zone: ZoneInfo,
    name: str | None = None,
    provisional: bool = False,
) -> tuple[Session, ...]:
    return tuple(
        Session(
            day,
            _local_to_utc(day, opens, zone),
            _local_to_utc(day, closes, zone),
            kind,
            name,
            provisional,
        )
        for opens, closes in segments
    )


def _rule_days(
    source: CalendarSource, year: int, closed: Mapping[dt.date, str], provisional: bool
) -> dict[dt.date, tuple[Session, ...]]:
    """Weekdays at regular hours, minus ``closed``: a year built from the rules."""
    if source.regular_hours is None:  # pragma: no cover - guarded by _year_kind
        raise CalendarDataUnavailable(source.key, year, source.first_year, source.last_year)
    zone = ZoneInfo(source.timezone)
    return {
        day: _local_sessions(day, (source.hours_on(day),), "regular", zone, None, provisional)
        for day in _weekdays(year)
        if day not in closed
    }


def _package_year(source: CalendarSource, year: int) -> dict[dt.date, tuple[Session, ...]]:
    by_date: dict[dt.date, tuple[Session, ...]] = {}
    for day in package_days(source).get(year, ()):
        kind: SessionKind = "early_close" if day.early_close else "regular"
        by_date[day.date] = tuple(Session(day.date, o, c, kind) for o, c in day.segments)
    return by_date


def _every_day(year: int, zone: ZoneInfo) -> dict[dt.date, tuple[Session, ...]]:
    """A simulated exchange's year: every calendar day one session, midnight to midnight,
    so it is always open and a DAY order ends at local midnight."""
    first = dt.date(year, 1, 1)
    days = [first + dt.timedelta(days=i) for i in range(366)]
    return {
        day: (
            Session(
                day,
                _local_to_utc(day, dt.time(0), zone),
                _local_to_utc(day + _ONE_DAY, dt.time(0), zone),
                "regular",
            ),
        )
        for day in days
        if day.year == year
    }


@functools.cache
def _build_year(source: CalendarSource, year: int, official_version: int) -> _Year:
    """One exchange-year. ``official_version`` keys the memo to the installed official lists."""
    zone = ZoneInfo(source.timezone)
    official = official_year(source.key, year)
    provisional = official is None and year > source.last_year
    closed_names: Mapping[dt.date, str] = {}
    if official is not None:
        closed_names = official.holidays
        by_date = _rule_days(source, year, closed_names, provisional=False)
    elif source.derived_from is not None:
        # The parent's weekday holidays (its official list once imported); its weekend
        # sessions (Budget Saturdays, Muhurat) are not carried over: no source says the
        # currency or commodity segments opened on them.
        parent = _build_year(SOURCES[source.derived_from], year, official_version)
        provisional = parent.provisional
        closed_names = {h.date: h.name or "" for h in parent.holidays}
        by_date = _rule_days(source, year, closed_names, provisional)
    elif provisional:
        closed_names = provisional_holidays(source, year)
        by_date = _rule_days(source, year, closed_names, provisional=True)
    elif source.package == "always_open":
        by_date = _every_day(year, zone)
    else:
        by_date = _package_year(source, year)
    # Our hand-kept special sessions apply unless the official list names that day itself.
    named_by_official = {s.date for s in official.sessions} if official else set()
    for entry in overrides_for(source.key, year):
        if entry.date not in named_by_official:
            by_date[entry.date] = _local_sessions(
                entry.date, entry.segments, entry.kind, zone, entry.name
            )
    if official is not None:
        for day in named_by_official:
            listed = [s for s in official.sessions if s.date == day]
            by_date[day] = tuple(
                s
                for item in listed
                for s in _local_sessions(
                    day, ((item.opens, item.closes),), item.kind, zone, item.name
                )
            )
    sessions = tuple(sorted((s for day in by_date.values() for s in day), key=lambda s: s.open_utc))
    trading_days = tuple(
        sorted(d for d, day in by_date.items() if any(s.kind in TRADING_DAY_KINDS for s in day))
    )
    trading_set = frozenset(trading_days)
    names = package_holiday_names(source)
    holidays = tuple(
        Holiday(
            d,
            closed_names.get(d) or HOLIDAY_NAMES.get((source.key, d)) or names.get(d),
            provisional,
        )
        for d in _weekdays(year)
        if d not in trading_set
    )
    return _Year(
        sessions=sessions,
        opens=tuple(s.open_utc for s in sessions),
        session_dates=tuple(s.date for s in sessions),
        by_date=by_date,
        trading_days=trading_days,
        trading_day_set=trading_set,
        holidays=holidays,
        provisional=provisional,
    )


def _weekdays(year: int) -> list[dt.date]:
    first = dt.date(year, 1, 1)
    days = (first + dt.timedelta(days=i) for i in range(366))
    return [d for d in days if d.year == year and d.weekday() < 5]


def require_aware(at: dt.datetime) -> dt.datetime:
    if not isinstance(at, dt.datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput("Expected a timezone-aware datetime (UTC inside quantdesk)")
    try:
        return at.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is a year-0 instant in UTC
        raise InvalidInput("The datetime is out of range") from None


def require_date(day: dt.date) -> dt.date:
    # datetime is a date subclass; accepting it would silently drop the time and zone.
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise InvalidInput("Expected a calendar date (datetime.date), not a datetime")
    return day


@dataclass(frozen=True, slots=True)
class ExchangeCalendar:
    """Sessions and holidays of one exchange. Build it with :func:`get_calendar`."""

    name: str
    source: CalendarSource

    @property
    def timezone(self) -> ZoneInfo:
        """The exchange's local zone (used only at the edges: local dates and times)."""
        return ZoneInfo(self.source.timezone)

    @property
    def first_year(self) -> int:
        return self.source.first_year

    @property
    def last_year(self) -> int:
        """The last year we answer for, provisional years included."""
        return self.source.horizon_last_year

    def is_provisional(self, year: int) -> bool:
        """Is ``year`` built from rules, awaiting the exchange's official list?"""
        return self._year(year).provisional

    def _year(self, year: int) -> _Year:
        if not self.source.first_year <= year <= self.source.horizon_last_year:
            raise CalendarDataUnavailable(
                self.name, year, self.source.first_year, self.source.horizon_last_year
            )
        return _build_year(self.source, year, registry_version())

    def _instant(self, at: dt.datetime) -> dt.datetime:
        """``at`` in UTC, refused when its year lies outside our data (9999-12-31T23:59Z
        would otherwise overflow on the way to exchange-local time)."""
        at = require_aware(at)
        if not self.source.first_year <= at.year <= self.source.horizon_last_year:
            raise CalendarDataUnavailable(
                self.name, at.year, self.source.first_year, self.source.horizon_last_year
            )
        return at

    def local_date(self, at: dt.datetime) -> dt.date:
        """The exchange-local calendar date of an instant."""
        return self._instant(at).astimezone(self.timezone).date()

    # --- sessions ---------------------------------------------------------------------
    def sessions(self, from_date: dt.date, to_date: dt.date) -> list[Session]:
        """Every session whose local trading date is in ``[from_date, to_date]``."""
        first, last = require_date(from_date), require_date(to_date)
        found: list[Session] = []
        for year in range(first.year, last.year + 1):
            data = self._year(year)
            lo = bisect.bisect_left(data.session_dates, first)
            hi = bisect.bisect_right(data.session_dates, last)
            found.extend(data.sessions[lo:hi])
        return found

    def sessions_on(self, day: dt.date) -> tuple[Session, ...]:
        """The sessions held on one local date (empty on a closed day)."""
        day = require_date(day)
        return self._year(day.year).by_date.get(day, ())

    def is_open(self, at: dt.datetime) -> bool:
        """Is any session of this exchange open at ``at``?"""
        return self._session_at(self._instant(at)) is not None

    def _session_at(self, at: dt.datetime) -> Session | None:
        day = at.astimezone(self.timezone).date()
        return next((s for s in self.sessions_on(day) if s.contains(at)), None)

    def status(self, at: dt.datetime) -> MarketStatus:
        """Open or closed at ``at``, the current session, and the next open and close.

        Raises :class:`CalendarDataUnavailable` when the next open lies past our data.
        """
        at = self._instant(at)
        current = self._session_at(at)
        upcoming = self._next_session_after(at)
        return MarketStatus(
            exchange=self.name,
            at=at,
            is_open=current is not None,
            session=current,
            next_open=upcoming.open_utc,
            next_close=(current or upcoming).close_utc,
        )

    def _next_session_after(self, at: dt.datetime) -> Session:
        year = at.astimezone(self.timezone).year
        while True:
            data = self._year(year)
            index = bisect.bisect_right(data.opens, at)
            if index < len(data.sessions):
                return data.sessions[index]
            year += 1

    # --- holidays and trading days ------------------------------------------------------
    def holidays(self, year: int) -> list[Holiday]:
        """Weekdays of ``year`` without a full trading session, with names where known.

        Includes days with only a special session (NSE's Diwali Muhurat day), matching the
        exchanges' own holiday lists.
        """
        return list(self._year(year).holidays)

    def is_trading_day(self, day: dt.date) -> bool:
        """Does ``day`` have a regular or early-close session?"""
        day = require_date(day)
        return day in self._year(day.year).trading_day_set

    def trading_days(self, from_date: dt.date, to_date: dt.date) -> list[dt.date]:
        """Trading days in ``[from_date, to_date]``, oldest first."""
        first, last = require_date(from_date), require_date(to_date)
        found: list[dt.date] = []
        for year in range(first.year, last.year + 1):
            days = self._year(year).trading_days
            found.extend(days[bisect.bisect_left(days, first) : bisect.bisect_right(days, last)])
        return found

    def previous_trading_day(self, day: dt.date) -> dt.date:
        """The last trading day strictly before ``day``."""
        day = require_date(day)
        year = day.year
        while True:
            days = self._year(year).trading_days
            index = bisect.bisect_left(days, day)
            if index > 0:
                return days[index - 1]
            year -= 1

    def next_trading_day(self, day: dt.date) -> dt.date:
        """The first trading day strictly after ``day``."""
        day = require_date(day)
        year = day.year
        while True:
            days = self._year(year).trading_days
            index = bisect.bisect_right(days, day)
            if index < len(days):
                return days[index]
            year += 1

    def trading_day_on_or_before(self, day: dt.date) -> dt.date:
        """``day`` itself when it is a trading day, else the previous one (expiry rolling)."""
        return day if self.is_trading_day(day) else self.previous_trading_day(day)


def get_calendar(exchange: str) -> ExchangeCalendar:
    """The calendar of ``exchange``: NSE, NFO, BSE, BFO, CDS, BCD, MCX, NYSE, NASDAQ,
    US_OPTIONS or SIM (quantdesk's simulated exchange: one session per local day, midnight
    to midnight)."""
    code = exchange.strip().upper()
    if code not in EXCHANGE_ALIASES:
        raise UnknownExchange(exchange, tuple(EXCHANGE_ALIASES))
    return ExchangeCalendar(name=code, source=SOURCES[EXCHANGE_ALIASES[code]])
