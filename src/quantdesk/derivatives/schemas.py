"""Columnar request/response shapes for batch option pricing and implied volatility.

A batch is a set of equal-length columns; any column may instead be a single value that
applies to every row (NumPy broadcasting).  Numbers may be JSON numbers or decimal strings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.platform.decimals import WireDecimal

MAX_BATCH_ROWS = 100_000

Column = list[float] | float
KindColumn = list[Literal["call", "put", "c", "p", "ce", "pe"]] | Literal["call", "put"]


class _Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Literal["bsm", "black76"] = Field(
        default="bsm",
        description="bsm: Black-Scholes-Merton on spot with dividend yield q; black76: "
        "`spot` is the futures/forward price.",
    )
    kind: KindColumn = Field(description='"call" or "put" per row, or one for all rows')
    spot: Column = Field(description="Underlying price (or futures price for black76)")
    strike: Column
    t: Column = Field(description="Time to expiry in years (ACT/365: calendar days / 365)")
    r: Column = Field(default=0.0, description="Continuously compounded risk-free rate")
    q: Column = Field(default=0.0, description="Continuous dividend yield (bsm only)")


class GreeksRequest(_Batch):
    sigma: Column = Field(description="Annual volatility, e.g. 0.2 for 20%")


class ImpliedVolRequest(_Batch):
    price: Column = Field(description="Option premium per unit of the underlying")


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
# Strikes, forward and levels are still JSON numbers here; prices, spot and lot size are
# exact decimal strings (see docs/analytics.md).
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChainSideOut(_Strict):
    """One column per field, one row per strike of ``strikes``; null where not listed."""

    key: list[str | None]
    last: list[str | None]
    mark: list[str | None] = Field(description="Mid of bid/ask, else the last price")
    oi: list[float | None]
    oi_change: list[float | None]
    volume: list[float | None]
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
    straddle: float | None
    pct: float | None
    lower: float | None
    upper: float | None


class ChainOut(_Strict):
    underlying: str
    expiry: str
    spot: str
    spot_key: str
    forward: float
    t_years: float
    r: float
    q: float
    lot_size: str
    atm_strike: float | None
    atm_iv: float | None
    max_pain: float | None
    pcr_oi: float | None
    pcr_volume: float | None
    skew_25d: SkewOut
    gex_total: float | None
    expected_move: ExpectedMoveOut | None
    strikes: list[float]
    smile: list[float | None]
    gex: list[float | None] | None
    calls: ChainSideOut
    puts: ChainSideOut


class FuturesContractOut(_Strict):
    key: str
    expiry: str
    days_to_expiry: float
    price: str
    basis: str | None
    basis_pct: float | None
    annualised_carry: float | None
    fair_value: str | None
    oi: float | None
    oi_change: float | None
    price_change: float | None
    buildup: str


class FuturesOut(_Strict):
    underlying: str
    spot: str
    spot_key: str
    r: float
    contracts: list[FuturesContractOut]
    rollover_pct: float | None
    calendar_spread: str | None
