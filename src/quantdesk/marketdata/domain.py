"""Market-data domain types: instruments, bars, quotes, trades, timeframes. Pure: no I/O.

Instrument keys are ``EXCHANGE:TRADINGSYMBOL``, the convention of Kite Connect's quote API,
so a key pasted from a Kite client works here unchanged:

* ``NSE:RELIANCE``, ``BSE:RELIANCE`` — cash equities; ``NSE:NIFTY 50``, ``NSE:NIFTY BANK`` — indices
  (Kite's index symbols contain a space; URL-encode it as ``%20``).
* ``NFO:NIFTY25SEP24500CE`` (monthly option: YY + MON), ``NFO:NIFTY2590924500CE`` (weekly option:
  YY + month digit 1-9/O/N/D + DD), ``NFO:NIFTY25SEPFUT`` (future) — NSE's F&O symbology.
* ``BFO:SENSEX2590481000CE``, ``BFO:SENSEX25SEPFUT`` — BSE's F&O segment (same symbology);
  ``MCX:CRUDEOIL25OCTFUT``, ``MCX:CRUDEOIL25OCT5800CE`` — commodity futures and options on
  futures; ``CDS:USDINR25OCTFUT`` — NSE's currency derivatives (``BCD``: BSE's), prices in
  rupees per unit of the base currency (per 100 for JPYINR).
* ``SIM:ALPHA``, ``SIM:SIMIDX``, ``SIM:SIMIDX26JULFUT`` — quantdesk's simulated exchange
  (always open; NSE's F&O symbology under the ``SIM`` exchange code).
* ``NASDAQ:AAPL``, ``NYSE:SPY`` — US listings; ``OPRA:SPY251219C00600000`` — US options in OCC
  symbology without the padding spaces (root, YYMMDD, C/P, strike x 1000 on 8 digits).

Prices are ``Decimal`` in this layer and in the database.  Bulk bar series travel as NumPy
arrays (``BarArrays``) because analytics and resampling are vectorised; float64 holds every
price with up to 15 significant digits exactly enough that ``repr`` gives the original decimal
back, which is why the wire format is rebuilt from it without loss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

import numpy as np
import numpy.typing as npt


class Exchange(StrEnum):
    NSE = "NSE"
    BSE = "BSE"
    NFO = "NFO"
    # BSE's F&O segment, MCX's commodity derivatives, NSE's and BSE's currency derivatives:
    # the Kite instrument dump's exchange codes.
    BFO = "BFO"
    MCX = "MCX"
    CDS = "CDS"
    BCD = "BCD"
    NYSE = "NYSE"
    NASDAQ = "NASDAQ"
    OPRA = "OPRA"
    # quantdesk's simulated exchange: always open, INR, NSE-like contracts (docs/market-data.md).
    SIM = "SIM"


class InstrumentType(StrEnum):
    EQUITY = "equity"
    ETF = "etf"
    INDEX = "index"
    FUTURE = "future"
    OPTION = "option"


class OptionType(StrEnum):
    CALL = "call"
    PUT = "put"


EXCHANGE_CURRENCY: dict[Exchange, str] = {
    Exchange.NSE: "INR",
    Exchange.BSE: "INR",
    Exchange.NFO: "INR",
    Exchange.BFO: "INR",
    Exchange.MCX: "INR",
    # Settled in rupees; cross-currency pairs (EURUSD) are quoted in USD but settle in INR.
    Exchange.CDS: "INR",
    Exchange.BCD: "INR",
    Exchange.NYSE: "USD",
    Exchange.NASDAQ: "USD",
    Exchange.OPRA: "USD",
    Exchange.SIM: "INR",
}

_KEY_RE = re.compile(r"^(?P<exchange>[A-Z]{2,8}):(?P<symbol>[A-Z0-9][A-Z0-9 &._-]{0,63})$")


def parse_key(key: str) -> tuple[Exchange, str]:
    """Split an instrument key into exchange and trading symbol, validating both."""
    match = _KEY_RE.match(key.strip().upper())
    if match is None:
        raise ValueError(f"instrument key {key!r} is not of the form EXCHANGE:SYMBOL")
    try:
        exchange = Exchange(match["exchange"])
    except ValueError:
        known = ", ".join(e.value for e in Exchange)
        raise ValueError(f"unknown exchange {match['exchange']!r}; known: {known}") from None
    return exchange, match["symbol"]


def make_key(exchange: Exchange | str, symbol: str) -> str:
    return f"{Exchange(exchange).value}:{symbol.upper()}"


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable (or, for indices, quotable) instrument of the master.

    ``underlying`` is the symbol a derivative is listed under (``NIFTY``, ``BANKNIFTY``,
    ``RELIANCE``, ``SPY``), which is what option chains and expiry rules are keyed by.
    ``sector`` is a free-text classification (``Information Technology``) where the source
    gives one (a generic CSV's ``sector`` column, the demo universe); None means "not said",
    and an upsert without one keeps the sector already stored.
    """

    exchange: Exchange
    symbol: str
    name: str
    type: InstrumentType
    currency: str
    lot_size: Decimal = Decimal(1)
    tick_size: Decimal = Decimal("0.01")
    multiplier: Decimal = Decimal(1)
    underlying: str | None = None
    expiry: date | None = None
    strike: Decimal | None = None
    option_type: OptionType | None = None
    isin: str | None = None
    active: bool = True
    provider_token: str | None = None
    sector: str | None = None

    @property
    def key(self) -> str:
        return make_key(self.exchange, self.symbol)


class Timeframe(StrEnum):
    M1 = "1m"
    M3 = "3m"
    M5 = "5m"
    M10 = "10m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    D1 = "1d"
    W1 = "1w"

    @property
    def duration(self) -> timedelta:
        return _DURATIONS[self]

    @property
    def is_intraday(self) -> bool:
        return self.duration < timedelta(days=1)

    @property
    def stored_base(self) -> Timeframe:
        """The stored timeframe this one is resampled from (1m and 1d are stored)."""
        return Timeframe.M1 if self.is_intraday else Timeframe.D1


_DURATIONS: dict[Timeframe, timedelta] = {
    Timeframe.M1: timedelta(minutes=1),
    Timeframe.M3: timedelta(minutes=3),
    Timeframe.M5: timedelta(minutes=5),
    Timeframe.M10: timedelta(minutes=10),
    Timeframe.M15: timedelta(minutes=15),
    Timeframe.M30: timedelta(minutes=30),
    Timeframe.H1: timedelta(hours=1),
    Timeframe.D1: timedelta(days=1),
    Timeframe.W1: timedelta(weeks=1),
}

STORED_TIMEFRAMES = (Timeframe.M1, Timeframe.D1)


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV(+OI) bar; ``ts`` is the bar's open time, timezone-aware UTC."""

    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)
    oi: Decimal | None = None


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BarArrays:
    """A bar series in columns: ``ts`` in epoch seconds (UTC bar open), prices as float64."""

    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    oi: FloatArray = field(default_factory=lambda: np.empty(0, dtype=np.float64))

    def __len__(self) -> int:
        return int(self.ts.shape[0])


@dataclass(frozen=True, slots=True)
class Quote:
    """Latest market state of one instrument.

    ``source_id`` names this quote uniquely (``QuoteService.publish`` assigns one when it is
    empty): the paper-trading matcher keys the fills a quote causes by it, so a quote seen
    twice (on the bus and again from the cache) never fills twice.  It is identity, not
    market state, so it takes no part in equality.
    """

    key: str
    last: Decimal
    ts: datetime
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None
    volume: Decimal | None = None
    oi: Decimal | None = None
    change: Decimal | None = None
    prev_close: Decimal | None = None
    # Open interest at the previous session's close: OI change drives the buildup reading.
    prev_oi: Decimal | None = None
    source_id: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Trade:
    """One print: ``size`` units of ``key`` traded at ``price`` at ``ts`` (timezone-aware).

    ``source_id`` is the print's unique id (``QuoteService.publish_trade`` assigns one when
    it is empty); the matcher keys the fills a print causes by it.
    """

    key: str
    price: Decimal
    size: Decimal
    ts: datetime
    source_id: str = ""
