"""API shapes of the market-data endpoints.

Decimals are ``WireDecimal``: JSON strings in positional notation (``"21600"``, never
``"2.16E+4"``), whatever form the stored Decimal has.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import Path
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)

from quantdesk.marketdata.calendars import Expiry, Holiday, MarketStatus, Session
from quantdesk.marketdata.domain import (
    Exchange,
    Instrument,
    InstrumentType,
    OptionType,
    Quote,
    Trade,
)
from quantdesk.marketdata.instruments.importers import ImportFormat, ImportReport
from quantdesk.marketdata.models import CorporateActionRow
from quantdesk.platform.decimals import WireDecimal
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.platform.pagination import Page


class InstrumentOut(BaseModel):
    key: str = Field(examples=["NSE:RELIANCE", "NFO:NIFTY25SEP24500CE"])
    exchange: Exchange
    symbol: str
    name: str
    type: InstrumentType
    currency: str
    lot_size: WireDecimal
    tick_size: WireDecimal
    multiplier: WireDecimal
    underlying: str | None = None
    expiry: dt.date | None = None
    strike: WireDecimal | None = None
    option_type: OptionType | None = None
    isin: str | None = None
    sector: str | None = None
    active: bool

    @classmethod
    def of(cls, instrument: Instrument) -> InstrumentOut:
        return cls(
            key=instrument.key,
            exchange=instrument.exchange,
            symbol=instrument.symbol,
            name=instrument.name,
            type=instrument.type,
            currency=instrument.currency,
            lot_size=instrument.lot_size,
            tick_size=instrument.tick_size,
            multiplier=instrument.multiplier,
            underlying=instrument.underlying,
            expiry=instrument.expiry,
            strike=instrument.strike,
            option_type=instrument.option_type,
            isin=instrument.isin,
            sector=instrument.sector,
            active=instrument.active,
        )


class InstrumentPage(Page[InstrumentOut]):
    pass


class ChainStrike(BaseModel):
    strike: WireDecimal
    call: InstrumentOut | None = None
    put: InstrumentOut | None = None


class OptionChain(BaseModel):
    underlying: str
    expiry: dt.date
    strikes: list[ChainStrike]


class ExpiryList(BaseModel):
    underlying: str
    expiries: list[dt.date]


class ImportReportOut(BaseModel):
    format: ImportFormat
    inserted: int
    updated: int
    unchanged: int
    skipped: int = Field(description="Rows of exchanges quantdesk does not list (Kite dumps).")

    @classmethod
    def of(cls, report: ImportReport) -> ImportReportOut:
        return cls(
            format=report.format,
            inserted=report.inserted,
            updated=report.updated,
            unchanged=report.unchanged,
            skipped=report.skipped,
        )


class BarsColumnar(BaseModel):
    """``shape=columnar``: one array per field, index i of each array is bar i."""

    key: str
    timeframe: str
    t: list[int] = Field(description="Bar open time, Unix seconds (UTC).")
    o: list[WireDecimal]
    h: list[WireDecimal]
    l: list[WireDecimal]  # noqa: E741 - the columnar field names are the charting convention
    c: list[WireDecimal]
    v: list[WireDecimal]
    oi: list[WireDecimal | None]


class BarOut(BaseModel):
    ts: dt.datetime = Field(description="Bar open time, ISO 8601 UTC.")
    open: WireDecimal
    high: WireDecimal
    low: WireDecimal
    close: WireDecimal
    volume: WireDecimal
    oi: WireDecimal | None


class BarsRows(BaseModel):
    """``shape=rows``: one object per bar."""

    key: str
    timeframe: str
    bars: list[BarOut]


class QuoteOut(BaseModel):
    key: str
    last: WireDecimal
    bid: WireDecimal | None = None
    ask: WireDecimal | None = None
    bid_size: WireDecimal | None = None
    ask_size: WireDecimal | None = None
    volume: WireDecimal | None = None
    oi: WireDecimal | None = None
    change: WireDecimal | None = None
    prev_close: WireDecimal | None = None
    prev_oi: WireDecimal | None = Field(default=None, description="OI at the previous close")
    ts: dt.datetime
    source_id: str | None = Field(
        default=None, description="This quote's unique id (fills it causes are keyed by it)"
    )

    @classmethod
    def of(cls, quote: Quote) -> QuoteOut:
        return cls(
            key=quote.key,
            last=quote.last,
            bid=quote.bid,
            ask=quote.ask,
            bid_size=quote.bid_size,
            ask_size=quote.ask_size,
            volume=quote.volume,
            oi=quote.oi,
            change=quote.change,
            prev_close=quote.prev_close,
            prev_oi=quote.prev_oi,
            ts=quote.ts,
            source_id=quote.source_id or None,
        )


class QuotesOut(BaseModel):
    quotes: list[QuoteOut]
    missing: list[str] = Field(description="Requested keys with no quote yet.")


class TradeOut(BaseModel):
    """One trade print, as published on ``trades.<KEY>``."""

    key: str = Field(examples=["SIM:ALPHA"])
    price: WireDecimal
    size: WireDecimal
    ts: dt.datetime
    source_id: str = Field(description="This print's unique id (fills it causes are keyed by it)")

    @classmethod
    def of(cls, trade: Trade) -> TradeOut:
        return cls(
            key=trade.key,
            price=trade.price,
            size=trade.size,
            ts=trade.ts,
            source_id=trade.source_id,
        )


# -- demo scripting (admins) ---------------------------------------------------------------

# Decimal strings ("100.05") or JSON numbers; finite, positive, at most 8 places.
ScriptedPrice = Annotated[
    Decimal, Field(gt=0, max_digits=20, decimal_places=8, allow_inf_nan=False)
]
ScriptedKey = Annotated[str, Field(min_length=3, max_length=80, examples=["SIM:ALPHA"])]


class ScriptedQuoteIn(BaseModel):
    """A SIM instrument's book and last price; prices on its tick grid, ``bid <= ask``."""

    model_config = ConfigDict(extra="forbid")

    key: ScriptedKey
    bid: ScriptedPrice = Field(examples=["99.95"])
    bid_size: ScriptedPrice = Field(examples=["500"])
    ask: ScriptedPrice = Field(examples=["100.05"])
    ask_size: ScriptedPrice = Field(examples=["300"])
    last: ScriptedPrice = Field(examples=["100.00"])

    @model_validator(mode="after")
    def _not_crossed(self) -> ScriptedQuoteIn:
        if self.bid > self.ask:
            raise ValueError(f"bid {self.bid} is above ask {self.ask}")
        return self


class ScriptedTradeIn(BaseModel):
    """A trade print on a SIM instrument: ``size`` units at ``price`` (on its tick grid)."""

    model_config = ConfigDict(extra="forbid")

    key: ScriptedKey
    price: ScriptedPrice = Field(examples=["101.00"])
    size: ScriptedPrice = Field(examples=["40"])


# -- calendars ---------------------------------------------------------------------------


PROVISIONAL = Field(
    default=False,
    description="Built from the exchange's rules and a maintained holiday source because its "
    "official list for that year is not loaded yet: it may still change.",
)


class TradingSessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    date: dt.date = Field(description="The exchange-local trading date.")
    open: dt.datetime
    close: dt.datetime
    kind: str = Field(examples=["regular", "early_close", "special"])
    name: str | None = None
    provisional: bool = PROVISIONAL

    @classmethod
    def of(cls, session: Session) -> TradingSessionOut:
        return cls(
            date=session.date,
            open=session.open_utc,
            close=session.close_utc,
            kind=session.kind,
            name=session.name,
            provisional=session.provisional,
        )


class MarketStatusOut(BaseModel):
    exchange: str
    at: dt.datetime
    is_open: bool
    session: TradingSessionOut | None
    next_open: dt.datetime
    next_close: dt.datetime

    @classmethod
    def of(cls, status: MarketStatus) -> MarketStatusOut:
        return cls(
            exchange=status.exchange,
            at=status.at,
            is_open=status.is_open,
            session=TradingSessionOut.of(status.session) if status.session else None,
            next_open=status.next_open,
            next_close=status.next_close,
        )


class SessionsOut(BaseModel):
    exchange: str
    sessions: list[TradingSessionOut]


class HolidayOut(BaseModel):
    date: dt.date
    name: str | None = Field(
        description='Lunar-calendar dates of a provisional year say "(estimated)".'
    )
    provisional: bool = PROVISIONAL

    @classmethod
    def of(cls, holiday: Holiday) -> HolidayOut:
        return cls(date=holiday.date, name=holiday.name, provisional=holiday.provisional)


class HolidaysOut(BaseModel):
    exchange: str
    year: int
    provisional: bool = PROVISIONAL
    holidays: list[HolidayOut]


class ExpiryOut(BaseModel):
    date: dt.date
    kind: str = Field(examples=["weekly", "monthly"])
    provisional: bool = PROVISIONAL

    @classmethod
    def of(cls, expiry: Expiry) -> ExpiryOut:
        return cls(date=expiry.date, kind=expiry.kind, provisional=expiry.provisional)


class ExpiriesOut(BaseModel):
    exchange: str
    underlying: str
    expiries: list[ExpiryOut]


KeyPath = Annotated[
    str,
    Path(
        description="Instrument key EXCHANGE:SYMBOL, e.g. NSE:RELIANCE or NSE:NIFTY%2050",
        max_length=80,
    ),
]


# -- time bounds of bar queries (``from``/``to``) -----------------------------------------

_UNIX = re.compile(r"^-?\d+(\.\d+)?$")


def _time_bound(value: object) -> dt.datetime | dt.date:
    """A date (the exchange's local day), an ISO time with ``Z`` or an offset, or Unix
    seconds, between 1900 and 2200 (beyond, date arithmetic overflows; no bar lives there).
    A time without a zone is refused: its meaning depends on where it was typed."""
    try:
        bound = _parsed_bound(value)
    except (OverflowError, OSError):
        raise ValueError("the time is out of range (1900-2200)") from None
    if not 1900 <= bound.year <= 2200:
        raise ValueError("the time is out of range (1900-2200)")
    return bound


def _parsed_bound(value: object) -> dt.datetime | dt.date:
    if isinstance(value, dt.datetime):
        return value  # a naive one is refused by start_of/end_of, naming the parameter's forms
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if _UNIX.match(text):
        return dt.datetime.fromtimestamp(float(text), dt.UTC)
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        at = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date (2025-01-31), an ISO time with a zone "
            "(2025-01-31T09:15:00+05:30) or Unix seconds"
        ) from None
    return _parsed_bound(at)


TimeBound = Annotated[
    dt.datetime | dt.date,
    PlainValidator(_time_bound),
    WithJsonSchema(
        {
            "type": "string",
            "description": "A date (the exchange's local day: `from` is its start, `to` its "
            "end), an ISO 8601 time with `Z` or an offset, or Unix seconds",
            "examples": ["2025-01-31", "2025-01-31T09:15:00+05:30", "1738294500"],
        }
    ),
]
"""The one type of the ``from``/``to`` query parameters of every bars endpoint."""


def start_of(bound: dt.datetime | dt.date | None, zone: ZoneInfo) -> dt.datetime | None:
    """``from`` as an instant: a date is the start of that day on the exchange's clock."""
    if isinstance(bound, dt.datetime) and bound.utcoffset() is None:
        raise InvalidInput(
            "a time needs a timezone (Z or an offset); or give a date (the exchange's local "
            "day) or Unix seconds"
        )
    if bound is None or isinstance(bound, dt.datetime):
        return bound
    return dt.datetime.combine(bound, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def end_of(bound: dt.datetime | dt.date | None, zone: ZoneInfo) -> dt.datetime | None:
    """``to`` as an (exclusive) instant: a date runs to the end of that local day."""
    if bound is None or isinstance(bound, dt.datetime):
        return start_of(bound, zone)
    return start_of(bound + dt.timedelta(days=1), zone)


class IndicatorParameter(BaseModel):
    name: str = Field(description="TA-Lib's name, passed as a query parameter")
    default: int | float | str | None


class IndicatorInfo(BaseModel):
    """One entry of ``GET /api/v1/analytics/indicators``."""

    name: str
    inputs: list[str] = Field(description="The bar fields it reads, e.g. high, low, close")
    parameters: list[IndicatorParameter]
    outputs: list[str] = Field(description="The keys of ``values`` in its response")


class IndicatorOut(BaseModel):
    """An indicator over stored bars: bar open times and one float column per output."""

    model_config = ConfigDict(extra="forbid")

    instrument: str
    indicator: str
    timeframe: str
    params: dict[str, int | float | str]
    t: list[int] = Field(description="Bar open times, Unix seconds")
    values: dict[str, list[float | None]] = Field(
        description="One column per output (e.g. macd, signal, histogram); null in warm-up"
    )


# --- corporate actions ----------------------------------------------------------------------
ActionTerm = Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=8)]


class CorporateActionIn(BaseModel):
    """``split``: ``new`` shares for every ``old`` (face value 10 to 2 is 1:5); ``bonus``:
    ``bonus`` new shares for every ``held``; ``dividend``: ``per_share``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["split", "bonus", "dividend"]
    ex_date: dt.date = Field(description="After today: holdings at its start are entitled")
    old: ActionTerm | None = None
    new: ActionTerm | None = None
    bonus: ActionTerm | None = None
    held: ActionTerm | None = None
    per_share: ActionTerm | None = None
    fraction_price: ActionTerm | None = Field(
        default=None,
        description="Split or bonus: pay a fractional entitlement in cash at this price per "
        "share (default: the fraction is dropped, its cost stays with the whole shares)",
    )

    @model_validator(mode="after")
    def _terms_match_kind(self) -> CorporateActionIn:
        wanted = {"split": {"old", "new"}, "bonus": {"bonus", "held"}, "dividend": {"per_share"}}
        terms = {"old", "new", "bonus", "held", "per_share"}
        given = {name for name in terms if getattr(self, name) is not None}
        if given != wanted[self.kind]:
            raise ValueError(f"a {self.kind} takes {', '.join(sorted(wanted[self.kind]))}")
        if self.kind == "dividend" and self.fraction_price is not None:
            raise ValueError("a dividend has no fractional entitlement")
        return self


class CorporateActionOut(BaseModel):
    id: int
    instrument: str
    kind: str
    ex_date: dt.date
    old: WireDecimal | None
    new: WireDecimal | None
    bonus: WireDecimal | None
    held: WireDecimal | None
    per_share: WireDecimal | None
    fraction_price: WireDecimal | None
    created_at: dt.datetime

    @classmethod
    def of(cls, row: CorporateActionRow) -> CorporateActionOut:
        return cls.model_validate(row, from_attributes=True)


class CorporateActionList(BaseModel):
    items: list[CorporateActionOut]
