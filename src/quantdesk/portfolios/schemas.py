"""Request and response shapes of portfolios (``docs/portfolios.md``).

Money, prices, quantities and rates are decimal strings on the wire (``WireDecimal``);
requests accept strings or numbers.  Return figures (TWR, XIRR, ...) are fractions
(``0.0523`` is 5.23 %), as decimal strings at 10 places.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from quantdesk.platform.decimals import DECIMAL_PATTERN, WireDecimal
from quantdesk.platform.pagination import Page
from quantdesk.portfolios.accounting.types import LotMethod, TxnType

Amount = Annotated[Decimal, Field(ge=0, max_digits=24, decimal_places=8)]
Positive = Annotated[Decimal, Field(gt=0, max_digits=24, decimal_places=10)]
InstrumentKey = Annotated[str, Field(min_length=3, max_length=80, examples=["NSE:INFY"])]
Currency = Literal["INR", "USD"]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class PortfolioIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    currency: Currency = "INR"
    lot_method: LotMethod = LotMethod.FIFO
    jurisdiction: Literal["IN", "US"] | None = Field(
        default=None,
        description="Holding-period threshold and financial year of the gains report; "
        "default IN for INR portfolios, US for USD",
    )


class PortfolioPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(description="The version you read; a stale one is 409")
    name: Name | None = None
    lot_method: LotMethod | None = None
    jurisdiction: Literal["IN", "US"] | None = None


class PortfolioAccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    kind: Literal["broker", "demat", "paper"] = "broker"
    lot_method: LotMethod | None = Field(default=None, description="Overrides the portfolio's")
    trading_account_id: uuid.UUID | None = Field(
        default=None, description="paper: the paper-trading account whose fills flow in"
    )


class PortfolioAccountOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    method: str | None = Field(description="Its lot method (null: the portfolio's)")
    trading_account_id: uuid.UUID | None
    created_at: dt.datetime


class PortfolioOut(BaseModel):
    id: uuid.UUID
    name: str
    currency: str
    method: str = Field(description="The lot method: fifo, lifo, hifo or average")
    jurisdiction: str
    version: int
    accounts: list[PortfolioAccountOut]
    created_at: dt.datetime
    updated_at: dt.datetime


class PortfolioPage(Page[PortfolioOut]):
    pass


class LotPickIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lot_id: str = Field(description="The id of the transaction that opened the lot")
    quantity: Positive


class TransactionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: TxnType
    instrument: InstrumentKey | None = None
    date: dt.date = Field(
        description="Trade date (ex-date of a corporate action)",
        ge=dt.date(1900, 1, 1),
        le=dt.date(2100, 12, 31),
    )
    settlement_date: dt.date | None = None
    quantity: Amount = Decimal(0)
    price: Amount = Decimal(0)
    fees: Amount = Decimal(0)
    amount: Amount | None = Field(
        default=None, description="Cash of cash-only types; a dividend's total (gross)"
    )
    tax: Amount = Field(
        default=Decimal(0),
        description="Withholding tax of a dividend or interest (with fees, at most its gross)",
    )
    ratio: Positive | None = Field(
        default=None,
        description="split: new shares per old share (2 for 2:1); bonus: extra shares per "
        "share held (1 for 1:1); merger: new shares per old share",
    )
    currency: Currency | None = Field(
        default=None, description="Default: the instrument's (cash types: the portfolio's)"
    )
    fx_rate: Positive | None = Field(
        default=None,
        description="1 unit of the transaction's currency in the portfolio's; looked up "
        "when not given",
    )
    account_id: uuid.UUID | None = Field(default=None, description="Default: the first account")
    to_account_id: uuid.UUID | None = Field(default=None, description="transfer_out within")
    new_instrument: InstrumentKey | None = Field(default=None, description="merger")
    lots: list[LotPickIn] | None = Field(
        default=None, description="Specific identification on a sell or cover"
    )
    note: Annotated[str, Field(max_length=500)] = ""
    external_id: Annotated[str | None, Field(max_length=120)] = None


class TransactionPatch(TransactionIn):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(description="The version you read; a stale one is 409")
    type: TxnType | None = None  # type: ignore[assignment]
    date: dt.date | None = None  # type: ignore[assignment]


class LotPickOut(BaseModel):
    lot_id: str
    quantity: WireDecimal


class TransactionOut(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    type: str
    instrument: str | None
    date: dt.date
    settlement_date: dt.date | None
    quantity: WireDecimal
    price: WireDecimal
    fees: WireDecimal
    amount: WireDecimal | None
    tax: WireDecimal
    ratio: WireDecimal | None
    currency: str
    fx_rate: WireDecimal
    multiplier: WireDecimal
    to_account_id: uuid.UUID | None
    new_instrument: str | None
    lots: list[LotPickOut] | None
    note: str
    source: str
    external_id: str | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class TransactionPage(Page[TransactionOut]):
    pass


# --- holdings --------------------------------------------------------------------------------
class LotOut(BaseModel):
    lot_id: str
    account_id: uuid.UUID
    opened: dt.date
    quantity: WireDecimal
    cost_basis: WireDecimal


class HoldingOut(BaseModel):
    instrument: str
    instrument_type: str
    currency: str
    quantity: WireDecimal
    multiplier: WireDecimal
    average_cost: WireDecimal | None = Field(description="Per unit, in the portfolio's currency")
    cost_basis: WireDecimal
    price: WireDecimal | None = Field(description="Last price, in the instrument's currency")
    fx_rate: WireDecimal
    market_value: WireDecimal | None
    unrealized_pnl: WireDecimal | None
    fx_effect: WireDecimal | None = Field(
        description="The part of unrealized_pnl due to the currency since purchase"
    )
    day_change: WireDecimal | None
    weight: WireDecimal | None = Field(description="Share of the total market value")
    realized_pnl: WireDecimal
    income: WireDecimal = Field(description="Dividends received, net of tax and fees")
    lots: list[LotOut] | None = None


class CashOut(BaseModel):
    account_id: uuid.UUID
    amount: WireDecimal


class HoldingsOut(BaseModel):
    as_of: dt.date
    currency: str
    items: list[HoldingOut]
    market_value: WireDecimal
    cost_basis: WireDecimal
    unrealized_pnl: WireDecimal
    fx_effect: WireDecimal = Field(description="The currency's part of unrealized_pnl")
    realized_pnl: WireDecimal
    income: WireDecimal
    fees: WireDecimal
    taxes: WireDecimal
    cash: list[CashOut] = Field(description="Cash per account, from every transaction")


# --- gains ------------------------------------------------------------------------------------
class ClosedLotOut(BaseModel):
    lot_id: str
    opened: dt.date
    quantity: WireDecimal
    cost: WireDecimal
    proceeds: WireDecimal
    realized_pnl: WireDecimal
    holding_days: int
    term: Literal["short", "long"]
    financial_year: str


class SaleOut(BaseModel):
    transaction_id: uuid.UUID
    type: str
    date: dt.date
    account_id: uuid.UUID
    instrument: str
    quantity: WireDecimal
    proceeds: WireDecimal
    cost: WireDecimal
    realized_pnl: WireDecimal
    lots: list[ClosedLotOut]


class YearGainsOut(BaseModel):
    financial_year: str
    short_term: WireDecimal
    long_term: WireDecimal
    total: WireDecimal


class GainsOut(BaseModel):
    currency: str
    jurisdiction: str
    long_term_after_months: int
    realized_pnl: WireDecimal
    short_term: WireDecimal
    long_term: WireDecimal
    by_financial_year: list[YearGainsOut]
    sales: list[SaleOut]


# --- performance -----------------------------------------------------------------------------
Rate = WireDecimal


class ContributionOut(BaseModel):
    instrument: str
    contribution: Rate


class PerformanceOut(BaseModel):
    currency: str
    period: str | None
    from_: dt.date = Field(alias="from", serialization_alias="from")
    to: dt.date
    days: int
    start_value: WireDecimal
    end_value: WireDecimal
    net_flows: WireDecimal
    net_performance: WireDecimal
    asset_performance: WireDecimal = Field(
        description="The assets' part of net_performance: each day's gain at the previous "
        "day's FX rates (in their own currencies, converted at the day's starting rate)"
    )
    fx_effect: WireDecimal = Field(
        description="The currency's part of net_performance: the FX moves on what was held "
        "in other currencies (net_performance = asset_performance + fx_effect)"
    )
    twr: Rate
    twr_local: Rate = Field(
        description="The TWR with every day's FX move taken out: the assets' own return"
    )
    twr_fx: Rate = Field(description="The currency effect: (1 + twr) = (1 + twr_local)(1 + twr_fx)")
    xirr: Rate | None
    roai: Rate | None
    modified_dietz: Rate | None
    annualized: bool
    twr_annualized: Rate | None
    modified_dietz_annualized: Rate | None
    contributions: list[ContributionOut]

    model_config = ConfigDict(populate_by_name=True)


# Columns already printed as decimals (``platform.decimals.decimal_column``).
DecimalText = Annotated[
    str, WithJsonSchema({"type": "string", "format": "decimal", "pattern": DECIMAL_PATTERN})
]


class PeriodsOut(BaseModel):
    currency: str
    periods: list[PerformanceOut] = Field(
        description="today, wtd, mtd, ytd, 1y, 3y, 5y and max, in that order"
    )


class SeriesOut(BaseModel):
    currency: str
    dates: list[dt.date]
    market_value: list[DecimalText | None]
    net_contributions: list[DecimalText | None]
    cumulative_twr: list[DecimalText | None]
    drawdown: list[DecimalText | None]


class PortfolioAllocationSlice(BaseModel):
    key: str
    market_value: WireDecimal
    weight: Rate


class PortfolioAllocationOut(BaseModel):
    currency: str
    as_of: dt.date
    market_value: WireDecimal
    asset_class: list[PortfolioAllocationSlice]
    instrument_type: list[PortfolioAllocationSlice]
    sector: list[PortfolioAllocationSlice] = Field(
        description="By the instrument master's sector; holdings without one are 'unclassified'"
    )
    exchange: list[PortfolioAllocationSlice]
    currency_exposure: list[PortfolioAllocationSlice]
    account: list[PortfolioAllocationSlice]


class BenchmarkOut(BaseModel):
    benchmark: str
    from_: dt.date = Field(alias="from", serialization_alias="from")
    to: dt.date
    portfolio_twr: Rate
    benchmark_twr: Rate
    excess_return: Rate
    portfolio_value: WireDecimal
    benchmark_value: WireDecimal = Field(
        description="What the same flows would be worth had they bought the benchmark"
    )
    portfolio_xirr: Rate | None
    benchmark_xirr: Rate | None
    beta: Rate | None
    tracking_error: Rate | None = Field(description="Annualised, over the benchmark's sessions")
    observations: int

    model_config = ConfigDict(populate_by_name=True)


# --- imports, FX -----------------------------------------------------------------------------
class SkippedOut(BaseModel):
    line: int
    reason: str


class ImportOut(BaseModel):
    format: str
    dry_run: bool
    rows: int
    created: int
    skipped: list[SkippedOut]
    transactions: list[TransactionOut] = Field(
        description="What was (dry run: would be) created, the first 1,000"
    )


class FxRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base: Currency
    quote: Currency
    date: dt.date = Field(ge=dt.date(1900, 1, 1), le=dt.date(2100, 12, 31))
    rate: Positive


class FxRatesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rates: Annotated[list[FxRateIn], Field(min_length=1, max_length=50_000)]


class FxRateOut(BaseModel):
    base: str
    quote: str
    date: dt.date
    rate: WireDecimal


class FxFetchIn(BaseModel):
    """Fetch a pair's daily rates from a market-data provider with an FX feed."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    provider: str = Field(min_length=1, max_length=40, examples=["alphavantage"])
    base: Currency = "USD"
    quote: Currency = "INR"
    from_: dt.date = Field(alias="from", ge=dt.date(1990, 1, 1), le=dt.date(2100, 12, 31))
    to: dt.date = Field(ge=dt.date(1990, 1, 1), le=dt.date(2100, 12, 31))


class FxFetchOut(BaseModel):
    provider: str
    base: str
    quote: str
    fetched: int = Field(description="days the provider answered in the range")
    stored: int = Field(description="days written (new, or replacing a provider's or demo rate)")
    kept: int = Field(description="days whose admin-posted (manual) rate was left as it is")
    first: dt.date | None
    last: dt.date | None
