"""Expiry dates of index, stock and US option contracts from the rule table and calendars.

One rolling rule for every row of :data:`.expiry_rules.EXPIRY_RULES`: a contract expires on
its nominal day, or, when that is not a full trading day (a holiday, or only a special
session such as Diwali's Muhurat hour), on the trading day before it. NSE, BSE and OCC all
word it this way ("if the expiry day is a trading holiday, the previous trading day").

Expiries are computed per (rule set, nominal year) and memoised.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from typing import Literal, NamedTuple

from quantdesk.marketdata.calendars.errors import (
    CalendarDataUnavailable,
    ExpiryRulesUnavailable,
    UnknownExchange,
)
from quantdesk.marketdata.calendars.expiry_rules import (
    ANY_UNDERLYING,
    COVERAGE,
    DEFAULT_EXCHANGE,
    EXPIRY_EXCHANGES,
    Coverage,
    ExpiryRule,
    Market,
    rules_for,
)
from quantdesk.marketdata.calendars.models import Expiry, ExpiryKind
from quantdesk.marketdata.calendars.official import registry_version
from quantdesk.marketdata.calendars.sessions import ExchangeCalendar, get_calendar, require_date
from quantdesk.platform.exceptions import InvalidInput, NotFound

ExpiryFilter = Literal["all", "weekly", "monthly"]

# A rolled expiry lands at most a few days before its nominal day; looking one week past
# ``to_date`` catches nominal days after the range whose expiry rolls back into it.
_ROLL_LOOKAHEAD = dt.timedelta(days=7)
_SEARCH_WINDOW = dt.timedelta(days=62)


class _Scheduled(NamedTuple):
    nominal: dt.date
    expiry: Expiry


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _rule_at(rules: tuple[ExpiryRule, ...], period_start: dt.date) -> ExpiryRule | None:
    return next((r for r in rules if r.covers(period_start)), None)


def _nth_weekday(year: int, month: int, weekday: int, occurrence: int) -> dt.date:
    """The ``occurrence``-th ``weekday`` of a month; -1 is the last one."""
    days_in_month = calendar.monthrange(year, month)[1]
    if occurrence == -1:
        last = dt.date(year, month, days_in_month)
        return last - dt.timedelta(days=(last.weekday() - weekday) % 7)
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (occurrence - 1))


def _monthly_nominal(market: Market, key: str, year: int, month: int) -> dt.date | None:
    rule = _rule_at(rules_for(market, key, "monthly"), dt.date(year, month, 1))
    return None if rule is None else _nth_weekday(year, month, rule.weekday, rule.occurrence)


def _dated(cal: ExchangeCalendar, nominal: dt.date, kind: ExpiryKind) -> Expiry:
    rolled = cal.trading_day_on_or_before(nominal)
    return Expiry(rolled, kind, cal.is_provisional(rolled.year))


def _schedule_for_year(market: Market, key: str, year: int) -> tuple[_Scheduled, ...]:
    # The official lists decide holidays, hence rolled dates: memoise per installed version.
    return _schedule_for_version(market, key, year, registry_version())


@functools.cache
def _schedule_for_version(
    market: Market, key: str, year: int, official_version: int
) -> tuple[_Scheduled, ...]:
    """Every expiry whose *nominal* day falls in ``year``, with its rolled date."""
    del official_version  # part of the cache key only
    cal = get_calendar(COVERAGE[(market, key)].calendar)
    scheduled: list[_Scheduled] = []
    monthly_weeks: set[dt.date] = set()
    # Months of the neighbouring years too: their monthly can share a week with ours.
    for y, m in [(year - 1, 12), *((year, m) for m in range(1, 13)), (year + 1, 1)]:
        nominal = _monthly_nominal(market, key, y, m)
        if nominal is None:
            continue
        monthly_weeks.add(_monday(nominal))
        if nominal.year == year:
            expiry = _dated(cal, nominal, "monthly")
            scheduled.append(_Scheduled(nominal, expiry))
    weekly_rules = rules_for(market, key, "weekly")
    week = _monday(dt.date(year, 1, 1))
    while week.year <= year:
        rule = _rule_at(weekly_rules, week)
        if rule is not None and week not in monthly_weeks:
            nominal = week + dt.timedelta(days=rule.weekday)
            if nominal.year == year:
                expiry = _dated(cal, nominal, "weekly")
                scheduled.append(_Scheduled(nominal, expiry))
        week += dt.timedelta(days=7)
    return tuple(sorted(scheduled, key=lambda s: s.expiry.date))


def _resolve(underlying: str, exchange: str | None) -> tuple[Market, str, Coverage]:
    symbol = underlying.strip().upper()
    if exchange is None:
        if symbol not in DEFAULT_EXCHANGE:
            raise InvalidInput(
                f"Say which exchange {underlying!r} trades on: one of {', '.join(EXPIRY_EXCHANGES)}"
            )
        market = DEFAULT_EXCHANGE[symbol]
    else:
        code = exchange.strip().upper()
        if code not in EXPIRY_EXCHANGES:
            raise UnknownExchange(exchange, tuple(EXPIRY_EXCHANGES))
        market = EXPIRY_EXCHANGES[code]
    key = symbol if (market, symbol) in COVERAGE else ANY_UNDERLYING
    if (market, key) not in COVERAGE:
        raise ExpiryRulesUnavailable(
            f"No expiry rules for {symbol} on {market}", underlying=symbol, exchange=market
        )
    return market, key, COVERAGE[(market, key)]


def _check_covered(coverage: Coverage, symbol: str, day: dt.date) -> None:
    if day < coverage.covered_from:
        raise ExpiryRulesUnavailable(
            f"Expiry rules for {symbol} on {coverage.market} start on {coverage.covered_from}",
            underlying=symbol,
            exchange=coverage.market,
        )


def _wanted(kind: ExpiryFilter) -> frozenset[ExpiryKind]:
    if kind == "all":
        return frozenset({"weekly", "monthly"})
    if kind in ("weekly", "monthly"):
        return frozenset({kind})
    raise InvalidInput(f"kind must be 'all', 'weekly' or 'monthly', not {kind!r}")


def expiries(
    underlying: str,
    from_date: dt.date,
    to_date: dt.date,
    kind: ExpiryFilter = "all",
    exchange: str | None = None,
) -> list[Expiry]:
    """Expiry dates of ``underlying`` in ``[from_date, to_date]``, oldest first.

    ``exchange`` (NSE/NFO, BSE/BFO, US_OPTIONS, SIM) may be left out for the Indian indices.
    A date is ``monthly`` when it is the monthly contract's expiry, else ``weekly``.
    """
    from_date, to_date = require_date(from_date), require_date(to_date)
    market, key, coverage = _resolve(underlying, exchange)
    wanted = _wanted(kind)
    _check_covered(coverage, underlying.strip().upper(), from_date)
    cal = get_calendar(coverage.calendar)
    if to_date.year > cal.last_year:
        # Checked before any date arithmetic: 9999-12-31 plus the look-ahead overflows.
        raise CalendarDataUnavailable(cal.name, to_date.year, cal.first_year, cal.last_year)
    horizon_end = to_date + _ROLL_LOOKAHEAD
    found: list[Expiry] = []
    for year in range(from_date.year, horizon_end.year + 1):
        if year > to_date.year and year > cal.last_year:
            # Expiries nominally in an unpublished year could only roll back into range if
            # every day from 1 January to the nominal day were a holiday; we assume not.
            break
        for item in _schedule_for_year(market, key, year):
            if item.expiry.kind in wanted and from_date <= item.expiry.date <= to_date:
                found.append(item.expiry)
    return sorted(found)


def next_expiry(
    underlying: str,
    on_date: dt.date,
    kind: ExpiryFilter = "all",
    exchange: str | None = None,
) -> Expiry:
    """The first expiry on or after ``on_date`` (a contract is live on its expiry day)."""
    on_date = require_date(on_date)
    market, key, coverage = _resolve(underlying, exchange)
    wanted = _wanted(kind)
    open_ended = any(r.last is None for cycle in wanted for r in rules_for(market, key, cycle))
    last_rule_day = max(
        (r.last for cycle in wanted for r in rules_for(market, key, cycle) if r.last),
        default=coverage.covered_from,
    )
    # Search window by window, but never past the calendar's last year while an answer may
    # still lie inside it (so late December does not fail for want of next year's data).
    data_end = dt.date(get_calendar(coverage.calendar).last_year, 12, 31)
    start = on_date
    while True:
        window_end = start + _SEARCH_WINDOW
        if start <= data_end:
            window_end = min(window_end, data_end)
        found = expiries(underlying, start, window_end, kind, exchange)
        if found:
            return found[0]
        # Past the last row of a discontinued cycle there is nothing left to find.
        if not open_ended and start > last_rule_day + _SEARCH_WINDOW:
            raise NotFound(f"{underlying} has no {kind} expiry on or after {on_date}")
        start = window_end + dt.timedelta(days=1)


def monthly_expiry(underlying: str, year: int, month: int, exchange: str | None = None) -> dt.date:
    """The monthly contract's expiry date for ``year``-``month``."""
    if not 1 <= month <= 12:
        raise InvalidInput(f"month must be 1-12, not {month}")
    market, key, coverage = _resolve(underlying, exchange)
    nominal = _monthly_nominal(market, key, year, month)
    symbol = underlying.strip().upper()
    if nominal is None:
        raise ExpiryRulesUnavailable(
            f"No monthly expiry rule for {symbol} in {year}-{month:02d}",
            underlying=symbol,
            exchange=market,
        )
    _check_covered(coverage, symbol, nominal)
    return get_calendar(coverage.calendar).trading_day_on_or_before(nominal)
