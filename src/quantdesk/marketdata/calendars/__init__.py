"""Exchange calendars and derivative expiry dates (pure: no web, no database).

>>> import datetime
>>> from quantdesk.marketdata.calendars import get_calendar
>>> nse = get_calendar("NSE")
>>> nse.is_trading_day(datetime.date(2024, 1, 26))   # Republic Day
False

Sessions and holidays come from ``pandas_market_calendars`` and ``exchange_calendars``
plus our overrides table; expiry dates from the rule table in :mod:`.expiry_rules`. See
docs/calendars.md for sources and data horizons.
"""

from quantdesk.marketdata.calendars.errors import (
    CalendarDataUnavailable,
    ExpiryRulesUnavailable,
    UnknownExchange,
)
from quantdesk.marketdata.calendars.expiry_dates import (
    ExpiryFilter,
    expiries,
    monthly_expiry,
    next_expiry,
)
from quantdesk.marketdata.calendars.models import (
    Expiry,
    ExpiryKind,
    Holiday,
    MarketStatus,
    Session,
    SessionKind,
)
from quantdesk.marketdata.calendars.sessions import (
    EXCHANGE_ALIASES,
    ExchangeCalendar,
    get_calendar,
)

__all__ = [
    "EXCHANGE_ALIASES",
    "CalendarDataUnavailable",
    "ExchangeCalendar",
    "Expiry",
    "ExpiryFilter",
    "ExpiryKind",
    "ExpiryRulesUnavailable",
    "Holiday",
    "MarketStatus",
    "Session",
    "SessionKind",
    "UnknownExchange",
    "expiries",
    "get_calendar",
    "monthly_expiry",
    "next_expiry",
]
