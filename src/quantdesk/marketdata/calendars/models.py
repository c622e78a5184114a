"""Value types of the calendar API: sessions, holidays, market status, expiries.

All datetimes are timezone-aware UTC; a ``Session.date`` is the exchange-local trading date.
``provisional`` marks what was built from rules and a maintained holiday source because the
exchange has not published (or we have not imported) its official list for that year: it
may still change when the list arrives.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, NamedTuple

SessionKind = Literal["regular", "early_close", "special"]
"""``regular``: the exchange's normal hours (also on a weekend day the exchange opened for a
full session, e.g. India's Union Budget Saturdays). ``early_close``: a scheduled short day
(NYSE half days). ``special``: a session outside the business-day calendar, such as NSE's
one-hour Diwali Muhurat session or a disaster-recovery drill; the day is not a trading day."""

ExpiryKind = Literal["weekly", "monthly"]

TRADING_DAY_KINDS: frozenset[SessionKind] = frozenset({"regular", "early_close"})


@dataclass(frozen=True, slots=True)
class Session:
    """One continuous trading window. A day may hold several (a halt splits it in two)."""

    date: dt.date
    open_utc: dt.datetime
    close_utc: dt.datetime
    kind: SessionKind
    name: str | None = None
    provisional: bool = False

    def contains(self, at: dt.datetime) -> bool:
        """Open at ``at``? The window is half-open: trading stops at the close instant."""
        return self.open_utc <= at < self.close_utc


class Holiday(NamedTuple):
    """A weekday without a full trading session, with its name when a source gives one."""

    date: dt.date
    name: str | None
    provisional: bool = False


class Expiry(NamedTuple):
    """The last trading day of a derivatives contract series."""

    date: dt.date
    kind: ExpiryKind
    provisional: bool = False


@dataclass(frozen=True, slots=True)
class MarketStatus:
    """Whether ``exchange`` is open at ``at``, and when it next opens and closes."""

    exchange: str
    at: dt.datetime
    is_open: bool
    session: Session | None
    next_open: dt.datetime
    next_close: dt.datetime
