"""Our own session data for what the calendar packages miss, kept as tables.

Hand-written because no maintained package has it:

* Indian sessions on a Saturday or Sunday (Union Budget days, the 2024-01-20 make-up day,
  the 2024 disaster-recovery drills, Muhurat sessions that fell on a weekend). Both packages
  build sessions from a Monday-Friday week mask, so they cannot hold these at all.
* BSE's Muhurat sessions (exchange_calendars' XBOM lists Diwali only as a holiday).
* NSE's weekday Muhurat sessions, which mcal does model: we repeat them here so that the one
  table marks every Muhurat session as ``special`` (a symbolic session; the exchange lists
  the day as a trading holiday). tests/ check our times equal mcal's.
* Names of Indian holidays and of US ad-hoc closures (the packages keep them unnamed).
* MCX's evening sessions on NSE/BSE trading holidays (MCX closes only its morning session
  on most of them) and its New Year's Day without an evening session.

An entry replaces whatever the package says about that exchange and date. Times are
exchange-local (IST for NSE and BSE); they become UTC when the calendar is built.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from quantdesk.marketdata.calendars.models import SessionKind
from quantdesk.marketdata.calendars.sources import MCX_HOURS, SOURCES

_INDIA = ("NSE", "BSE")
_MUHURAT = "Muhurat trading (Diwali)"
_BUDGET = "Union Budget special session"
_FULL_DAY = ((dt.time(9, 15), dt.time(15, 30)),)
# NSE/BSE DR drills: first session from the primary site, the second from the disaster-
# recovery site after a switch-over (SEBI BCP/DR framework,
# circular SEBI/HO/MRD/DMS1/CIR/P/2019/43).
_DR_DRILL = ((dt.time(9, 15), dt.time(10, 0)), (dt.time(11, 30), dt.time(12, 30)))


@dataclass(frozen=True, slots=True)
class SessionOverride:
    """The sessions one or more exchanges held on ``date``, replacing the package's view."""

    exchanges: tuple[str, ...]
    date: dt.date
    segments: tuple[tuple[dt.time, dt.time], ...]
    kind: SessionKind
    name: str
    source: str


def _muhurat(
    day: str, opens: str, closes: str, source: str, exchanges: tuple[str, ...] = _INDIA
) -> SessionOverride:
    segment = ((dt.time.fromisoformat(opens), dt.time.fromisoformat(closes)),)
    return SessionOverride(
        exchanges, dt.date.fromisoformat(day), segment, "special", _MUHURAT, source
    )


_MCAL_NSE = "pandas_market_calendars 5.5 NSE special opens/closes (curated from NSE circulars)"
# MCX's holiday list for 2025 (trading holidays for the commodity derivatives segment, as
# reproduced by Rupeezy's "MCX Holidays 2025" table; 2025-02-26 also by UNA, 17:00-23:55).
_MCX_2025 = "MCX trading holidays 2025 (morning/evening sessions), via rupeezy.in/mcx-holiday"
# MCX's evening session starts when its morning session would have ended.
_MCX_EVENING_OPEN = dt.time(17, 0)


def _mcx_evening(day: str, holiday: str) -> SessionOverride:
    """An NSE/BSE holiday on which MCX trades its evening session only (until its usual
    close, 23:30 or 23:55 with the US daylight-saving time)."""
    date = dt.date.fromisoformat(day)
    _, closes = SOURCES["MCX"].hours_on(date)
    return SessionOverride(
        ("MCX",),
        date,
        ((_MCX_EVENING_OPEN, closes),),
        "regular",
        f"Evening session only ({holiday})",
        _MCX_2025,
    )


SESSION_OVERRIDES: tuple[SessionOverride, ...] = (
    # --- NSE weekday Muhurat sessions also present in mcal (times must match mcal's) -------
    _muhurat("1998-10-19", "17:28", "19:29", _MCAL_NSE, ("NSE",)),
    _muhurat("2000-10-26", "18:30", "19:45", _MCAL_NSE, ("NSE",)),
    _muhurat("2001-11-14", "17:00", "18:15", _MCAL_NSE, ("NSE",)),
    _muhurat("2002-11-04", "17:00", "18:15", _MCAL_NSE, ("NSE",)),
    _muhurat("2004-11-12", "17:30", "18:45", _MCAL_NSE, ("NSE",)),
    _muhurat("2005-11-01", "18:05", "19:20", _MCAL_NSE, ("NSE",)),
    _muhurat("2007-11-09", "18:00", "19:00", _MCAL_NSE, ("NSE",)),
    _muhurat("2008-10-28", "18:15", "19:15", _MCAL_NSE, ("NSE",)),
    _muhurat("2010-11-05", "18:15", "19:15", _MCAL_NSE, ("NSE",)),
    _muhurat("2011-10-26", "16:45", "18:00", _MCAL_NSE, ("NSE",)),
    _muhurat("2012-11-13", "15:45", "17:00", _MCAL_NSE, ("NSE",)),
    _muhurat("2014-10-23", "18:30", "19:30", _MCAL_NSE, ("NSE",)),
    _muhurat("2015-11-11", "17:45", "18:45", _MCAL_NSE, ("NSE",)),
    _muhurat("2017-10-19", "18:30", "19:30", _MCAL_NSE, ("NSE",)),
    _muhurat("2018-11-07", "17:30", "18:30", _MCAL_NSE, ("NSE",)),
    # --- Muhurat sessions of both exchanges (same hours at NSE and BSE) ---------------------
    _muhurat(
        "2019-10-27", "18:15", "19:15", "Sunday; NSE/BSE circulars via Moneycontrol 2019-10-22"
    ),
    _muhurat("2020-11-14", "18:15", "19:15", "Saturday; NSE timings table via NDTV 2020-11-14"),
    _muhurat("2021-11-04", "18:15", "19:15", "NSE/BSE circulars via Indian Express 2021-11-04"),
    _muhurat("2022-10-24", "18:15", "19:15", "NSE/BSE circulars via Mint 2022-10-24"),
    # 2023: press quoting "6 pm to 7:15 pm" counts the 18:00-18:08 pre-open; normal market
    # was 18:15-19:15 (exchange timings table reproduced by Angel One).
    _muhurat("2023-11-12", "18:15", "19:15", "Sunday; NSE/BSE circulars, Oct 2023"),
    _muhurat("2024-11-01", "18:00", "19:00", "NSE/BSE circulars; also in mcal NSE"),
    _muhurat("2025-10-21", "13:45", "14:45", "NSE/BSE circulars Oct 2025; also in mcal NSE"),
    # --- MCX 2025: evening sessions on NSE/BSE holidays; New Year's Day without one --------
    SessionOverride(
        ("MCX",),
        dt.date(2025, 1, 1),
        ((MCX_HOURS[0], _MCX_EVENING_OPEN),),
        "early_close",
        "New Year's Day (morning session only)",
        _MCX_2025,
    ),
    _mcx_evening("2025-02-26", "Mahashivratri"),
    _mcx_evening("2025-03-14", "Holi"),
    _mcx_evening("2025-03-31", "Id-Ul-Fitr (Ramadan Eid)"),
    _mcx_evening("2025-04-10", "Shri Mahavir Jayanti"),
    _mcx_evening("2025-04-14", "Dr. Baba Saheb Ambedkar Jayanti"),
    _mcx_evening("2025-05-01", "Maharashtra Day"),
    _mcx_evening("2025-08-27", "Shri Ganesh Chaturthi"),
    _mcx_evening("2025-10-22", "Diwali Balipratipada"),
    _mcx_evening("2025-11-05", "Prakash Gurpurb Sri Guru Nanak Dev"),
    # --- Weekend full sessions: normal hours, normal trading days ---------------------------
    SessionOverride(
        _INDIA,
        dt.date(2015, 2, 28),
        _FULL_DAY,
        "regular",
        _BUDGET,
        "Saturday budget; cited by NSE's 2025 budget-day circular coverage (Business Standard)",
    ),
    SessionOverride(
        _INDIA,
        dt.date(2020, 2, 1),
        _FULL_DAY,
        "regular",
        _BUDGET,
        "Saturday budget; cited by NSE's 2025 budget-day circular coverage (Business Standard)",
    ),
    SessionOverride(
        _INDIA,
        dt.date(2024, 1, 20),
        _FULL_DAY,
        "regular",
        "Full trading session (Saturday)",
        "NSE press release 2024-01-19: DR drill converted to a full session; 2024-01-22 holiday",
    ),
    SessionOverride(
        _INDIA,
        dt.date(2025, 2, 1),
        _FULL_DAY,
        "regular",
        _BUDGET,
        "Saturday budget; NSE and BSE circulars Dec 2024 (Rediff 2024-12-23)",
    ),
    SessionOverride(
        _INDIA,
        dt.date(2026, 2, 1),
        _FULL_DAY,
        "regular",
        _BUDGET,
        "Sunday budget; NSE and BSE circulars 2026-01-16 (Business Standard)",
    ),
    # --- Weekend disaster-recovery drills: two short live sessions, not trading days --------
    SessionOverride(
        _INDIA,
        dt.date(2024, 3, 2),
        _DR_DRILL,
        "special",
        "Special live session (DR drill)",
        "NSE circular 2024-02-14 (Mint 2024-03-01); BSE held the same sessions",
    ),
    # A few reports of the May drill quote 11:45-12:40 for the DR session; the exchange
    # timing tables reproduced by NDTV Profit and Zee give 11:30-12:30 for cash and F&O.
    SessionOverride(
        _INDIA,
        dt.date(2024, 5, 18),
        _DR_DRILL,
        "special",
        "Special live session (DR drill)",
        "NSE circular 2024-05-07 (NDTV Profit, Zee Business)",
    ),
)


def _named(days: Mapping[str, str], exchanges: tuple[str, ...]) -> dict[tuple[str, dt.date], str]:
    return {(ex, dt.date.fromisoformat(d)): name for d, name in days.items() for ex in exchanges}


# NSE and BSE trading-holiday circulars for 2024-2026 (NSE/CMTR circular 59917 of
# 2023-12-26 and its 2025 and 2026 successors); NSE and BSE closed on the same days.
_INDIA_HOLIDAYS = {
    "2024-01-22": "Special holiday (Ram Mandir Pran Pratishtha)",
    "2024-01-26": "Republic Day",
    "2024-03-08": "Mahashivratri",
    "2024-03-25": "Holi",
    "2024-03-29": "Good Friday",
    "2024-04-11": "Id-Ul-Fitr (Ramadan Eid)",
    "2024-04-17": "Shri Ram Navami",
    "2024-05-01": "Maharashtra Day",
    "2024-05-20": "General Parliamentary Elections",
    "2024-06-17": "Bakri Id",
    "2024-07-17": "Moharram",
    "2024-08-15": "Independence Day",
    "2024-10-02": "Mahatma Gandhi Jayanti",
    "2024-11-01": "Diwali Laxmi Pujan",
    "2024-11-15": "Gurunanak Jayanti",
    "2024-11-20": "Maharashtra Assembly Elections",
    "2024-12-25": "Christmas",
    "2025-02-26": "Mahashivratri",
    "2025-03-14": "Holi",
    "2025-03-31": "Id-Ul-Fitr (Ramadan Eid)",
    "2025-04-10": "Shri Mahavir Jayanti",
    "2025-04-14": "Dr. Baba Saheb Ambedkar Jayanti",
    "2025-04-18": "Good Friday",
    "2025-05-01": "Maharashtra Day",
    "2025-08-15": "Independence Day",
    "2025-08-27": "Shri Ganesh Chaturthi",
    "2025-10-02": "Mahatma Gandhi Jayanti / Dussehra",
    "2025-10-21": "Diwali Laxmi Pujan",
    "2025-10-22": "Diwali Balipratipada",
    "2025-11-05": "Prakash Gurpurb Sri Guru Nanak Dev",
    "2025-12-25": "Christmas",
    "2026-01-15": "Maharashtra Municipal Corporation Elections",
    "2026-01-26": "Republic Day",
    "2026-03-03": "Holi",
    "2026-03-26": "Shri Ram Navami",
    "2026-03-31": "Shri Mahavir Jayanti",
    "2026-04-03": "Good Friday",
    "2026-04-14": "Dr. Baba Saheb Ambedkar Jayanti",
    "2026-05-01": "Maharashtra Day",
    "2026-05-28": "Bakri Id",
    "2026-06-26": "Muharram",
    "2026-09-14": "Ganesh Chaturthi",
    "2026-10-02": "Mahatma Gandhi Jayanti",
    "2026-10-20": "Dussehra",
    "2026-11-10": "Diwali Balipratipada",
    "2026-11-24": "Prakash Gurpurb Sri Guru Nanak Dev",
    "2026-12-25": "Christmas",
}

# US unscheduled closures since 1990 (NYSE "historical closings"; the packages list the
# dates, unnamed).
_US_CLOSURES = {
    "1994-04-27": "National Day of Mourning (President Richard Nixon)",
    "2001-09-11": "September 11 attacks",
    "2001-09-12": "September 11 attacks",
    "2001-09-13": "September 11 attacks",
    "2001-09-14": "September 11 attacks",
    "2004-06-11": "National Day of Mourning (President Ronald Reagan)",
    "2007-01-02": "National Day of Mourning (President Gerald Ford)",
    "2012-10-29": "Hurricane Sandy",
    "2012-10-30": "Hurricane Sandy",
    "2018-12-05": "National Day of Mourning (President George H. W. Bush)",
    "2025-01-09": "National Day of Mourning (President Jimmy Carter)",
}

HOLIDAY_NAMES: Mapping[tuple[str, dt.date], str] = {
    **_named(_INDIA_HOLIDAYS, _INDIA),
    **_named(_US_CLOSURES, ("NYSE", "NASDAQ")),
}


def overrides_for(exchange: str, year: int) -> tuple[SessionOverride, ...]:
    """The overrides that apply to ``exchange`` in calendar year ``year``."""
    return tuple(
        entry
        for entry in SESSION_OVERRIDES
        if exchange in entry.exchanges and entry.date.year == year
    )
