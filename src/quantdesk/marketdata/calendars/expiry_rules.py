"""Derivative expiry rules as data: which weekday each contract cycle expires on, and when.

Hand-written because no calendar package models expiry cycles, and the Indian rules change
by exchange circular every year or two. Each row covers one period of one cycle:

* a *monthly* row covers the months from ``first`` to ``last`` (first days of months); the
  nominal expiry is the ``occurrence``-th ``weekday`` of the month (-1: the last one);
* a *weekly* row covers the weeks whose Monday is between ``first`` and ``last``; the
  nominal expiry is that week's ``weekday``. No weekly expires in the week that holds the
  monthly expiry: the monthly contract is that week's contract (NSE: "weekly contracts ...
  excluding the expiry week of the monthly contract"; the same on BSE and for US Weeklys).

Periods are chosen so a contract's expiry is decided by the rule in force for its expiry
week or month: when NSE moved days, it re-dated open contracts as well (circulars below).
``None`` as ``last`` means "until further notice". Before an underlying's ``covered_from``
we hold no rules and say so rather than return an incomplete list.

Holiday rolling is not here: it is one rule for all rows (the nominal day, or the trading
day before it) applied in :mod:`.expiry_dates` with the exchange calendar.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from quantdesk.marketdata.calendars.models import ExpiryKind

Market = Literal["NSE", "BSE", "US", "SIM"]

ANY_UNDERLYING = "*"
"""Row key for "every other underlying" of a market (NSE stock derivatives, US options)."""

MON, TUE, WED, THU, FRI = range(5)
LAST = -1


@dataclass(frozen=True, slots=True)
class ExpiryRule:
    market: Market
    underlying: str
    cycle: ExpiryKind
    weekday: int
    first: dt.date
    last: dt.date | None
    source: str
    occurrence: int = LAST

    def covers(self, period_start: dt.date) -> bool:
        """Does this row apply to the week (its Monday) or month (its 1st) given?"""
        return self.first <= period_start and (self.last is None or period_start <= self.last)


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# Sources (circulars as reported; see docs/calendars.md for the list with links):
_SEBI_2025 = "SEBI/HO/MRD/TPD-1/P/CIR/2025/76 (2025-05-26); NSE circulars 2025-06-17, 2025-06-23"
_NSE_2025_01 = "NSE circular 2024-11-29: all monthly index contracts on last Thursday from 2025-01"
_BSE_2023 = (
    "BSE notice 2023-03-28: Sensex contracts relaunched 2023-05-15 with Friday expiry (weekly;"
    " monthly on the last Friday); the last Friday weekly expired 2025-01-03"
)
_WEEKLY_END = "SEBI 2024-10-01 one weekly index per exchange; NSE circular 2024-10-10"

EXPIRY_RULES: tuple[ExpiryRule, ...] = (
    # --- NIFTY 50 -------------------------------------------------------------------------
    ExpiryRule(
        "NSE",
        "NIFTY",
        "monthly",
        THU,
        _d("2000-06-01"),
        _d("2025-08-01"),
        "NSE index F&O since June 2000: last Thursday of the month",
    ),
    ExpiryRule("NSE", "NIFTY", "monthly", TUE, _d("2025-09-01"), None, _SEBI_2025),
    ExpiryRule(
        "NSE",
        "NIFTY",
        "weekly",
        THU,
        _d("2019-02-11"),
        _d("2025-08-25"),
        "NSE press release 2018-12-18; weekly options traded from 2019-02-11",
    ),
    ExpiryRule(
        "NSE",
        "NIFTY",
        "weekly",
        TUE,
        _d("2025-09-01"),
        None,
        _SEBI_2025 + "; first Tuesday weekly 2025-09-02",
    ),
    # --- NIFTY BANK -----------------------------------------------------------------------
    ExpiryRule(
        "NSE",
        "BANKNIFTY",
        "monthly",
        THU,
        _d("2005-06-01"),
        _d("2024-02-01"),
        "Bank Nifty F&O since June 2005: last Thursday",
    ),
    ExpiryRule(
        "NSE",
        "BANKNIFTY",
        "monthly",
        WED,
        _d("2024-03-01"),
        _d("2024-12-01"),
        "NSE circular 2023-12-28: last Wednesday from trade date 2024-03-01",
    ),
    ExpiryRule(
        "NSE", "BANKNIFTY", "monthly", THU, _d("2025-01-01"), _d("2025-08-01"), _NSE_2025_01
    ),
    ExpiryRule("NSE", "BANKNIFTY", "monthly", TUE, _d("2025-09-01"), None, _SEBI_2025),
    ExpiryRule(
        "NSE",
        "BANKNIFTY",
        "weekly",
        THU,
        _d("2016-05-30"),
        _d("2023-08-28"),
        "NSE weekly Bank Nifty options listed from 2016-05-27",
    ),
    ExpiryRule(
        "NSE",
        "BANKNIFTY",
        "weekly",
        WED,
        _d("2023-09-04"),
        _d("2024-11-11"),
        "NSE circular 2023-07-12 (first Wednesday 2023-09-06); last weekly 2024-11-13, "
        + _WEEKLY_END,
    ),
    # --- NIFTY FINANCIAL SERVICES ---------------------------------------------------------
    ExpiryRule(
        "NSE",
        "FINNIFTY",
        "monthly",
        THU,
        _d("2021-01-01"),
        _d("2021-09-01"),
        "NSE press release 2020-12-10: launched 2021-01-11, last Thursday",
    ),
    ExpiryRule(
        "NSE",
        "FINNIFTY",
        "monthly",
        TUE,
        _d("2021-10-01"),
        _d("2024-12-01"),
        "NSE circular 2021-10-13: Tuesday expiry from trade date 2021-10-18",
    ),
    ExpiryRule("NSE", "FINNIFTY", "monthly", THU, _d("2025-01-01"), _d("2025-08-01"), _NSE_2025_01),
    ExpiryRule("NSE", "FINNIFTY", "monthly", TUE, _d("2025-09-01"), None, _SEBI_2025),
    ExpiryRule(
        "NSE",
        "FINNIFTY",
        "weekly",
        THU,
        _d("2021-01-11"),
        _d("2021-10-11"),
        "NSE press release 2020-12-10: Thursday of the expiring week",
    ),
    ExpiryRule(
        "NSE",
        "FINNIFTY",
        "weekly",
        TUE,
        _d("2021-10-18"),
        _d("2024-11-18"),
        "NSE circular 2021-10-13 (first Tuesday 2021-10-19); last weekly 2024-11-19, "
        + _WEEKLY_END,
    ),
    # --- NIFTY MIDCAP SELECT (rules before the Monday switch are not encoded) --------------
    ExpiryRule(
        "NSE",
        "MIDCPNIFTY",
        "monthly",
        MON,
        _d("2023-08-01"),
        _d("2024-12-01"),
        "NSE circular 2023-07-12: weekly and monthly on Monday, first 2023-08-21",
    ),
    ExpiryRule(
        "NSE", "MIDCPNIFTY", "monthly", THU, _d("2025-01-01"), _d("2025-08-01"), _NSE_2025_01
    ),
    ExpiryRule("NSE", "MIDCPNIFTY", "monthly", TUE, _d("2025-09-01"), None, _SEBI_2025),
    ExpiryRule(
        "NSE",
        "MIDCPNIFTY",
        "weekly",
        MON,
        _d("2023-08-21"),
        _d("2024-11-18"),
        "NSE circular 2023-07-12; last weekly 2024-11-18, " + _WEEKLY_END,
    ),
    # --- NIFTY NEXT 50 (last Friday before 2025; not encoded) ------------------------------
    ExpiryRule(
        "NSE", "NIFTYNXT50", "monthly", THU, _d("2025-01-01"), _d("2025-08-01"), _NSE_2025_01
    ),
    ExpiryRule("NSE", "NIFTYNXT50", "monthly", TUE, _d("2025-09-01"), None, _SEBI_2025),
    # --- NSE single-stock derivatives: monthly only ----------------------------------------
    ExpiryRule(
        "NSE",
        ANY_UNDERLYING,
        "monthly",
        THU,
        _d("2001-07-01"),
        _d("2025-08-01"),
        "NSE stock options since July 2001: last Thursday",
    ),
    ExpiryRule("NSE", ANY_UNDERLYING, "monthly", TUE, _d("2025-09-01"), None, _SEBI_2025),
    # --- BSE SENSEX: relaunched 2023-05-15 with Friday expiries --------------------------
    ExpiryRule(
        "BSE",
        "SENSEX",
        "monthly",
        FRI,
        _d("2023-05-01"),
        _d("2024-12-01"),
        _BSE_2023,
    ),
    ExpiryRule("BSE", "SENSEX", "weekly", FRI, _d("2023-05-15"), _d("2024-12-30"), _BSE_2023),
    ExpiryRule(
        "BSE",
        "SENSEX",
        "monthly",
        TUE,
        _d("2025-01-01"),
        _d("2025-08-01"),
        "BSE notice 2024-11-28: last Tuesday for contracts expiring after 2025-01-03",
    ),
    ExpiryRule("BSE", "SENSEX", "monthly", THU, _d("2025-09-01"), None, _SEBI_2025),
    ExpiryRule(
        "BSE",
        "SENSEX",
        "weekly",
        TUE,
        _d("2025-01-06"),
        _d("2025-08-25"),
        "BSE notice 2024-11-28: Tuesday weekly expiry from January 2025",
    ),
    ExpiryRule(
        "BSE",
        "SENSEX",
        "weekly",
        THU,
        _d("2025-09-01"),
        None,
        _SEBI_2025 + "; first Thursday weekly 2025-09-04",
    ),
    # --- US listed options ------------------------------------------------------------------
    # Standard monthlies: last trading day is the third Friday (until Feb 2015 the formal
    # expiration was the Saturday after it; trading still ended on the Friday).
    ExpiryRule(
        "US",
        ANY_UNDERLYING,
        "monthly",
        FRI,
        _d("1990-01-01"),
        None,
        "OCC standard expiration: third Friday of the month",
        occurrence=3,
    ),
    # Friday Weeklys (CBOE, from October 2005). Which symbols list them is a per-symbol
    # listing decision held in the instrument master; this is the cycle only.
    ExpiryRule(
        "US",
        ANY_UNDERLYING,
        "weekly",
        FRI,
        _d("2005-10-31"),
        None,
        "CBOE Weeklys: Friday expirations, none in the standard-expiration week",
    ),
    # --- SIM, quantdesk's simulated exchange ------------------------------------------------
    # NSE's classic pattern, kept fixed: weekly on Thursdays, monthly on the month's last
    # Thursday (no weekly in that week).  SIM is open every day, so nothing ever rolls.
    ExpiryRule(
        "SIM",
        ANY_UNDERLYING,
        "monthly",
        THU,
        _d("2000-01-01"),
        None,
        "quantdesk SIM: last Thursday of the month (docs/market-data.md)",
    ),
    ExpiryRule(
        "SIM",
        ANY_UNDERLYING,
        "weekly",
        THU,
        _d("1999-12-27"),
        None,
        "quantdesk SIM: every Thursday outside the monthly expiry's week",
    ),
)


@dataclass(frozen=True, slots=True)
class Coverage:
    """From when we hold complete rules for an underlying, and which calendar rolls them."""

    market: Market
    underlying: str
    covered_from: dt.date
    calendar: str


COVERAGE: Mapping[tuple[Market, str], Coverage] = {
    (c.market, c.underlying): c
    for c in (
        Coverage("NSE", "NIFTY", _d("2000-06-12"), "NSE"),
        Coverage("NSE", "BANKNIFTY", _d("2005-06-13"), "NSE"),
        Coverage("NSE", "FINNIFTY", _d("2021-01-11"), "NSE"),
        Coverage("NSE", "MIDCPNIFTY", _d("2023-08-21"), "NSE"),
        Coverage("NSE", "NIFTYNXT50", _d("2025-01-01"), "NSE"),
        Coverage("NSE", ANY_UNDERLYING, _d("2001-07-02"), "NSE"),
        Coverage("BSE", "SENSEX", _d("2023-05-15"), "BSE"),
        Coverage("US", ANY_UNDERLYING, _d("1990-01-01"), "NYSE"),
        Coverage("SIM", ANY_UNDERLYING, _d("2000-01-01"), "SIM"),
    )
}

# Exchange codes callers may pass, and the rule market each one means.
EXPIRY_EXCHANGES: Mapping[str, Market] = {
    "NSE": "NSE",
    "NFO": "NSE",
    "BSE": "BSE",
    "BFO": "BSE",
    "US_OPTIONS": "US",
    "SIM": "SIM",
}

# Underlyings whose exchange is unambiguous, so callers may leave ``exchange`` out.
DEFAULT_EXCHANGE: Mapping[str, Market] = {
    "NIFTY": "NSE",
    "BANKNIFTY": "NSE",
    "FINNIFTY": "NSE",
    "MIDCPNIFTY": "NSE",
    "NIFTYNXT50": "NSE",
    "SENSEX": "BSE",
}


def rules_for(market: Market, underlying: str, cycle: ExpiryKind) -> tuple[ExpiryRule, ...]:
    """All rows of one cycle for ``underlying`` (already resolved to its row key)."""
    return tuple(
        r
        for r in EXPIRY_RULES
        if r.market == market and r.underlying == underlying and r.cycle == cycle
    )
