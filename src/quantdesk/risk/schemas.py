"""Request and response shapes of ``/api/v1/risk``: measures, optimisation, scenarios.

Returns, weights, ratios and VaR figures are JSON numbers (fractions: 0.021 is 2.1%); money
(scenario P&L, VaR of a book, allocation cash, prices) answers as decimal strings.  VaR,
CVaR and drawdowns are **positive loss fractions** where they are losses.  Where a measure
is undefined (a Sharpe ratio of constant returns, a Sortino ratio with no bad day) it is
``null``.

Data comes from exactly one source per request: ``returns`` (simple daily returns),
``prices`` (daily closes, turned into simple returns) or ``symbols`` (instrument keys whose
stored daily bars are read; their closes are aligned on the days every symbol traded).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quantdesk.platform.decimals import WireDecimal

MAX_DAYS = 20_000
MAX_ASSETS = 500

# A simple daily return: finite, above -100%, at most +1,000% (anything else is bad data).
Return = Annotated[float, Field(gt=-1, le=10, allow_inf_nan=False)]
Weight = Annotated[float, Field(ge=-100, le=100, allow_inf_nan=False)]
Series = Annotated[list[Return], Field(min_length=2, max_length=MAX_DAYS)]
Columns = Annotated[dict[str, Series], Field(min_length=1, max_length=MAX_ASSETS)]
# Prices are money: decimal strings (or JSON numbers) on the way in, as everywhere.
PriceSeries = Annotated[
    list[Annotated[Decimal, Field(gt=0, max_digits=24, decimal_places=8)]],
    Field(min_length=2, max_length=MAX_DAYS),
]
PriceColumns = Annotated[dict[str, PriceSeries], Field(min_length=1, max_length=MAX_ASSETS)]
Confidence = Annotated[float, Field(gt=0.5, lt=1.0)]
AnnualRate = Annotated[float, Field(ge=-1, le=1)]
Money = Annotated[Decimal, Field(gt=0, max_digits=24, decimal_places=8)]
Symbols = Annotated[list[str], Field(min_length=1, max_length=MAX_ASSETS)]

HistoricalRule = Literal["linear", "lower"]
ShortfallRule = Literal["empyrical", "tail_mean", "rockafellar_uryasev"]
Objective = Literal[
    "max_sharpe", "min_volatility", "efficient_return", "efficient_risk", "risk_parity", "hrp"
]
ReturnModel = Literal["mean_historical", "ema_historical", "capm"]
RiskModel = Literal["sample", "exp_cov", "ledoit_wolf"]
Linkage = Literal["single", "complete", "average", "weighted", "centroid", "median", "ward"]


class _Data(BaseModel):
    """One data source: ``returns``, ``prices`` or ``symbols``."""

    model_config = ConfigDict(extra="forbid")

    symbols: Symbols | None = Field(
        default=None,
        description="Instrument keys (``NSE:RELIANCE``): their stored daily closes are used",
    )
    lookback_days: Annotated[int, Field(ge=10, le=10_000)] = Field(
        default=365, description="With `symbols`: calendar days of daily bars up to today"
    )
    periods_per_year: Annotated[float, Field(gt=0, le=366)] = Field(
        default=252, description="Annualisation: 252 trading days, sqrt-time for volatility"
    )

    def sources(self) -> list[str]:
        return [
            name
            for name in ("returns", "prices", "symbols")
            if getattr(self, name, None) is not None
        ]

    @model_validator(mode="after")
    def _one_source(self) -> _Data:
        given = self.sources()
        if len(given) != 1:
            raise ValueError("give exactly one of `returns`, `prices` or `symbols`")
        return self


# --- measures ------------------------------------------------------------------------------
class MonteCarloIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    simulations: Annotated[int, Field(ge=100, le=200_000)] = 10_000
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0


class MeasuresRequest(_Data):
    returns: Series | Columns | None = Field(
        default=None,
        description="One series of simple daily returns, or columns (asset -> returns of equal "
        "length) with `weights`",
    )
    prices: PriceSeries | PriceColumns | None = Field(
        default=None, description="Daily closes instead of returns (one series or columns)"
    )
    weights: dict[str, Weight] | None = Field(
        default=None,
        description="With columns: the portfolio's weights (held constant: rebalanced daily)",
    )
    confidence: Confidence = 0.95
    horizon_days: Annotated[int, Field(ge=1, le=250)] = 1
    risk_free_rate: AnnualRate = Field(
        default=0.0, description="Annual; the daily rate is rate / periods_per_year"
    )
    benchmark: Series | None = Field(
        default=None, description="Benchmark returns for beta and correlation (same length)"
    )
    historical_rule: HistoricalRule = Field(
        default="linear", description="VaR quantile: linear (empyrical) or lower (riskfolio)"
    )
    cvar_rule: ShortfallRule = Field(
        default="empyrical", description="Historical CVaR rule (see docs/risk.md)"
    )
    monte_carlo: MonteCarloIn | None = Field(
        default_factory=MonteCarloIn, description="null to skip the Monte Carlo figures"
    )
    rolling_window: Annotated[int, Field(ge=2, le=MAX_DAYS)] | None = Field(
        default=None,
        description="Also return rolling volatility, downside deviation, Sharpe, Sortino, "
        "Calmar, max drawdown (and beta, correlation with `benchmark`)",
    )


class ComponentOut(BaseModel):
    asset: str
    weight: float
    marginal_var: float | None = Field(description="d VaR / d weight (parametric normal)")
    component_var: float | None = Field(
        description="weight x marginal; the components add up to VaR"
    )
    percent_of_var: float | None


class RollingOut(BaseModel):
    """Each measure over every trailing `window` of days: row i covers days i .. i + window - 1."""

    window: int
    volatility: list[float | None]
    downside_deviation: list[float | None]
    sharpe: list[float | None]
    sortino: list[float | None]
    calmar: list[float | None]
    max_drawdown: list[float | None]
    beta: list[float | None] | None = Field(description="With `benchmark`, else null")
    correlation: list[float | None] | None = Field(description="With `benchmark`, else null")


class MeasuresResponse(BaseModel):
    observations: int
    confidence: float
    horizon_days: int
    var_historical: float | None
    cvar_historical: float | None
    var_parametric: float | None
    cvar_parametric: float | None
    var_cornish_fisher: float | None
    var_monte_carlo: float | None
    cvar_monte_carlo: float | None
    volatility: float | None
    downside_deviation: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float | None
    drawdown_duration: int = Field(description="Longest spell under a previous peak, in days")
    annual_return: float | None = Field(description="Compound annual growth rate")
    beta: float | None
    correlation: float | None
    components: list[ComponentOut] | None
    rolling: RollingOut | None
    skipped: list[str] = Field(
        default_factory=list, description="Positions left out (account measures), and why"
    )


# --- optimisation --------------------------------------------------------------------------
Bound = tuple[Annotated[float, Field(ge=-10, le=10)], Annotated[float, Field(ge=-10, le=10)]]


class AllocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Money = Field(description="Cash to allocate")
    latest_prices: dict[str, Money] | None = Field(
        default=None, description="Per unit; default: the last of `prices` or of the bars"
    )
    lot_sizes: dict[str, Annotated[Decimal, Field(ge=1, le=1_000_000, decimal_places=0)]] | None = (
        Field(
            default=None, description="Units per lot (F&O); assets not named trade in single units"
        )
    )
    short_ratio: Annotated[float, Field(ge=0, le=10)] | None = Field(
        default=None,
        description="With negative weights: the short book's size as a fraction of `value` "
        "(0.3 for 130/30); default: the sum of the negative weights. Short proceeds are not "
        "reinvested",
    )


class OptimizeRequest(_Data):
    returns: Columns | None = Field(
        default=None, description="Columns: asset -> simple daily returns, equal lengths"
    )
    prices: PriceColumns | None = Field(default=None, description="Columns of daily closes")
    objective: Objective = "max_sharpe"
    risk_free_rate: AnnualRate = 0.0
    target_return: Annotated[float, Field(ge=-10, le=10)] | None = None
    target_volatility: Annotated[float, Field(gt=0, le=10)] | None = None
    bounds: Bound | dict[str, Bound] = Field(
        default=(0.0, 1.0),
        description="(lower, upper) for every asset, or per asset; negative lower bounds allow "
        "shorts (long-short). Ignored by risk_parity and hrp (long-only by construction)",
    )
    sectors: dict[str, str] | None = Field(default=None, description="asset -> sector")
    sector_lower: dict[str, Weight] | None = None
    sector_upper: dict[str, Weight] | None = None
    l2_gamma: Annotated[float, Field(ge=0, le=100)] = 0.0
    expected_returns: ReturnModel = Field(
        default="mean_historical", description="Default: arithmetic mean x 252"
    )
    covariance: RiskModel = Field(default="sample", description="Default: sample cov x 252")
    span: Annotated[int, Field(ge=2, le=5000)] | None = Field(
        default=None, description="EWM span (default 500 for returns, 180 for covariance)"
    )
    linkage: Linkage = Field(default="single", description="HRP's scipy linkage method")
    frontier_points: Annotated[int, Field(ge=0, le=200)] = Field(
        default=0, description="Also return this many efficient-frontier points"
    )
    allocation: AllocationIn | None = None

    @model_validator(mode="after")
    def _targets(self) -> OptimizeRequest:
        if self.objective == "efficient_return" and self.target_return is None:
            raise ValueError("efficient_return needs `target_return`")
        if self.objective == "efficient_risk" and self.target_volatility is None:
            raise ValueError("efficient_risk needs `target_volatility`")
        return self


class FrontierPoint(BaseModel):
    expected_return: float
    volatility: float
    sharpe: float | None


class AllocationOut(BaseModel):
    quantities: dict[str, WireDecimal] = Field(description="Units (shares, or lots x lot size)")
    lots: dict[str, WireDecimal]
    leftover: WireDecimal
    latest_prices: dict[str, WireDecimal]


class OptimizeResponse(BaseModel):
    objective: Objective
    weights: dict[str, float]
    expected_return: float
    volatility: float
    sharpe: float | None
    risk_contributions: dict[str, float] = Field(description="Share of the variance per asset")
    assets: dict[str, FrontierPoint] = Field(description="Each asset alone")
    frontier: list[FrontierPoint] | None
    allocation: AllocationOut | None


class RebalanceTrade(BaseModel):
    instrument: str
    side: Literal["buy", "sell"]
    quantity: WireDecimal = Field(description="Units, a whole number of lots")
    estimated_value: WireDecimal = Field(description="At the latest price, portfolio currency")


class RebalanceResponse(OptimizeResponse):
    currency: str
    value: WireDecimal = Field(description="Market value of the priced holdings")
    current_weights: dict[str, float]
    trades: list[RebalanceTrade] = Field(
        description="From the holdings to the suggested weights; each can be sent to a paper "
        "account as a market order (POST /api/v1/accounts/{id}/orders) once confirmed"
    )
    leftover: WireDecimal = Field(description="Value not reinvested after whole lots")
    skipped: list[str]


# --- option books ---------------------------------------------------------------------------
class BookLegIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    underlying: Annotated[str, Field(min_length=1, max_length=80)]
    kind: Literal["call", "put", "future", "underlying"]
    quantity: Annotated[Decimal, Field(max_digits=16, decimal_places=4)] = Field(
        description="Signed lots (or units with lot_size 1)"
    )
    lot_size: Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=4)] = Decimal(1)
    strike: Money | None = None
    expiry: dt.date | None = Field(default=None, description="Options and futures")
    iv: Annotated[float, Field(gt=0, le=10)] | None = Field(default=None, description="Options")


class GridIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    underlying_range: Annotated[float, Field(gt=0, lt=1)] = Field(
        default=0.20, description="Relative moves of every underlying from -range to +range"
    )
    underlying_points: Annotated[int, Field(ge=1, le=201)] = 41
    iv_range: Annotated[float, Field(ge=0, lt=1)] = 0.50
    iv_points: Annotated[int, Field(ge=1, le=101)] = 21
    days: Annotated[list[Annotated[float, Field(ge=0, le=3650)]], Field(max_length=20)] = Field(
        default_factory=lambda: [0.0], description="Calendar days forward (each a slice)"
    )


class BookMonteCarloIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confidence: Confidence = 0.99
    days: Annotated[float, Field(gt=0, le=365)] = 1.0
    simulations: Annotated[int, Field(ge=100, le=100_000)] = 10_000
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    volatilities: dict[str, Annotated[float, Field(ge=0, le=10)]] | None = Field(
        default=None, description="Annual, per underlying; default: the mean IV of its options"
    )
    correlation: list[list[float]] | None = Field(
        default=None, description="Between the underlyings in alphabetical order; default: I"
    )


class ScenarioRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    legs: Annotated[list[BookLegIn], Field(min_length=1, max_length=2000)]
    spots: dict[str, Money]
    valuation_date: dt.date | None = Field(default=None, description="Default: today (UTC)")
    rate: AnnualRate = Field(default=0.065, description="Continuously compounded")
    dividend_yields: dict[str, AnnualRate] | None = None
    grid: GridIn = Field(default_factory=GridIn)
    monte_carlo: BookMonteCarloIn | None = Field(default_factory=BookMonteCarloIn)


class WorstOut(BaseModel):
    pnl: WireDecimal
    underlying_move: float
    iv_change: float
    days: float


class BookVaROut(BaseModel):
    confidence: float
    days: float
    var: WireDecimal
    cvar: WireDecimal
    expected_pnl: WireDecimal
    worst_pnl: WireDecimal
    simulations: int
    volatilities: dict[str, float]


class ScenarioResponse(BaseModel):
    underlyings: list[str]
    value: WireDecimal = Field(description="Model value of the book now")
    underlying_moves: list[float] = Field(description="Relative moves of every underlying")
    iv_changes: list[float]
    days: list[float]
    pnl: list[list[list[WireDecimal]]] = Field(
        description="Full revaluation: [days][underlying move][IV change]"
    )
    greeks_pnl: list[list[list[WireDecimal]]] = Field(
        description="The delta-gamma-vega-theta (+vanna, volga) approximation, same layout"
    )
    worst: WorstOut
    best: WorstOut
    monte_carlo: BookVaROut | None
    skipped: list[str] = Field(
        default_factory=list, description="Positions left out of the book, and why"
    )
