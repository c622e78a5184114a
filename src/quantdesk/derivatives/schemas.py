"""Request/response shapes of the derivatives analytics: batch pricing and implied vol,
option chains and futures.

A batch is a set of equal-length columns; any column may instead be a single value that
applies to every row (NumPy broadcasting).  Inputs may be JSON numbers or decimal strings.

On the wire (DESIGN.md, issue 19): prices, premiums, strikes, levels and lot sizes answer as
exact decimal strings (``WireDecimal``; chain and futures prices at the instrument's tick
precision, batch model prices at 6 places), and so do the quantities open interest, its
change and volume, exactly as the quotes carry them (``/market/quotes`` sends the same
strings); Greeks, IVs, rates, year fractions, percentages and ratios are JSON numbers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from quantdesk.platform.decimals import DECIMAL_PATTERN, WireDecimal

MAX_BATCH_ROWS = 100_000

Column = list[float] | float
# A price input of the float64 pricing core: a JSON number or a decimal string (``"245.35"``),
# documented as both so that no price is declared a bare number.
PriceValue = Annotated[
    float,
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": DECIMAL_PATTERN}]}),
]
PriceColumn = list[PriceValue] | PriceValue
KindColumn = list[Literal["call", "put", "c", "p", "ce", "pe"]] | Literal["call", "put"]


class _Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Literal["bsm", "black76"] = Field(
        default="bsm",
        description="bsm: Black-Scholes-Merton on spot with dividend yield q; black76: "
        "`spot` is the futures/forward price.",
    )
    kind: KindColumn = Field(description='"call" or "put" per row, or one for all rows')
    spot: PriceColumn = Field(description="Underlying price (or futures price for black76)")
    strike: PriceColumn
    t: Column = Field(description="Time to expiry in years (ACT/365: calendar days / 365)")
    r: Column = Field(default=0.0, description="Continuously compounded risk-free rate")
    q: Column = Field(default=0.0, description="Continuous dividend yield (bsm only)")


class GreeksRequest(_Batch):
    sigma: Column = Field(description="Annual volatility, e.g. 0.2 for 20%")


class ImpliedVolRequest(_Batch):
    price: PriceColumn = Field(description="Option premium per unit of the underlying")


class GreeksResponse(BaseModel):
    rows: int
    price: list[WireDecimal | None] = Field(
        description="Model price as a decimal string (null when invalid)"
    )
    delta: list[float | None]
    gamma: list[float | None]
    vega: list[float | None] = Field(description="Per 1.00 of volatility")
    vega_per_point: list[float | None] = Field(description="Per 1 volatility point (vega / 100)")
    theta: list[float | None] = Field(description="Per year of calendar time")
    theta_per_day: list[float | None] = Field(description="Per calendar day (theta / 365)")
    rho: list[float | None] = Field(description="Per 1.00 of rate")
    vanna: list[float | None]
    volga: list[float | None]
    charm: list[float | None] = Field(description="Delta decay per year")


class ImpliedVolResponse(BaseModel):
    rows: int
    iv: list[float | None] = Field(description="Implied volatility; null where not solvable")
    reason: list[str] = Field(
        description="ok, below_intrinsic, above_upper_bound, non_positive_time, "
        "invalid_input or no_convergence"
    )


# --- chain and futures analytics (served through the fast JSON path; these document it) ---
# Decimals: prices and strikes at the contracts' tick precision, exact where they come from a
# quote or the master (marks, last, strikes, basis, spreads), rounded half-even at that
# precision where a model computes them (forward, expected move, fair value).
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChainSideOut(_Strict):
    """One column per field, one row per strike of ``strikes``; null where not listed."""

    key: list[str | None]
    last: list[WireDecimal | None]
    mark: list[WireDecimal | None] = Field(
        description="Mid of bid/ask (half-even at the tick precision), else the last price; "
        "IV and Greeks are computed at this mark"
    )
    oi: list[WireDecimal | None] = Field(description="Open interest, contracts, as quoted")
    oi_change: list[WireDecimal | None] = Field(
        description="Open interest minus the previous session's, exact; null without either"
    )
    volume: list[WireDecimal | None] = Field(description="The session's volume, as quoted")
    iv: list[float | None]
    iv_reason: list[str] = Field(description="ok, no_price, below_intrinsic, ...")
    delta: list[float | None]
    gamma: list[float | None]
    theta_per_day: list[float | None]
    vega_per_point: list[float | None]
    buildup: list[str] | None = Field(
        description="long_buildup, short_buildup, short_covering, long_unwinding, neutral"
    )


class SkewOut(_Strict):
    call_iv: float | None
    put_iv: float | None
    risk_reversal: float | None = Field(description="25-delta call IV minus put IV")
    butterfly: float | None


class ExpectedMoveOut(_Strict):
    straddle: WireDecimal | None = Field(
        description="Call + put mark at the strike nearest the forward"
    )
    pct: float | None = Field(description="The straddle as % of the forward")
    lower: WireDecimal | None = Field(description="Forward minus the straddle")
    upper: WireDecimal | None = Field(description="Forward plus the straddle")


class ChainOut(_Strict):
    underlying: str
    expiry: str
    spot: WireDecimal
    spot_key: str
    forward: WireDecimal | None = Field(description="Cost-of-carry forward of the spot")
    t_years: float
    r: float
    q: float
    lot_size: WireDecimal
    atm_strike: WireDecimal | None = Field(description="The listed strike nearest the forward")
    atm_iv: float | None
    max_pain: WireDecimal | None = Field(description="A listed strike")
    pcr_oi: float | None
    pcr_volume: float | None
    skew_25d: SkewOut
    gex_total: float | None
    expected_move: ExpectedMoveOut | None
    strikes: list[WireDecimal] = Field(description="Listed strikes, ascending")
    smile: list[float | None]
    gex: list[float | None] | None
    calls: ChainSideOut
    puts: ChainSideOut


class FuturesContractOut(_Strict):
    key: str
    expiry: str
    days_to_expiry: float
    price: WireDecimal = Field(description="Last price")
    basis: WireDecimal = Field(description="Price minus spot, exact")
    basis_pct: float | None
    annualised_carry: float | None
    fair_value: WireDecimal | None = Field(description="Spot x e^(r t), at the tick precision")
    oi: WireDecimal | None = Field(description="Open interest, contracts, as quoted")
    oi_change: WireDecimal | None = Field(
        description="Open interest minus the previous session's, exact; null without either"
    )
    price_change: WireDecimal | None = Field(description="Change since the previous close")
    buildup: str


class FuturesOut(_Strict):
    underlying: str
    spot: WireDecimal
    spot_key: str
    r: float
    contracts: list[FuturesContractOut]
    rollover_pct: float | None
    calendar_spread: WireDecimal | None = Field(description="Next minus near price, exact")
