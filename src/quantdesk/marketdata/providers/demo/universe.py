"""The demo instrument set and the statistical character of each underlying.

Price levels are round figures near where each instrument traded in late 2025 (the
``REFERENCE_DATE`` close), volatilities near their long-run realised values, lot sizes the
NSE F&O lots in force from January 2026 (NIFTY 65, BANKNIFTY 30; NSE circular of
October 2025) and typical daily volumes of the right order.  They are plausible, not quotes.

Derivatives name their F&O root as ``underlying`` (``NIFTY``, ``RELIANCE``), as Kite's
instrument dump does; ``marketdata.underlyings`` maps a root back to its spot.

F&O symbology is NSE's (see ``domain``): ``NIFTY26DECFUT``; monthly options
``NIFTY26DEC26000CE``; weekly options ``NIFTY2612126000CE`` (YY, month digit 1-9/O/N/D, DD).
A weekly expiry that is also the month's last expiry uses the monthly form.

``SIM`` is quantdesk's simulated exchange, open every day all day (``calendars``): three
equities and the index ``SIM:SIMIDX`` whose futures and options list on SIM itself
(``SIM:SIMIDX26JULFUT``, ``SIM:SIMIDX26JUL20000CE``), lot 50, tick 0.05, INR, expiring on
Thursdays (monthly: the month's last Thursday) at the end of the local day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from quantdesk.marketdata.domain import (
    EXCHANGE_CURRENCY,
    Exchange,
    Instrument,
    InstrumentType,
    OptionType,
    make_key,
)
from quantdesk.marketdata.providers.demo.generator import PriceModel

REFERENCE_DATE = date(2025, 11, 3)
"""Each underlying closes at its ``level`` on the last session on or before this date."""

EPOCH = date(2020, 1, 1)
"""The daily random streams start here; demo data cannot reach further back."""

DAILY_YEARS = 2
"""Years of daily bars in the loaded data set."""

MINUTE_SESSIONS = 30
"""Most recent sessions with 1-minute bars in the loaded data set."""

_NSE_SESSION_MINUTES = 375
_SIM_SESSION_MINUTES = 1440


def minute_sessions_for(calendar: str, minute_sessions: int) -> int:
    """How many sessions of 1-minute bars to load for an exchange, given ``minute_sessions``
    NSE-length sessions: SIM's round-the-clock days hold about four NSE days of minutes
    each, so it gets a quarter as many (30 -> 8: a week of charts), never fewer than one."""
    if calendar != "SIM":
        return minute_sessions
    return max(1, round(minute_sessions * _NSE_SESSION_MINUTES / _SIM_SESSION_MINUTES))


NSE_TICK = Decimal("0.05")
US_TICK = Decimal("0.01")
SIM_LOT = 50

# Financing rates for the cost of carry: Indian overnight money (MIBOR) and US T-bills,
# continuously compounded; rounded, late-2025 levels.
RATE: dict[str, float] = {"INR": 0.060, "USD": 0.040}

# The demo equities' GICS sectors, for allocation by sector; indices, ETFs and SIM's made-up
# companies have none.
SECTORS: dict[str, str] = {
    "NSE:RELIANCE": "Energy", "NSE:TCS": "Information Technology",
    "NSE:INFY": "Information Technology", "NSE:HDFCBANK": "Financials",
    "NSE:ICICIBANK": "Financials", "NSE:SBIN": "Financials", "NSE:ITC": "Consumer Staples",
    "NSE:LT": "Industrials", "NASDAQ:AAPL": "Information Technology",
    "NASDAQ:MSFT": "Information Technology",
}  # fmt: skip

# Market factors: the Indian and US exchanges, and SIM on its own (it trades at night too).
REGIONS = ("IN", "US", "SIM")

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# NSE weekly-option month code: 1-9 for January-September, then O, N, D.
_WEEKLY_MONTH_CODES = "123456789OND"


@dataclass(frozen=True, slots=True)
class Derivatives:
    """The F&O listed on an underlying (NSE): futures always, options when ``strike_step``."""

    root: str  # F&O symbol root: NIFTY, BANKNIFTY, RELIANCE
    lot_size: int
    future_daily_volume: float  # units traded on a typical near-month day
    future_peak_oi: float  # units of open interest at the near month's peak
    strike_step: float | None = None
    strikes_each_side: int = 0
    weekly_options: bool = False
    option_lots_per_expiry: float = 0.0  # total call OI of the nearest expiry, in lots
    put_call_ratio: float = 1.0


@dataclass(frozen=True, slots=True)
class DemoUnderlying:
    exchange: Exchange
    symbol: str
    name: str
    type: InstrumentType
    model: PriceModel
    dividend_yield: float = 0.0
    isin: str | None = None
    derivatives: Derivatives | None = None
    region: str = field(default="")  # market factor its shocks load on: "IN" or "US"

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ValueError(f"{self.key}: region must be one of {', '.join(REGIONS)}")

    @property
    def key(self) -> str:
        return make_key(self.exchange, self.symbol)

    @property
    def currency(self) -> str:
        return EXCHANGE_CURRENCY[self.exchange]

    @property
    def tick(self) -> Decimal:
        return NSE_TICK if self.currency == "INR" else US_TICK

    @property
    def rate(self) -> float:
        return RATE[self.currency]

    @property
    def calendar(self) -> str:
        """The calendar its sessions come from (NFO trades on NSE's)."""
        return "NSE" if self.exchange in (Exchange.NSE, Exchange.NFO) else self.exchange.value

    @property
    def derivatives_exchange(self) -> Exchange:
        """Where its F&O list: NSE's on NFO, SIM's on SIM itself."""
        return Exchange.SIM if self.exchange is Exchange.SIM else Exchange.NFO

    @property
    def expiry_exchange(self) -> str:
        """The exchange code whose expiry rules date its contracts (``calendars``)."""
        return "SIM" if self.exchange is Exchange.SIM else "NSE"

    def instrument(self) -> Instrument:
        return Instrument(
            exchange=self.exchange,
            symbol=self.symbol,
            name=self.name,
            type=self.type,
            currency=self.currency,
            lot_size=Decimal(1),
            tick_size=self.tick,
            isin=self.isin,
            sector=SECTORS.get(self.key),
        )


def _nse_stock(
    symbol: str,
    name: str,
    level: float,
    vol: float,
    volume: float,
    lot: int,
    isin: str,
    dividend_yield: float,
    beta: float,
) -> DemoUnderlying:
    return DemoUnderlying(
        Exchange.NSE,
        symbol,
        name,
        InstrumentType.EQUITY,
        PriceModel(level=level, vol=vol, drift=0.10, factor_loading=beta, daily_volume=volume),
        dividend_yield=dividend_yield,
        isin=isin,
        derivatives=Derivatives(
            root=symbol,
            lot_size=lot,
            future_daily_volume=volume * 0.9,
            future_peak_oi=volume * 6.0,
        ),
        region="IN",
    )


def _sim_stock(symbol: str, name: str, level: float, vol: float, volume: float) -> DemoUnderlying:
    # SIM sessions run midnight to midnight, one after the other: no overnight gap.
    return DemoUnderlying(
        Exchange.SIM,
        symbol,
        name,
        InstrumentType.EQUITY,
        PriceModel(
            level=level,
            vol=vol,
            drift=0.08,
            factor_loading=0.8,
            gap_share=0.0,
            daily_volume=volume,
        ),
        region="SIM",
    )


def _us(
    symbol: str,
    exchange: Exchange,
    kind: InstrumentType,
    name: str,
    level: float,
    vol: float,
    volume: float,
    isin: str,
    beta: float,
    dividend_yield: float,
) -> DemoUnderlying:
    return DemoUnderlying(
        exchange,
        symbol,
        name,
        kind,
        PriceModel(level=level, vol=vol, drift=0.09, factor_loading=beta, daily_volume=volume),
        dividend_yield=dividend_yield,
        isin=isin,
        region="US",
    )


UNDERLYINGS: tuple[DemoUnderlying, ...] = (
    DemoUnderlying(
        Exchange.NSE,
        "NIFTY 50",
        "NIFTY 50",
        InstrumentType.INDEX,
        PriceModel(level=25_750.0, vol=0.13, drift=0.10, factor_loading=0.97, gap_share=0.25),
        dividend_yield=0.012,
        derivatives=Derivatives(
            root="NIFTY",
            lot_size=65,
            future_daily_volume=6_500_000,
            future_peak_oi=16_000_000,
            strike_step=50.0,
            strikes_each_side=40,
            weekly_options=True,
            option_lots_per_expiry=900_000,
            put_call_ratio=1.08,
        ),
        region="IN",
    ),
    DemoUnderlying(
        Exchange.NSE,
        "NIFTY BANK",
        "NIFTY BANK",
        InstrumentType.INDEX,
        PriceModel(level=57_800.0, vol=0.16, drift=0.10, factor_loading=0.85, gap_share=0.25),
        dividend_yield=0.008,
        derivatives=Derivatives(
            root="BANKNIFTY",
            lot_size=30,
            future_daily_volume=2_400_000,
            future_peak_oi=3_600_000,
            strike_step=100.0,
            strikes_each_side=40,
            option_lots_per_expiry=400_000,
            put_call_ratio=0.95,
        ),
        region="IN",
    ),
    _nse_stock(
        "RELIANCE",
        "Reliance Industries Ltd",
        1_490.0,
        0.22,
        9_000_000,
        500,
        "INE002A01018",
        0.004,
        0.65,
    ),
    _nse_stock(
        "TCS",
        "Tata Consultancy Services Ltd",
        3_050.0,
        0.21,
        2_500_000,
        175,
        "INE467B01029",
        0.020,
        0.45,
    ),
    _nse_stock("INFY", "Infosys Ltd", 1_480.0, 0.24, 7_000_000, 400, "INE009A01021", 0.025, 0.50),
    _nse_stock(
        "HDFCBANK", "HDFC Bank Ltd", 985.0, 0.19, 14_000_000, 550, "INE040A01034", 0.011, 0.70
    ),
    _nse_stock(
        "ICICIBANK", "ICICI Bank Ltd", 1_350.0, 0.21, 11_000_000, 700, "INE090A01021", 0.008, 0.70
    ),
    _nse_stock(
        "SBIN", "State Bank of India", 935.0, 0.25, 12_000_000, 750, "INE062A01020", 0.017, 0.60
    ),
    _nse_stock("ITC", "ITC Ltd", 410.0, 0.19, 15_000_000, 1_600, "INE154A01025", 0.035, 0.40),
    _nse_stock(
        "LT", "Larsen & Toubro Ltd", 3_900.0, 0.23, 2_000_000, 175, "INE018A01030", 0.009, 0.60
    ),
    _us(
        "AAPL",
        Exchange.NASDAQ,
        InstrumentType.EQUITY,
        "Apple Inc.",
        270.0,
        0.27,
        50_000_000,
        "US0378331005",
        0.75,
        0.004,
    ),
    _us(
        "MSFT",
        Exchange.NASDAQ,
        InstrumentType.EQUITY,
        "Microsoft Corporation",
        515.0,
        0.24,
        20_000_000,
        "US5949181045",
        0.75,
        0.007,
    ),
    _us(
        "SPY",
        Exchange.NYSE,
        InstrumentType.ETF,
        "SPDR S&P 500 ETF Trust",
        680.0,
        0.15,
        70_000_000,
        "US78462F1030",
        0.98,
        0.012,
    ),
    _us(
        "QQQ",
        Exchange.NASDAQ,
        InstrumentType.ETF,
        "Invesco QQQ Trust, Series 1",
        625.0,
        0.20,
        45_000_000,
        "US46090E1038",
        0.92,
        0.005,
    ),
    # The S&P 500 itself, a benchmark beside NIFTY 50 (SPY is a fund that tracks it, less its
    # fees).  ``SPX``, its ticker at Cboe and most vendors, under the demo's US exchange code.
    DemoUnderlying(
        Exchange.NYSE,
        "SPX",
        "S&P 500",
        InstrumentType.INDEX,
        PriceModel(level=6_850.0, vol=0.15, drift=0.09, factor_loading=0.98),
        dividend_yield=0.012,
        region="US",
    ),
    # SIM, the simulated exchange (always open): paper trading at any hour.  Its index has
    # NSE-like F&O: two monthly futures, weekly and monthly options, lot 50, tick 0.05.
    DemoUnderlying(
        Exchange.SIM,
        "SIMIDX",
        "SIM Index (simulated)",
        InstrumentType.INDEX,
        PriceModel(level=20_000.0, vol=0.15, drift=0.08, factor_loading=0.95, gap_share=0.0),
        derivatives=Derivatives(
            root="SIMIDX",
            lot_size=SIM_LOT,
            future_daily_volume=1_000_000,
            future_peak_oi=2_500_000,
            strike_step=100.0,
            strikes_each_side=10,
            weekly_options=True,
            option_lots_per_expiry=50_000,
            put_call_ratio=1.0,
        ),
        region="SIM",
    ),
    _sim_stock("ALPHA", "Alpha Simulated Ltd", 100.0, 0.25, 2_000_000),
    _sim_stock("BETA", "Beta Simulated Ltd", 250.0, 0.30, 1_000_000),
    _sim_stock("GAMMA", "Gamma Simulated Ltd", 1_000.0, 0.20, 500_000),
)


def future_symbol(root: str, expiry: date) -> str:
    return f"{root}{expiry:%y}{_MONTHS[expiry.month - 1]}FUT"


def _option_suffix(option: OptionType) -> str:
    return "CE" if option is OptionType.CALL else "PE"


def strike_decimal(strike: float) -> Decimal:
    """A grid strike as the exchange writes it: ``21600``, ``187.5``.

    ``Decimal(...).normalize()`` alone turns 21600 into ``2.16E+4`` (it strips trailing
    zeros into the exponent), which then leaks into the API and instrument names.
    """
    return Decimal(strike_text(Decimal(repr(float(strike)))))


def strike_text(strike: Decimal) -> str:
    """The strike in symbols and names: positional, no trailing zeros (``21600``, ``187.5``)."""
    value = strike.normalize()
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        value = value.quantize(Decimal(1))
    return format(value, "f")


def option_symbol(
    root: str, expiry: date, strike: Decimal, option: OptionType, monthly: bool
) -> str:
    suffix = _option_suffix(option)
    strike_text_ = strike_text(strike)
    if monthly:
        return f"{root}{expiry:%y}{_MONTHS[expiry.month - 1]}{strike_text_}{suffix}"
    month_code = _WEEKLY_MONTH_CODES[expiry.month - 1]
    return f"{root}{expiry:%y}{month_code}{expiry:%d}{strike_text_}{suffix}"


def future_instrument(spec: DemoUnderlying, expiry: date) -> Instrument:
    fno = spec.derivatives
    if fno is None:
        raise ValueError(f"{spec.key} has no derivatives")
    return Instrument(
        exchange=spec.derivatives_exchange,
        symbol=future_symbol(fno.root, expiry),
        name=f"{fno.root} {expiry:%d %b %Y} future".upper(),
        type=InstrumentType.FUTURE,
        currency=spec.currency,
        lot_size=Decimal(fno.lot_size),
        tick_size=NSE_TICK,
        underlying=fno.root,
        expiry=expiry,
    )


def option_instrument(
    spec: DemoUnderlying, expiry: date, strike: Decimal, option: OptionType, monthly: bool
) -> Instrument:
    fno = spec.derivatives
    if fno is None:
        raise ValueError(f"{spec.key} has no derivatives")
    return Instrument(
        exchange=spec.derivatives_exchange,
        symbol=option_symbol(fno.root, expiry, strike, option, monthly),
        name=f"{fno.root} {expiry:%d %b %Y} {strike_text(strike)} {_option_suffix(option)}".upper(),
        type=InstrumentType.OPTION,
        currency=spec.currency,
        lot_size=Decimal(fno.lot_size),
        tick_size=NSE_TICK,
        underlying=fno.root,
        expiry=expiry,
        strike=strike,
        option_type=option,
    )
