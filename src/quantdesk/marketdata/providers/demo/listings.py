"""What the demo market lists: its exchanges' trading days, and the futures and option
series live on the anchor date.

* Futures: the near and next monthly contracts of every F&O underlying.  NSE trades three
  serial months, so a contract is listed the session after the monthly expiry three months
  before its own.
* Options (NIFTY, BANKNIFTY): the nearest expiries of any kind (weekly NIFTY) plus the next
  two monthlies, with strikes on the underlying's grid centred on the last close.

Expiry dates, holiday-shifted, come from ``marketdata.calendars``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from quantdesk.marketdata.calendars import expiries, get_calendar
from quantdesk.marketdata.calendars.models import TRADING_DAY_KINDS, Expiry
from quantdesk.marketdata.domain import FloatArray, Instrument, OptionType
from quantdesk.marketdata.providers.demo.chains import strikes_around
from quantdesk.marketdata.providers.demo.futures import FutureContract
from quantdesk.marketdata.providers.demo.generator import Sessions
from quantdesk.marketdata.providers.demo.universe import (
    DemoUnderlying,
    future_instrument,
    option_instrument,
    strike_decimal,
)

FUTURE_MONTHS = 2  # near and next month
NEAREST_OPTION_EXPIRIES = 3  # of any kind, for underlyings with weekly options
MONTHLY_OPTION_EXPIRIES = 2
_LISTING_LOOKBACK = timedelta(days=130)
_SERIAL_MONTHS = 3


def exchange_sessions(calendar: str, start: date, end: date) -> Sessions:
    """Trading days of ``calendar`` in ``[start, end]`` as a ``Sessions`` table.

    Special sessions (Muhurat, DR drills) are not trading days and get no bars; a day split
    by a halt becomes one session with a halt.
    """
    by_day: dict[date, list[tuple[int, int]]] = {}
    for session in get_calendar(calendar).sessions(start, end):
        if session.kind in TRADING_DAY_KINDS:
            window = (int(session.open_utc.timestamp()), int(session.close_utc.timestamp()))
            by_day.setdefault(session.date, []).append(window)
    days = sorted(by_day)
    halts: list[tuple[int, int, int]] = []
    for index, day in enumerate(days):
        windows = sorted(by_day[day])
        halts.extend((index, a[1], b[0]) for a, b in itertools.pairwise(windows))
    return Sessions(
        dates=np.array(days, dtype="datetime64[D]"),
        opens=np.array([min(w)[0] for w in (by_day[d] for d in days)], dtype=np.int64),
        closes=np.array([max(w)[1] for w in (by_day[d] for d in days)], dtype=np.int64),
        halts=tuple(halts),
    )


@dataclass(frozen=True, slots=True)
class FutureListing:
    spec: DemoUnderlying
    instrument: Instrument
    contract: FutureContract


@dataclass(frozen=True, slots=True)
class OptionSeries:
    """All strikes of one expiry of one underlying."""

    spec: DemoUnderlying
    expiry: date
    monthly: bool
    expiry_index: int
    expiry_close_ts: int
    strikes: FloatArray
    calls: tuple[Instrument, ...]
    puts: tuple[Instrument, ...]
    oi_weight: float  # share of the underlying's option OI this expiry carries

    @property
    def name(self) -> str:
        return f"{self.spec.key}:{self.expiry.isoformat()}"


def list_futures(spec: DemoUnderlying, sessions: Sessions, anchor: date) -> list[FutureListing]:
    """The near- and next-month futures of ``spec`` live on ``anchor``."""
    fno = spec.derivatives
    if fno is None:
        return []
    horizon = sessions.date(len(sessions) - 1)
    monthly = expiries(
        fno.root, anchor - _LISTING_LOOKBACK, horizon, "monthly", spec.expiry_exchange
    )
    found: list[FutureListing] = []
    for expiry in [e for e in monthly if e.date >= anchor][:FUTURE_MONTHS]:
        position = monthly.index(expiry)
        if position >= _SERIAL_MONTHS:
            previous = monthly[position - _SERIAL_MONTHS].date
            listing = sessions.index_on_or_after(previous + timedelta(days=1))
        else:  # the lookback always reaches three months; kept for safety
            listing = sessions.index_on_or_after(expiry.date - timedelta(days=91))
        expiry_index = sessions.index_on_or_before(expiry.date)
        instrument = future_instrument(spec, expiry.date)
        contract = FutureContract(
            symbol=instrument.symbol,
            listing_index=listing,
            expiry_index=expiry_index,
            expiry_close_ts=int(sessions.closes[expiry_index]),
            rate=spec.rate,
            dividend_yield=spec.dividend_yield,
            lot_size=float(fno.lot_size),
            tick=float(instrument.tick_size),
            daily_volume=fno.future_daily_volume,
            peak_oi=fno.future_peak_oi,
        )
        found.append(FutureListing(spec, instrument, contract))
    return found


def list_option_series(
    spec: DemoUnderlying, sessions: Sessions, anchor: date, spot: float
) -> list[OptionSeries]:
    """The option expiries of ``spec`` live on ``anchor``, strikes centred on ``spot``."""
    fno = spec.derivatives
    if fno is None or fno.strike_step is None:
        return []
    horizon = sessions.date(len(sessions) - 1)
    every = expiries(fno.root, anchor, horizon, "all", spec.expiry_exchange)
    monthly = [e for e in every if e.kind == "monthly"][:MONTHLY_OPTION_EXPIRIES]
    nearest = every[:NEAREST_OPTION_EXPIRIES] if fno.weekly_options else []
    chosen: list[Expiry] = sorted({*nearest, *monthly})
    strikes = strikes_around(spot, fno.strike_step, fno.strikes_each_side)
    decimal_strikes = [strike_decimal(float(k)) for k in strikes]
    found: list[OptionSeries] = []
    for order, expiry in enumerate(chosen):
        expiry_index = sessions.index_on_or_before(expiry.date)
        is_monthly = expiry.kind == "monthly"
        found.append(
            OptionSeries(
                spec=spec,
                expiry=expiry.date,
                monthly=is_monthly,
                expiry_index=expiry_index,
                expiry_close_ts=int(sessions.closes[expiry_index]),
                strikes=strikes,
                calls=tuple(
                    option_instrument(spec, expiry.date, k, OptionType.CALL, is_monthly)
                    for k in decimal_strikes
                ),
                puts=tuple(
                    option_instrument(spec, expiry.date, k, OptionType.PUT, is_monthly)
                    for k in decimal_strikes
                ),
                # Nearer expiries hold more open interest; monthlies more than weeklies.
                oi_weight=0.6**order * (1.4 if is_monthly else 1.0),
            )
        )
    return found
