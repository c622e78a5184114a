"""``/api/v1/calendar/{exchange}``: market status, sessions, holidays and F&O expiries.

A thin HTTP layer over the pure ``calendars`` package.  ``{exchange}`` is one of NSE, NFO,
BSE, BFO, CDS, BCD, MCX, NYSE, NASDAQ, US_OPTIONS (OPRA is accepted as its alias) or SIM, the
simulated exchange that is always open.  A year outside the
calendar data answers 422 ``calendar-data-unavailable`` rather than guessing.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query

from quantdesk.marketdata.calendars import ExchangeCalendar, ExpiryFilter, expiries, get_calendar
from quantdesk.marketdata.schemas import (
    ExpiriesOut,
    ExpiryOut,
    HolidayOut,
    HolidaysOut,
    MarketStatusOut,
    SessionsOut,
    TradingSessionOut,
)
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.security.policy import RequireViewer

router = APIRouter(prefix="/api/v1/calendar", tags=["calendar"])

ExchangeCode = Annotated[
    str,
    Path(
        description="NSE, NFO, BSE, BFO, CDS, BCD, MCX, NYSE, NASDAQ, US_OPTIONS or SIM",
        max_length=16,
    ),
]
# The calendar package's name for US listed options; our instrument keys say OPRA.
_ALIASES = {"OPRA": "US_OPTIONS"}
# US options expire by the OCC's rules whichever exchange lists the underlying.
_EXPIRY_EXCHANGE = {"OPRA": "US_OPTIONS", "NYSE": "US_OPTIONS", "NASDAQ": "US_OPTIONS"}
MAX_SESSION_DAYS = 366


def _calendar(exchange: str) -> ExchangeCalendar:
    code = exchange.strip().upper()
    return get_calendar(_ALIASES.get(code, code))


@router.get("/{exchange}/status", summary="Open or closed now (or at ``at``), next open/close")
async def market_status(
    exchange: ExchangeCode,
    _viewer: RequireViewer,
    at: Annotated[
        dt.datetime | None, Query(description="Instant to ask about (default now)")
    ] = None,
) -> MarketStatusOut:
    when = at or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        raise InvalidInput("at must include a timezone, e.g. 2025-01-06T04:00:00Z", field="at")
    return MarketStatusOut.of(_calendar(exchange).status(when))


@router.get("/{exchange}/sessions", summary="Trading sessions between two local dates")
async def sessions(
    exchange: ExchangeCode,
    _viewer: RequireViewer,
    from_: Annotated[dt.date, Query(alias="from", description="First local date")],
    to: Annotated[dt.date, Query(description="Last local date, inclusive")],
) -> SessionsOut:
    if to < from_:
        raise InvalidInput("to must not be before from", field="to")
    if (to - from_).days > MAX_SESSION_DAYS:
        raise InvalidInput(f"ask for at most {MAX_SESSION_DAYS} days at a time", field="to")
    calendar = _calendar(exchange)
    found = calendar.sessions(from_, to)
    return SessionsOut(exchange=calendar.name, sessions=[TradingSessionOut.of(s) for s in found])


@router.get("/{exchange}/holidays", summary="Weekdays without a full trading session")
async def holidays(
    exchange: ExchangeCode,
    _viewer: RequireViewer,
    year: Annotated[int, Query(ge=1900, le=2200)],
) -> HolidaysOut:
    calendar = _calendar(exchange)
    days = calendar.holidays(year)
    return HolidaysOut(
        exchange=calendar.name,
        year=year,
        provisional=calendar.is_provisional(year),
        holidays=[HolidayOut.of(h) for h in days],
    )


@router.get(
    "/{exchange}/expiries",
    summary="F&O expiry dates of an underlying",
    description="NSE: Thursday expiries for contracts up to 2025-08-28, Tuesday from "
    "2025-09-01; NIFTY weekly and monthly, other indices and stocks monthly.  BSE/BFO: SENSEX "
    "weekly and monthly.  US options: monthly on the third Friday, weeklies on Fridays.  A "
    "holiday moves the expiry to the previous trading day.  MCX and currency (CDS, BCD) "
    "expiries are not rule-based: read them from the instrument master.",
)
async def list_expiries(
    exchange: ExchangeCode,
    _viewer: RequireViewer,
    underlying: Annotated[str, Query(max_length=32, examples=["NIFTY", "SPY"])],
    from_: Annotated[dt.date, Query(alias="from")],
    to: dt.date,
    kind: ExpiryFilter = "all",
) -> ExpiriesOut:
    if to < from_:
        raise InvalidInput("to must not be before from", field="to")
    if (to - from_).days > 3 * MAX_SESSION_DAYS:
        raise InvalidInput("ask for at most three years at a time", field="to")
    code = exchange.strip().upper()
    found = expiries(underlying, from_, to, kind, _EXPIRY_EXCHANGE.get(code, code))
    return ExpiriesOut(
        exchange=code, underlying=underlying.upper(), expiries=[ExpiryOut.of(e) for e in found]
    )
