"""API shapes of saved strategies and their mark-to-market."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from quantdesk.platform.decimals import WireDecimal
from quantdesk.platform.pagination import Page
from quantdesk.strategies.models import SavedStrategyLegRow, SavedStrategyRow
from quantdesk.strategies.schemas import TemplateName
from quantdesk.trading.schemas import OrderOut

Lots = Annotated[Decimal, Field(max_digits=12, decimal_places=4)]
Price = Annotated[Decimal, Field(ge=0, max_digits=20, decimal_places=8)]
Tag = Annotated[str, Field(min_length=1, max_length=40)]


class SavedLegIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instrument: str = Field(min_length=3, max_length=80, description="EXCHANGE:SYMBOL")
    quantity: Lots = Field(description="Signed lots: +1 one lot long, -2 two lots short")
    entry_price: Price = Field(description="Per unit, as quoted")
    iv: float | None = Field(default=None, gt=0, le=5, description="Options: the IV to use "
                             "when no close implies one")  # fmt: skip
    order_id: uuid.UUID | None = Field(
        default=None, description="The paper order that placed this leg: the leg follows its "
        "fills (quantity filled, average price)",
    )  # fmt: skip

    @field_validator("quantity")
    @classmethod
    def _not_zero(cls, value: Decimal) -> Decimal:
        if value == 0:
            raise ValueError("a leg holds a non-zero number of lots")
        return value


class SavedStrategyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    notes: str = Field(default="", max_length=2000)
    legs: list[SavedLegIn] = Field(min_length=1, max_length=20)
    version: int | None = Field(
        default=None, description="On PUT: the version you edited (409 if it has changed)"
    )


class SavedLegOut(BaseModel):
    instrument: str
    quantity: WireDecimal
    entry_price: WireDecimal
    iv: float | None
    order_id: uuid.UUID | None
    filled: WireDecimal | None = Field(
        default=None, description="Units the linked order has filled (null: no order linked)"
    )

    @classmethod
    def of(cls, row: SavedStrategyLegRow, filled: Decimal | None = None) -> SavedLegOut:
        return cls(instrument=row.instrument, quantity=row.quantity, entry_price=row.entry_price,
                   iv=row.iv, order_id=row.order_id, filled=filled)  # fmt: skip


class SavedStrategyOut(BaseModel):
    id: uuid.UUID
    name: str
    tags: list[str]
    notes: str
    version: int
    legs: list[SavedLegOut]
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: SavedStrategyRow, legs: list[SavedLegOut]) -> SavedStrategyOut:
        return cls(id=row.id, name=row.name, tags=row.tags, notes=row.notes,
                   version=row.version, legs=legs, created_at=row.created_at,
                   updated_at=row.updated_at)  # fmt: skip


class SavedStrategyPage(Page[SavedStrategyOut]):
    pass


class LegPnL(BaseModel):
    instrument: str
    pnl: list[WireDecimal | None]


class MarkToMarketOut(BaseModel):
    strategy_id: uuid.UUID
    timeframe: str
    t: list[int] = Field(description="Bar open times, Unix seconds")
    legs: list[LegPnL]
    total: list[WireDecimal | None]
    greeks: dict[str, list[float | None]] | None = Field(
        description="Net delta, gamma, vega, theta per bar (null without the underlying's bars)"
    )


class StrategyOrderIn(BaseModel):
    """A strategy template placed as one mleg order, e.g. an iron condor on NIFTY."""

    model_config = ConfigDict(extra="forbid")

    account_id: uuid.UUID = Field(description="The paper account that places it")
    template: TemplateName = Field(
        description="An options-only template (not covered_call, protective_put or collar: "
        "they hold the underlying)"
    )
    underlying: str = Field(
        min_length=1,
        max_length=40,
        examples=["NIFTY"],
        description="The derivatives root, as in the instrument master",
    )
    exchange: Literal["NFO", "BFO", "BSE", "MCX", "CDS", "BCD", "SIM", "OPRA"] = "NFO"
    expiry: dt.date | None = Field(default=None, description="Not for calendars")
    near_expiry: dt.date | None = Field(default=None, description="Calendars: the sold expiry")
    far_expiry: dt.date | None = Field(default=None, description="Calendars: the bought expiry")
    strikes: dict[str, Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=8)]] = Field(
        description="By the template's names, as /analytics/strategies/analyze takes them"
    )
    lots: Annotated[Decimal, Field(ge=1, le=10_000, decimal_places=0)] = Field(
        default=Decimal(1), description="Combinations, in whole lots of the contracts"
    )
    type: Literal["market", "limit"] = "market"
    limit_price: Annotated[Decimal | None, Field(max_digits=20, decimal_places=8)] = Field(
        default=None, description="The net per unit: debit positive, credit negative"
    )
    time_in_force: Literal["day", "gtc", "ioc", "fok"] = "day"
    product: Literal["mis", "nrml"] = "nrml"
    client_order_id: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    name: str | None = Field(default=None, min_length=1, max_length=120,
                             description="The saved strategy's name (default: the template's, "
                             "the underlying and the expiry)")  # fmt: skip
    tags: list[Tag] = Field(default_factory=list, max_length=20)


class StrategyOrderOut(BaseModel):
    order: OrderOut = Field(description="The mleg order, its legs in the template's order")
    strategy: SavedStrategyOut = Field(
        description="Saved, its legs linked to the leg orders: /strategies/{id}/mtm shows the "
        "strategy's combined P&L and net Greeks as they fill"
    )
