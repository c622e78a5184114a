"""Reading analytics inputs from the market-data layer: spots, quotes, time to expiry."""

from __future__ import annotations

import datetime as dt
import math
from decimal import ROUND_HALF_EVEN, Decimal
from decimal import Context as DecimalContext
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.analytics.daycount import SECONDS_PER_YEAR
from quantdesk.marketdata.calendars import CalendarDataUnavailable, get_calendar
from quantdesk.marketdata.domain import Exchange, Quote
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.instruments.underlyings import NO_LISTED_SPOT, spot_candidates
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.decimals import at_places, places_of, quantum
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.platform.json_columns import model_input

# Default risk-free rates by currency when the caller gives none: roughly the 91-day T-bill
# yields (India ~6.5%, US ~4.5%); pass ``r`` to use your own curve point.
DEFAULT_RATES = {"INR": 0.065, "USD": 0.045}

# Exact arithmetic for mids whatever the digits (the default context keeps 28); rounding
# half-even, as every rounding on the wire.
_WIDE = DecimalContext(prec=60, rounding=ROUND_HALF_EVEN)


def calendar_name(exchange: Exchange) -> str:
    return "US_OPTIONS" if exchange is Exchange.OPRA else exchange.value


_IST = ZoneInfo("Asia/Kolkata")

# Regular closes, used when the calendar package has no data for the expiry's year yet: the
# expiry date itself comes from the exchange's contract file, only the hour is needed here.
# MCX: its winter close; within the calendar's years the day's own session decides.
REGULAR_CLOSE = {
    Exchange.NFO: (dt.time(15, 30), _IST),
    Exchange.BSE: (dt.time(15, 30), _IST),
    Exchange.BFO: (dt.time(15, 30), _IST),
    Exchange.MCX: (dt.time(23, 55), _IST),
    Exchange.OPRA: (dt.time(16, 0), ZoneInfo("America/New_York")),
}

# Contracts whose last trading day ends before the session does: currency futures and
# options stop trading at 12:30 IST on their last trading day (NSE contract specifications
# for INR pairs and cross-currency pairs: "Last trading day ... at 12:30 pm"; BSE's BCD
# contracts mirror them), while the rest of the segment trades on to 17:00.
EXPIRY_CUTOFF = {
    Exchange.CDS: (dt.time(12, 30), _IST),
    Exchange.BCD: (dt.time(12, 30), _IST),
}


def expiry_close(exchange: Exchange, expiry: dt.date) -> dt.datetime:
    """When the contract settles: the close of its expiry day's (last) session, or the
    exchange's expiry cut-off (12:30 IST for currency derivatives).  MCX options and futures
    trade to the end of their expiry day's session (23:30 or 23:55 IST)."""
    if exchange in EXPIRY_CUTOFF:
        at, zone = EXPIRY_CUTOFF[exchange]
        return dt.datetime.combine(expiry, at, tzinfo=zone).astimezone(dt.UTC)
    try:
        sessions = get_calendar(calendar_name(exchange)).sessions_on(expiry)
    except CalendarDataUnavailable:
        sessions = ()
    if sessions:
        return max(session.close_utc for session in sessions)
    at, zone = REGULAR_CLOSE.get(exchange, (dt.time(16, 0), ZoneInfo("UTC")))
    return dt.datetime.combine(expiry, at, tzinfo=zone).astimezone(dt.UTC)


def years_to_expiry(exchange: Exchange, expiry: dt.date, now: dt.datetime) -> float:
    """ACT/365 year fraction from ``now`` to the expiry session's close (the settlement time)."""
    close = expiry_close(exchange, expiry)
    seconds = (close - now).total_seconds()
    if seconds <= 0:
        raise InvalidInput(f"the {expiry} expiry has already settled")
    return seconds / SECONDS_PER_YEAR


def mark_price(quote: Quote | None, places: int) -> Decimal | None:
    """The price to value an option at, exactly: mid of a two-sided market, else the last
    trade.  A mid can fall between ticks (bid 10.05, ask 10.10 -> 10.075); it is rounded
    half-even to the tick's decimal places (10.08), the precision the chain answers in."""
    if quote is None:
        return None
    if quote.bid is not None and quote.ask is not None and quote.bid > 0 and quote.ask > 0:
        mid = _WIDE.divide(_WIDE.add(quote.bid, quote.ask), 2)
        at = max(places, places_of(quote.bid), places_of(quote.ask))
        return _WIDE.quantize(mid, quantum(at))
    return at_places(quote.last, places)


def number(value: Decimal | None) -> float:
    return math.nan if value is None else model_input(value)


async def spot_quote(
    session: AsyncSession,
    quotes: QuoteService,
    root: str,
    exchange: Exchange,
    expiry: dt.date | None = None,
) -> Quote:
    """The latest quote of the instrument ``root``'s derivatives follow.

    MCX and currency derivatives have no cash instrument: they follow the near future, the
    first to expire on or after ``expiry`` (default: today, IST).  The near future's basis
    to itself is then zero, and an option on a later month's future is valued off the near
    one (a documented approximation: the chain API names the key it used)."""
    if exchange in NO_LISTED_SPOT:
        on_or_after = expiry or dt.datetime.now(_IST).date()
        future = await InstrumentService(session).near_future(root, exchange, on_or_after)
        if future is None:
            raise NotFound(f"no listed {exchange.value} future on {root} to value it from")
        found = await quotes.get_many([future.key])
        if future.key not in found:
            raise InvalidInput(f"no quote yet for {future.key}; cannot value {root} derivatives")
        return found[future.key]
    candidates = spot_candidates(root, exchange)
    found = await quotes.get_many(candidates)
    for key in candidates:
        if key in found:
            return found[key]
    known = await InstrumentService(session).get_rows(candidates)
    if not known:
        raise NotFound(f"no spot instrument for {root} (looked for {', '.join(candidates)})")
    raise InvalidInput(f"no quote yet for {next(iter(known))}; cannot value {root} derivatives")


def is_live(exchange: Exchange, expiry: dt.date, now: dt.datetime) -> bool:
    """Not yet settled: on its expiry day a contract lives until that day's close."""
    return expiry_close(exchange, expiry) > now


async def upcoming_expiries(
    session: AsyncSession, root: str, now: dt.datetime, exchange: Exchange | None = None
) -> list[dt.date]:
    """Expiries of ``root``'s listed derivatives from today on (today's may have settled)."""
    upcoming = await InstrumentService(session).expiries(root, since=now.date(), exchange=exchange)
    if not upcoming:
        raise NotFound(f"no listed expiries for {root} from {now.date()} on")
    return upcoming
