"""Sample instruments for the market-data tests (built through the domain types)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, OptionType


def equity(
    symbol: str, name: str, exchange: Exchange = Exchange.NSE, *, isin: str | None = None
) -> Instrument:
    us = exchange in (Exchange.NYSE, Exchange.NASDAQ)
    return Instrument(
        exchange=exchange,
        symbol=symbol,
        name=name,
        type=InstrumentType.EQUITY,
        currency="USD" if us else "INR",
        tick_size=Decimal("0.01") if us else Decimal("0.05"),
        isin=isin,
    )


def nse_index(symbol: str) -> Instrument:
    return Instrument(
        exchange=Exchange.NSE,
        symbol=symbol,
        name=symbol,
        type=InstrumentType.INDEX,
        currency="INR",
        tick_size=Decimal("0.05"),
    )


def nifty_option(expiry: dt.date, strike: int, option_type: OptionType) -> Instrument:
    suffix = "CE" if option_type is OptionType.CALL else "PE"
    return Instrument(
        exchange=Exchange.NFO,
        symbol=f"NIFTY{expiry:%y%b}{strike}{suffix}".upper(),
        name=f"NIFTY {expiry} {strike} {suffix}",
        type=InstrumentType.OPTION,
        currency="INR",
        lot_size=Decimal(75),
        tick_size=Decimal("0.05"),
        underlying="NIFTY",
        expiry=expiry,
        strike=Decimal(strike),
        option_type=option_type,
    )


def nifty_future(expiry: dt.date) -> Instrument:
    return Instrument(
        exchange=Exchange.NFO,
        symbol=f"NIFTY{expiry:%y%b}FUT".upper(),
        name=f"NIFTY FUT {expiry}",
        type=InstrumentType.FUTURE,
        currency="INR",
        lot_size=Decimal(75),
        tick_size=Decimal("0.05"),
        underlying="NIFTY",
        expiry=expiry,
    )
