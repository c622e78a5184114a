"""Request and response shapes of ``POST /api/v1/analytics/strategies/analyze``.

Prices, strikes, P/L and quantities answer as decimal strings (``WireDecimal``): prices and
money at the request's precision (the most decimals any of its prices has, at least 2, at
most the 8 a request accepts); quantities and lot sizes exactly as given.  Greeks, IVs,
year fractions and the probability of profit are JSON numbers.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class _LegBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: Lots = Field(description="Signed lots: +1 one lot long, -2 two lots short")
    entry_price: NonNegativePrice = Field(description="Per unit, as quoted")
    lot_size: Price = Field(
        default=Decimal(1), description="Units per lot (NIFTY: 65 from the January 2026 expiries)"
    )

    @model_validator(mode="after")
    def _non_zero(self) -> _LegBase:
        if self.quantity == 0:
            raise ValueError("quantity must not be zero")
        return self


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


LegIn = Annotated[OptionLegIn | FutureLegIn | UnderlyingLegIn, Field(discriminator="type")]


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
