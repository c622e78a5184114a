"""Charges on a fill: brokerage and the statutory and regulatory charges, itemised.

A :class:`ChargeSchedule` holds, for one market and segment, each charge as a table of
rates with the date each took effect (:class:`Dated`); :meth:`ChargeSchedule.rates_on`
resolves the rates in force on a trading day and :meth:`ChargeSchedule.fill` prices one
fill into a :class:`Charges` (one field per line).  :data:`DEFAULT_CHARGES` is the table
below; :meth:`ChargeTable.for_instrument` picks the schedule of an instrument from its
exchange, type and product.  Hand-written: no maintained library carries Indian statutory
charges or the dated US regulatory fees (brokers publish calculators, not packages).

India (rates are fractions of the fill's value; options: of the premium value)

====================  ==========  ==========  ==========  ===================  ===========
line                  delivery    intraday    futures     options              since
====================  ==========  ==========  ==========  ===================  ===========
brokerage (Zerodha)   0           0.03%,      0.03%,      Rs 20 flat           2019-01-01
                                  max Rs 20   max Rs 20   per order
STT (buy)             0.1%        -           -           -                    2013-06-01
STT (sell)            0.1%        0.025%      0.02%       0.1% of premium      2024-10-01
                                              0.05%       0.15% of premium     2026-04-01
STT exercised (buy)   -           -           -           0.125% intrinsic     2016-06-01
                                                          0.15% intrinsic      2026-04-01
NSE transaction       0.00297%    0.00297%    0.00173%    0.03503% of premium  2024-10-01
NSE IPFT              Rs 10/cr    Rs 10/cr    Rs 10/cr    Rs 50/cr of premium  2023-04-01
BSE transaction       0.00375%    0.00375%    0           0.0325% of premium   2024-10-01
SEBI turnover fee     Rs 10/cr    Rs 10/cr    Rs 10/cr    Rs 10/cr             2020-06-01
stamp duty (buy)      0.015%      0.003%      0.002%      0.003%               2020-07-01
GST                   18% of brokerage + transaction + IPFT + SEBI             2017-07-01
====================  ==========  ==========  ==========  ===================  ===========

Earlier STT rows (futures 0.01% from 2013-06-01 and 0.0125% from 2023-04-01; options
0.05% from 2016-06-01 and 0.0625% from 2023-04-01) are in the table too.  NSE currency
derivatives (no STT; transaction 0.00035% futures, 0.0311% options premium; IPFT Rs 0.5 and
Rs 2 per lakh; stamp 0.0001%) and MCX commodities (CTT 0.01% futures sell, 0.05% options
sell; transaction 0.0021% and 0.0418%; stamp 0.002% and 0.003%) are included, from
2024-10-01, the date of SEBI's uniform ("true to label") exchange charges.

Sources, read 2026-12-03: Zerodha's charges list (zerodha.com/charges; the IPFT article on
support.zerodha.com); NSE's circular of 2024-09-27 on transaction charges from 2024-10-01
(Rs 2.97, 1.73 and 35.03 per lakh; reported by PTI, NDTV Profit, Hindustan Times); NSE
circular NSE/FA/56129 of 2023-03-24 (IPFT from 2023-04-01); the Finance (No. 2) Act 2024
(STT from 2024-10-01) and the Finance Bill 2026 (STT on futures 0.05%, options 0.15% from
2026-04-01; cleartax.in); the Indian Stamp Act as amended from 2020-07-01; HDFC Sky's
statutory-charges pages (currency and commodity rates).

United States (sells only; zero commission, as Alpaca)

=================================  ==============================================  ==========
line                               rate                                            since
=================================  ==============================================  ==========
SEC Section 31 fee                 $22.90 per $1M of sale value                    2022-05-14
                                   $8.00                                           2023-02-27
                                   $27.80                                          2024-05-22
                                   $0.00                                           2025-05-14
                                   $20.60                                          2026-04-04
FINRA TAF, equities                $0.000145/share, max $7.27 per trade            2023-01-01
                                   $0.000166/share, max $8.30                      2024-01-01
                                   $0.000195/share, max $9.79                      2026-01-01
FINRA TAF, options                 $0.00279 per contract                           2024-01-01
=================================  ==============================================  ==========

Sources: the SEC's orders making annual adjustments to transaction fee rates (Federal
Register 2024-08512, 2025-06214: $0.00 from 2025-05-14; 2026-04233 of 2026-02-27); the
$20.60 rate from 2026-04-04 and the 2026 TAF as tabulated by open-source brokerage tools
(bennycode/trading-signals, 2026-09) — the SEC order's text was not at hand; FINRA's
By-Laws Schedule A section 1 and SR-FINRA-2024-019 (TAF increases 2026-2029).  The $9.79
cap of 2026 comes from one secondary source; a reported pause of TAF collection from
2026-10-01 could not be confirmed and is not in the table (add a dated row if it is).

Rounding.  India, per fill: each line to 2 decimals (half up), GST on the rounded lines it
applies to; STT/CTT also to the paisa here, because a contract note rounds it to the rupee
per scrip per day, not per fill.  Stamp duty is collected by the clearing corporation from
the buyer on the settlement day (Indian Stamp Act s. 9A and the Collection Rules 2019),
which state no rounding: it is rounded to the paisa, as Zerodha's calculator shows it.
:meth:`ChargeSchedule.round_trip` reproduces Zerodha's brokerage calculator instead: each
line summed over the buy and the sell, STT/CTT rounded to the nearest rupee, the rest to 2
decimals.  United States: each fee rounded up to the
cent per fill, as brokers confirm them (Alpaca rounds the day's total up once instead).

Brokerage is charged per executed order: pass ``order_value_before`` (the value of the
order's earlier fills) and a fill pays only what its order's brokerage grows by, so a flat
Rs 20 is paid once per order and the 0.03% cap applies to the whole order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Generic, TypeVar

from quantdesk.trading.engine.positions import tidy

ZERO = Decimal(0)
_CENT = Decimal("0.01")
_RUPEE = Decimal(1)
T = TypeVar("T")


class Market(StrEnum):
    NSE = "NSE"
    BSE = "BSE"
    MCX = "MCX"
    US = "US"


class Segment(StrEnum):
    EQUITY_DELIVERY = "equity_delivery"  # CNC
    EQUITY_INTRADAY = "equity_intraday"  # MIS
    FUTURES = "futures"
    OPTIONS = "options"
    CURRENCY_FUTURES = "currency_futures"
    CURRENCY_OPTIONS = "currency_options"
    COMMODITY_FUTURES = "commodity_futures"
    COMMODITY_OPTIONS = "commodity_options"
    US_EQUITY = "us_equity"
    US_OPTIONS = "us_options"


class ChargesUnavailable(ValueError):
    """No rate of some charge is known for the requested day (or segment)."""


@dataclass(frozen=True, slots=True)
class Dated(Generic[T]):
    """A rate in force from ``since`` (inclusive) until the next row of its table."""

    since: dt.date
    value: T
    source: str = ""


@dataclass(frozen=True, slots=True)
class Brokerage:
    """Per executed order: ``flat + pct x value``, at most ``cap`` ("whichever is lower")."""

    flat: Decimal = ZERO
    pct: Decimal = ZERO
    cap: Decimal | None = None

    def on_order(self, value: Decimal) -> Decimal:
        if value <= 0:
            return ZERO
        amount = self.flat + self.pct * value
        return amount if self.cap is None else min(amount, self.cap)


@dataclass(frozen=True, slots=True)
class PerUnit:
    """A fee per unit sold (share or contract), at most ``cap`` per trade."""

    rate: Decimal = ZERO
    cap: Decimal | None = None

    def on(self, units: Decimal) -> Decimal:
        amount = self.rate * units
        return amount if self.cap is None else min(amount, self.cap)


@dataclass(frozen=True, slots=True)
class Rates:
    """One segment's rates on one day (fractions of value unless said otherwise)."""

    day: dt.date
    brokerage: Brokerage
    stt_buy: Decimal
    stt_sell: Decimal
    stt_exercise: Decimal  # on the intrinsic value of options bought and exercised
    exchange: Decimal
    ipft: Decimal
    sebi: Decimal
    stamp_buy: Decimal
    gst: Decimal
    sec_fee_sell: Decimal
    taf_sell: PerUnit


@dataclass(frozen=True, slots=True)
class Charges:
    """A fill's charges, line by line, in the account's currency (all >= 0)."""

    brokerage: Decimal = ZERO
    stt: Decimal = ZERO  # STT, or CTT on commodities
    exchange: Decimal = ZERO  # exchange transaction charges
    ipft: Decimal = ZERO  # NSE investor protection fund (shown within transaction charges)
    sebi: Decimal = ZERO
    stamp_duty: Decimal = ZERO
    gst: Decimal = ZERO
    sec_fee: Decimal = ZERO
    taf: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return tidy(sum(self.lines().values(), ZERO))

    def lines(self) -> dict[str, Decimal]:
        """Every line by name, in a stable order (for the fill's itemisation)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __add__(self, other: Charges) -> Charges:
        return Charges(
            **{name: tidy(value + getattr(other, name)) for name, value in self.lines().items()}
        )


NO_CHARGES = Charges()

Table = tuple[Dated[Decimal], ...]


def _resolve(table: Sequence[Dated[T]], day: dt.date, default: T, name: str) -> T:
    if not table:
        return default
    found: Dated[T] | None = None
    for row in table:  # a handful of rows, in date order
        if row.since <= day:
            found = row
    if found is None:
        raise ChargesUnavailable(f"no {name} rate before {table[0].since.isoformat()}")
    return found.value


def _round(amount: Decimal, quantum: Decimal, up: bool) -> Decimal:
    return tidy(amount.quantize(quantum, rounding=ROUND_CEILING if up else ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class ChargeSchedule:
    """The charges of one market and segment, each line a table of dated rates."""

    market: Market
    segment: Segment
    currency: str
    brokerage: tuple[Dated[Brokerage], ...] = ()
    stt_buy: Table = ()
    stt_sell: Table = ()
    stt_exercise: Table = ()
    exchange: Table = ()
    ipft: Table = ()
    sebi: Table = ()
    stamp_buy: Table = ()
    gst: Table = ()
    sec_fee_sell: Table = ()
    taf_sell: tuple[Dated[PerUnit], ...] = ()
    # US fees are rounded up to the cent; Indian charges to the nearest paisa.
    round_up: bool = False
    # The lines GST is charged on.
    gst_base: frozenset[str] = frozenset({"brokerage", "exchange", "ipft", "sebi"})

    def __post_init__(self) -> None:
        for f in fields(self):
            table = getattr(self, f.name)
            if isinstance(table, tuple):
                days = [row.since for row in table]
                if days != sorted(days) or len(set(days)) != len(days):
                    raise ValueError(f"{f.name}: rows must be in strictly increasing date order")

    def rates_on(self, day: dt.date) -> Rates:
        r = _resolve
        return Rates(
            day=day,
            brokerage=r(self.brokerage, day, Brokerage(), "brokerage"),
            stt_buy=r(self.stt_buy, day, ZERO, "STT"),
            stt_sell=r(self.stt_sell, day, ZERO, "STT"),
            stt_exercise=r(self.stt_exercise, day, ZERO, "STT on exercise"),
            exchange=r(self.exchange, day, ZERO, "exchange transaction"),
            ipft=r(self.ipft, day, ZERO, "IPFT"),
            sebi=r(self.sebi, day, ZERO, "SEBI fee"),
            stamp_buy=r(self.stamp_buy, day, ZERO, "stamp duty"),
            gst=r(self.gst, day, ZERO, "GST"),
            sec_fee_sell=r(self.sec_fee_sell, day, ZERO, "SEC fee"),
            taf_sell=r(self.taf_sell, day, PerUnit(), "FINRA TAF"),
        )

    def _raw(
        self,
        rates: Rates,
        side: str,
        value: Decimal,
        quantity: Decimal,
        order_value_before: Decimal,
    ) -> dict[str, Decimal]:
        """Unrounded lines of one fill (GST left out: it is computed on rounded lines)."""
        buy = side == "buy"
        plan = rates.brokerage
        return {
            "brokerage": plan.on_order(order_value_before + value)
            - plan.on_order(order_value_before),
            "stt": value * (rates.stt_buy if buy else rates.stt_sell),
            "exchange": value * rates.exchange,
            "ipft": value * rates.ipft,
            "sebi": value * rates.sebi,
            "stamp_duty": value * rates.stamp_buy if buy else ZERO,
            "sec_fee": ZERO if buy else value * rates.sec_fee_sell,
            "taf": ZERO if buy else rates.taf_sell.on(quantity),
        }

    def _finish(
        self, raw: Mapping[str, Decimal], gst_rate: Decimal, stt_quantum: Decimal
    ) -> Charges:
        lines = {
            name: _round(amount, stt_quantum if name == "stt" else _CENT, self.round_up)
            for name, amount in raw.items()
        }
        taxable = sum((lines[name] for name in self.gst_base), ZERO)
        return Charges(**lines, gst=_round(taxable * gst_rate, _CENT, self.round_up))

    def fill(
        self,
        *,
        side: str,
        price: Decimal,
        quantity: Decimal,
        day: dt.date,
        multiplier: Decimal = Decimal(1),
        order_value_before: Decimal = ZERO,
    ) -> Charges:
        """The charges of one fill of ``quantity`` at ``price`` (a premium for options).

        ``order_value_before`` is the traded value of the same order's earlier fills, so
        brokerage per executed order is charged once (flat) or capped on the whole order.
        """
        if side not in ("buy", "sell"):
            raise ValueError(f"side is buy or sell, not {side!r}")
        if price < 0 or quantity < 0 or multiplier <= 0 or order_value_before < 0:
            raise ValueError("price, quantity and earlier order value are not negative")
        rates = self.rates_on(day)
        value = price * quantity * multiplier
        if quantity == 0:
            return NO_CHARGES
        raw = self._raw(rates, side, value, quantity, order_value_before)
        return self._finish(raw, rates.gst, _CENT)

    def round_trip(
        self,
        *,
        buy_price: Decimal,
        sell_price: Decimal,
        quantity: Decimal,
        day: dt.date,
        multiplier: Decimal = Decimal(1),
    ) -> Charges:
        """A buy and a sell of ``quantity`` as one order each, summed line by line and
        rounded the way Zerodha's brokerage calculator rounds (STT/CTT to the rupee)."""
        rates = self.rates_on(day)
        total: dict[str, Decimal] = {}
        for side, price in (("buy", buy_price), ("sell", sell_price)):
            value = price * quantity * multiplier
            raw = self._raw(rates, side, value, quantity, ZERO)
            # The calculator rounds each order's brokerage before adding them up.
            raw["brokerage"] = _round(raw["brokerage"], _CENT, self.round_up)
            for name, amount in raw.items():
                total[name] = total.get(name, ZERO) + amount
        return self._finish(total, rates.gst, _CENT if self.round_up else _RUPEE)

    def exercise(self, *, intrinsic_value: Decimal, day: dt.date) -> Charges:
        """STT on options bought and exercised (India): on the settlement (intrinsic) value
        of a long in-the-money position at expiry.  Nothing else is charged here."""
        if intrinsic_value < 0:
            raise ValueError("intrinsic value is not negative")
        rate = self.rates_on(day).stt_exercise
        return Charges(stt=_round(intrinsic_value * rate, _CENT, self.round_up))


@dataclass(frozen=True, slots=True)
class ChargeTable:
    """Schedules by market and segment, and the rule that picks one for an instrument."""

    schedules: Mapping[tuple[Market, Segment], ChargeSchedule] = field(default_factory=dict)

    def get(self, market: Market, segment: Segment) -> ChargeSchedule:
        try:
            return self.schedules[(market, segment)]
        except KeyError:
            raise ChargesUnavailable(f"no charges for {market.value} {segment.value}") from None

    def for_instrument(self, exchange: str, kind: str, product: str) -> ChargeSchedule:
        """``exchange`` as in the instrument master (NSE, BSE, NFO, NYSE, NASDAQ, OPRA, SIM;
        SIM charges as NSE), ``kind`` its type (equity, etf, future, option), ``product``
        cnc/mis/nrml (it only matters for equities: cnc is delivery, mis intraday)."""
        return self.get(*classify(exchange, kind, product))


_US_EXCHANGES = frozenset({"NYSE", "NASDAQ", "OPRA", "ARCA", "AMEX", "BATS", "IEX", "US"})
_NSE_EXCHANGES = frozenset({"NSE", "NFO", "SIM"})
_BSE_EXCHANGES = frozenset({"BSE", "BFO"})


def classify(exchange: str, kind: str, product: str) -> tuple[Market, Segment]:
    """The (market, segment) whose schedule prices a trade of this instrument."""
    exchange = exchange.upper()
    if kind not in ("equity", "etf", "future", "option"):
        raise ChargesUnavailable(f"a {kind} is not traded")
    if exchange in _US_EXCHANGES:
        return Market.US, (Segment.US_OPTIONS if kind == "option" else Segment.US_EQUITY)
    if exchange == "CDS":
        return Market.NSE, (
            Segment.CURRENCY_OPTIONS if kind == "option" else Segment.CURRENCY_FUTURES
        )
    if exchange == "MCX":
        return Market.MCX, (
            Segment.COMMODITY_OPTIONS if kind == "option" else Segment.COMMODITY_FUTURES
        )
    if exchange in _NSE_EXCHANGES:
        market = Market.NSE
    elif exchange in _BSE_EXCHANGES:
        market = Market.BSE
    else:
        raise ChargesUnavailable(f"no charges known for exchange {exchange}")
    if kind == "future":
        return market, Segment.FUTURES
    if kind == "option":
        return market, Segment.OPTIONS
    return market, (Segment.EQUITY_DELIVERY if product == "cnc" else Segment.EQUITY_INTRADAY)


# --- The table ---------------------------------------------------------------------------

D = Decimal
_Z = "Zerodha charges list, zerodha.com/charges (read 2026-12-03)"
_NSE24 = "NSE circular 2024-09-27: transaction charges from 2024-10-01"
_BSE24 = "BSE circular 2024-09-27: transaction charges from 2024-10-01"
_IPFT = "NSE circular NSE/FA/56129 (2023-03-24): IPFT from 2023-04-01"
_STT13 = "Finance Act 2013, STT from 2013-06-01"
_STT23 = "Finance Act 2023, STT from 2023-04-01"
_STT24 = "Finance (No. 2) Act 2024, STT from 2024-10-01"
_STT26 = "Finance Bill 2026, STT from 2026-04-01"
_STAMP = "Indian Stamp Act s. 9A (Finance Act 2019) and Collection Rules 2019, from 2020-07-01"
_SEBI = "SEBI turnover fee Rs 10 per crore"
_GST = "CGST Act 2017, 18% on services"
_HDFC = "HDFC Sky statutory charges (currency, commodity), read 2026-12-03"
_MII = dt.date(2024, 10, 1)


def _one(since: dt.date, value: str, source: str) -> Table:
    return (Dated(since, D(value), source),)


def _per_crore(rupees: str) -> str:
    return str(D(rupees) / D(10_000_000))


_SEBI_FEE = _one(dt.date(2020, 6, 1), _per_crore("10"), _SEBI)
_GST_RATE = _one(dt.date(2017, 7, 1), "0.18", _GST)
_ZERODHA_ORDER = (Dated(dt.date(2019, 1, 1), Brokerage(pct=D("0.0003"), cap=D(20)), _Z),)
_ZERODHA_FLAT = (Dated(dt.date(2019, 1, 1), Brokerage(flat=D(20)), _Z),)
_ZERO_BROKERAGE = (Dated(dt.date(2019, 1, 1), Brokerage(), _Z),)

_FUTURES_STT: Table = (
    Dated(dt.date(2013, 6, 1), D("0.0001"), _STT13),
    Dated(dt.date(2023, 4, 1), D("0.000125"), _STT23),
    Dated(dt.date(2024, 10, 1), D("0.0002"), _STT24),
    Dated(dt.date(2026, 4, 1), D("0.0005"), _STT26),
)
_OPTIONS_STT: Table = (
    Dated(dt.date(2016, 6, 1), D("0.0005"), "Finance Act 2016, STT from 2016-06-01"),
    Dated(dt.date(2023, 4, 1), D("0.000625"), _STT23),
    Dated(dt.date(2024, 10, 1), D("0.001"), _STT24),
    Dated(dt.date(2026, 4, 1), D("0.0015"), _STT26),
)
_EXERCISE_STT: Table = (
    Dated(dt.date(2016, 6, 1), D("0.00125"), "Finance Act 2016, STT on exercise"),
    Dated(dt.date(2026, 4, 1), D("0.0015"), _STT26),
)


def _india(
    market: Market,
    segment: Segment,
    *,
    brokerage: tuple[Dated[Brokerage], ...],
    exchange: Table,
    stamp: str,
    stt_buy: Table = (),
    stt_sell: Table = (),
    stt_exercise: Table = (),
    ipft: Table = (),
) -> ChargeSchedule:
    return ChargeSchedule(
        market,
        segment,
        "INR",
        brokerage=brokerage,
        stt_buy=stt_buy,
        stt_sell=stt_sell,
        stt_exercise=stt_exercise,
        exchange=exchange,
        ipft=ipft,
        stamp_buy=_one(dt.date(2020, 7, 1), stamp, _STAMP),
        sebi=_SEBI_FEE,
        gst=_GST_RATE,
    )


def _exchange_segments(
    market: Market, equity: Table, futures: Table, options: Table, ipft: tuple[str, str]
) -> list[ChargeSchedule]:
    equity_ipft = _one(dt.date(2023, 4, 1), _per_crore(ipft[0]), _IPFT) if ipft[0] else ()
    options_ipft = _one(dt.date(2023, 4, 1), _per_crore(ipft[1]), _IPFT) if ipft[1] else ()
    return [
        _india(
            market,
            Segment.EQUITY_DELIVERY,
            brokerage=_ZERO_BROKERAGE,
            stt_buy=_one(dt.date(2013, 6, 1), "0.001", _STT13),
            stt_sell=_one(dt.date(2013, 6, 1), "0.001", _STT13),
            exchange=equity,
            ipft=equity_ipft,
            stamp="0.00015",
        ),
        _india(
            market,
            Segment.EQUITY_INTRADAY,
            brokerage=_ZERODHA_ORDER,
            stt_sell=_one(dt.date(2013, 6, 1), "0.00025", _STT13),
            exchange=equity,
            ipft=equity_ipft,
            stamp="0.00003",
        ),
        _india(
            market,
            Segment.FUTURES,
            brokerage=_ZERODHA_ORDER,
            stt_sell=_FUTURES_STT,
            exchange=futures,
            ipft=equity_ipft,
            stamp="0.00002",
        ),
        _india(
            market,
            Segment.OPTIONS,
            brokerage=_ZERODHA_FLAT,
            stt_sell=_OPTIONS_STT,
            stt_exercise=_EXERCISE_STT,
            exchange=options,
            ipft=options_ipft,
            stamp="0.00003",
        ),
    ]


def _us(segment: Segment, taf: tuple[Dated[PerUnit], ...]) -> ChargeSchedule:
    sec = "SEC order making annual adjustments to transaction fee rates"
    return ChargeSchedule(
        Market.US,
        segment,
        "USD",
        brokerage=(Dated(dt.date(2019, 1, 1), Brokerage(), "Alpaca: commission-free"),),
        sec_fee_sell=tuple(
            Dated(since, D(per_million) / D(1_000_000), f"{sec} (${per_million}/M)")
            for since, per_million in (
                (dt.date(2022, 5, 14), "22.90"),
                (dt.date(2023, 2, 27), "8.00"),
                (dt.date(2024, 5, 22), "27.80"),
                (dt.date(2025, 5, 14), "0"),
                (dt.date(2026, 4, 4), "20.60"),
            )
        ),
        taf_sell=taf,
        round_up=True,
    )


_TAF = "FINRA By-Laws Schedule A section 1 (Trading Activity Fee)"
_SCHEDULES: list[ChargeSchedule] = [
    *_exchange_segments(
        Market.NSE,
        equity=_one(_MII, "0.0000297", _NSE24),
        futures=_one(_MII, "0.0000173", _NSE24),
        options=_one(_MII, "0.0003503", _NSE24),
        ipft=("10", "50"),
    ),
    *_exchange_segments(
        Market.BSE,
        equity=_one(dt.date(2022, 12, 1), "0.0000375", _BSE24),
        futures=_one(_MII, "0", _BSE24),
        options=_one(_MII, "0.000325", _BSE24),
        ipft=("", ""),
    ),
    _india(
        Market.NSE,
        Segment.CURRENCY_FUTURES,
        brokerage=_ZERODHA_ORDER,
        exchange=_one(_MII, "0.0000035", _NSE24),
        ipft=_one(_MII, str(D("0.5") / D(100_000)), _IPFT),
        stamp="0.000001",
    ),
    _india(
        Market.NSE,
        Segment.CURRENCY_OPTIONS,
        brokerage=_ZERODHA_FLAT,
        exchange=_one(_MII, "0.000311", _NSE24),
        ipft=_one(_MII, str(D(2) / D(100_000)), _IPFT),
        stamp="0.000001",
    ),
    _india(
        Market.MCX,
        Segment.COMMODITY_FUTURES,
        brokerage=_ZERODHA_ORDER,
        stt_sell=_one(_MII, "0.0001", _HDFC),
        exchange=_one(_MII, "0.000021", _HDFC),
        stamp="0.00002",
    ),
    _india(
        Market.MCX,
        Segment.COMMODITY_OPTIONS,
        brokerage=_ZERODHA_FLAT,
        stt_sell=_one(_MII, "0.0005", _HDFC),
        exchange=_one(_MII, "0.000418", _HDFC),
        stamp="0.00003",
    ),
    _us(
        Segment.US_EQUITY,
        (
            Dated(dt.date(2023, 1, 1), PerUnit(D("0.000145"), D("7.27")), _TAF),
            Dated(dt.date(2024, 1, 1), PerUnit(D("0.000166"), D("8.30")), _TAF),
            Dated(dt.date(2026, 1, 1), PerUnit(D("0.000195"), D("9.79")), _TAF),
        ),
    ),
    _us(Segment.US_OPTIONS, (Dated(dt.date(2024, 1, 1), PerUnit(D("0.00279")), _TAF),)),
]

DEFAULT_CHARGES = ChargeTable({(s.market, s.segment): s for s in _SCHEDULES})
"""The schedules above: Zerodha's brokerage with statutory charges, Alpaca's US fees."""


def fill_charges(
    *,
    exchange: str,
    kind: str,
    product: str,
    side: str,
    price: Decimal,
    quantity: Decimal,
    day: dt.date,
    multiplier: Decimal = Decimal(1),
    order_value_before: Decimal = ZERO,
    table: ChargeTable = DEFAULT_CHARGES,
) -> Charges:
    """One call for the service: the itemised charges of a fill of this instrument."""
    return table.for_instrument(exchange, kind, product).fill(
        side=side,
        price=price,
        quantity=quantity,
        day=day,
        multiplier=multiplier,
        order_value_before=order_value_before,
    )
