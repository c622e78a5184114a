"""Request and response shapes of ``POST /api/v1/analytics/strategies/analyze``.

Prices, strikes, P/L and quantities answer as decimal strings (``WireDecimal``): prices and
money at the request's precision (the most decimals any of its prices has, at least 2, at
most the 8 a request accepts, and at least the tick precision of any leg given by
instrument); quantities and lot sizes exactly as given.  Greeks, IVs, year fractions and the
probability of profit are JSON numbers.

A leg is spelled out (``type``: option, future or underlying, with its strike and expiry) or
names a listed option or future of the instrument master (``instrument``: a key such as
``NFO:NIFTY26DEC24000CE``); such a leg takes its kind, strike, expiry and lot size from the
master (:func:`quantdesk.strategies.service.resolve_instruments`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from quantdesk.platform.decimals import WireDecimal

Price = Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=8)]
NonNegativePrice = Annotated[Decimal, Field(ge=0, max_digits=20, decimal_places=8)]
Lots = Annotated[Decimal, Field(max_digits=12, decimal_places=4)]
Vol = Annotated[float, Field(gt=0, le=10)]
Rate = Annotated[float, Field(ge=-1, le=1)]

TEMPLATE_NAMES = (
    "long_straddle", "short_straddle", "long_strangle", "short_strangle",
    "bull_call_spread", "bear_call_spread", "bull_put_spread", "bear_put_spread",
    "iron_condor", "iron_butterfly", "call_butterfly", "put_butterfly",
    "call_calendar", "put_calendar", "covered_call", "protective_put", "collar",
)  # fmt: skip
TemplateName = Literal[
    "long_straddle", "short_straddle", "long_strangle", "short_strangle",
    "bull_call_spread", "bear_call_spread", "bull_put_spread", "bear_put_spread",
    "iron_condor", "iron_butterfly", "call_butterfly", "put_butterfly",
    "call_calendar", "put_calendar", "covered_call", "protective_put", "collar",
]  # fmt: skip


class _Position(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: Lots = Field(description="Signed lots: +1 one lot long, -2 two lots short")
    entry_price: NonNegativePrice = Field(description="Per unit, as quoted")

    @model_validator(mode="after")
    def _non_zero(self) -> _Position:
        if self.quantity == 0:
            raise ValueError("quantity must not be zero")
        return self


class _LegBase(_Position):
    lot_size: Price = Field(
        default=Decimal(1), description="Units per lot (NIFTY: 65 from the January 2026 expiries)"
    )


class OptionLegIn(_LegBase):
    type: Literal["option"]
    kind: Literal["call", "put"]
    strike: Price
    expiry: date
    iv: Vol = Field(description="Implied volatility of this leg, e.g. 0.14")


class FutureLegIn(_LegBase):
    type: Literal["future"]
    expiry: date


class UnderlyingLegIn(_LegBase):
    type: Literal["underlying"]


class InstrumentLegIn(_Position):
    """A listed option or future by its instrument key; the master gives the rest."""

    instrument: str = Field(
        min_length=3,
        max_length=80,
        description="Instrument key of a listed option or future, e.g. NFO:NIFTY26DEC24000CE; "
        "kind, strike, expiry and lot size (lot size x multiplier) come from the master",
        examples=["NFO:NIFTY26DEC24000CE"],
    )
    iv: Vol | None = Field(default=None, description="Options: implied volatility, e.g. 0.14")


def _leg_tag(value: Any) -> str | None:
    """A leg naming an ``instrument`` is resolved from the master; others say their ``type``."""
    if isinstance(value, dict):
        return "instrument" if "instrument" in value else value.get("type")
    return "instrument" if isinstance(value, InstrumentLegIn) else getattr(value, "type", None)


LegIn = Annotated[
    Annotated[OptionLegIn, Tag("option")]
    | Annotated[FutureLegIn, Tag("future")]
    | Annotated[UnderlyingLegIn, Tag("underlying")]
    | Annotated[InstrumentLegIn, Tag("instrument")],
    Discriminator(
        _leg_tag,
        custom_error_type="leg_kind",
        custom_error_message="a leg needs `type` (option, future or underlying) or `instrument`",
    ),
]
ExplicitLeg = OptionLegIn | FutureLegIn | UnderlyingLegIn


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TemplateName
    strikes: dict[str, Price] = Field(
        description="The template's strikes by name, e.g. iron_condor: long_put, short_put, "
        "short_call, long_call; straddle: strike; verticals: lower, upper; iron_butterfly: "
        "strike, width"
    )
    expiry: date | None = Field(default=None, description="Expiry (not for calendars)")
    near_expiry: date | None = Field(default=None, description="Calendars: the sold expiry")
    far_expiry: date | None = Field(default=None, description="Calendars: the bought expiry")
    iv: Vol = Field(description="Implied volatility used to price the legs at entry")
    lots: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=4)] = Decimal(1)
    lot_size: Price = Decimal(1)
    entry_prices: list[NonNegativePrice] | None = Field(
        default=None, description="Actual fills per unit, in leg order; default: model prices"
    )


class StrategyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spot: Price = Field(description="Underlying price now")
    valuation_date: date | None = Field(default=None, description="Default: today (UTC)")
    r: Rate = Field(default=0.0, description="Continuously compounded risk-free rate")
    q: Rate = Field(default=0.0, description="Continuous dividend yield")
    legs: list[LegIn] | None = Field(default=None, min_length=1, max_length=50)
    template: TemplateIn | None = None
    pop_vol: Vol | None = Field(default=None, description="Default: the ATM leg's IV")
    horizon_date: date | None = Field(default=None, description="Adds a T+n P/L curve")
    grid_points: int = Field(default=201, ge=2, le=5001)

    @model_validator(mode="after")
    def _legs_or_template(self) -> StrategyRequest:
        if (self.legs is None) == (self.template is None):
            raise ValueError("give exactly one of `legs` or `template`")
        return self


class LegOut(BaseModel):
    type: Literal["option", "future", "underlying"]
    instrument: str | None = Field(default=None, description="The key the leg was given by")
    kind: Literal["call", "put"] | None = None
    strike: WireDecimal | None = None
    expiry_years: float | None = None
    iv: float | None = None
    quantity: WireDecimal
    lot_size: WireDecimal
    entry_price: WireDecimal


class NetGreeksOut(BaseModel):
    delta: float
    gamma: float
    vega: float
    theta: float
    theta_per_day: float
    rho: float
    vanna: float
    volga: float
    charm: float


class StrategyResponse(BaseModel):
    spot: WireDecimal
    valuation_date: date
    expiry_years: float = Field(description="First expiry, years from valuation (ACT/365)")
    legs: list[LegOut]
    grid: list[WireDecimal] = Field(description="Underlying prices of the payoff curves")
    expiry_pnl: list[WireDecimal] = Field(description="P/L at the first expiry, per grid price")
    today_pnl: list[WireDecimal] = Field(description="P/L today at the legs' IVs (T+0)")
    horizon_pnl: list[WireDecimal] | None = None
    breakevens: list[WireDecimal]
    max_profit: WireDecimal | None = Field(description="null when unlimited")
    max_loss: WireDecimal | None = Field(
        description="Lowest P/L (negative for a loss); null when unlimited"
    )
    unlimited_profit: bool
    unlimited_loss: bool
    probability_of_profit: float | None
    pop_vol: float | None
    net_premium: WireDecimal = Field(
        description="Σ premium × quantity × lot size (positive = paid)"
    )
    net_greeks: NetGreeksOut
