"""Request and response shapes of paper trading (``docs/trading.md``).

Money, prices and quantities are decimal strings on the wire (``WireDecimal``); requests
accept strings or numbers.  Field names of orders and fills follow Alpaca's where they
overlap (``filled_quantity`` and ``average_fill_price`` are spelled out, as in the issue's
contract), and every order carries Kite's status word beside ours (``kite_status``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quantdesk.platform.decimals import WireDecimal
from quantdesk.platform.pagination import Page

Money = Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=4)]
Price = Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=8)]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=8)]
InstrumentKey = Annotated[str, Field(min_length=3, max_length=80, examples=["SIM:ALPHA"])]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100)] = "Paper account"
    currency: Literal["INR", "USD"] = "INR"
    starting_cash: Money | None = Field(
        default=None, description="Default: 1,00,00,000 INR (one crore) or 100,000 USD"
    )
    fill_model: Literal["best_price", "one_tick_slippage", "random_partial"] = Field(
        default="best_price",
        description="How orders fill: at the touch up to displayed size, one tick worse, "
        "or in seeded random partial fills",
    )
    fill_seed: Annotated[int, Field(ge=0, le=2**62)] = 0


class AccountOut(BaseModel):
    id: uuid.UUID
    name: str
    currency: str
    fill_model: str
    starting_cash: WireDecimal
    cash: WireDecimal = Field(description="Free cash (buying power)")
    reserved: WireDecimal = Field(description="Cash set aside for open orders")
    margin_used: WireDecimal = Field(description="Cash blocked as margin by open positions")
    buying_power: WireDecimal
    positions_value: WireDecimal = Field(description="Market value of non-futures positions")
    equity: WireDecimal = Field(
        description="cash + reserved + margin + positions at market + futures' unrealised P&L"
    )
    realised_pnl: WireDecimal
    unrealised_pnl: WireDecimal
    day_pnl: WireDecimal
    fees: WireDecimal
    deposits: WireDecimal = Field(description="Net deposits, the starting cash included")
    version: int
    created_at: dt.datetime


class AccountPage(Page[AccountOut]):
    pass


class CashMovementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Money
    memo: Annotated[str, Field(max_length=200)] = ""


class PostingOut(BaseModel):
    book: str
    amount: WireDecimal


class LedgerEntryOut(BaseModel):
    id: int
    kind: str
    reference: str | None
    memo: str
    created_at: dt.datetime
    postings: list[PostingOut]


class LedgerPage(Page[LedgerEntryOut]):
    pass


class TakeProfitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit_price: Price


class StopLossIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stop_price: Price
    limit_price: Price | None = Field(default=None, description="Makes the stop-loss a stop-limit")


class LegIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instrument: InstrumentKey
    side: Literal["buy", "sell"]
    ratio: Annotated[int, Field(ge=1, le=100)] = 1


CONTINGENT_CLASSES = ("bracket", "oco", "oto")


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instrument: InstrumentKey | None = Field(
        default=None, description="EXCHANGE:SYMBOL from the instrument master (not for mleg)"
    )
    side: Literal["buy", "sell"] | None = Field(default=None, description="Not for mleg")
    quantity: Quantity = Field(
        description="Units (F&O: a multiple of the lot size); mleg: the number of combinations"
    )
    type: Literal["market", "limit", "stop", "stop_limit", "trailing_stop"] = "market"
    limit_price: Annotated[
        Decimal | None,
        Field(
            max_digits=20,
            decimal_places=8,
            description="mleg: the net, debit positive, credit negative",
        ),
    ] = None
    stop_price: Price | None = None
    trail_price: Price | None = Field(default=None, description="trailing_stop: an amount")
    trail_percent: Annotated[Decimal | None, Field(gt=0, lt=100, decimal_places=4)] = Field(
        default=None, description="trailing_stop: a percentage"
    )
    time_in_force: Literal["day", "gtc", "ioc", "fok"] = "day"
    product: Literal["cnc", "mis", "nrml"] = Field(
        default="cnc",
        description="cnc: delivery (equities, long only); mis: intraday (shorts allowed); "
        "nrml: F&O carried overnight",
    )
    order_class: Literal["simple", "bracket", "oco", "oto", "mleg"] = "simple"
    take_profit: TakeProfitIn | None = None
    stop_loss: StopLossIn | None = None
    legs: Annotated[list[LegIn] | None, Field(min_length=2, max_length=4)] = None
    after_market: bool = Field(
        default=False,
        description="When the exchange is closed, queue the order for the next open "
        "(Kite's AMO) instead of refusing it",
    )
    client_order_id: Annotated[str | None, Field(min_length=1, max_length=64)] = None

    @model_validator(mode="after")
    def _prices_match_type(self) -> OrderIn:
        if self.order_class == "mleg":
            return self._mleg_shape()
        if self.instrument is None or self.side is None:
            raise ValueError("instrument and side are required")
        if self.legs is not None:
            raise ValueError("legs are for order_class mleg")
        if self.order_class == "simple" and (
            self.take_profit is not None or self.stop_loss is not None
        ):
            raise ValueError("take_profit and stop_loss need order_class bracket, oco or oto")
        if self.order_class == "oco":
            # Alpaca: an OCO is a limit order (the take-profit) whose price is
            # take_profit.limit_price; the stop-loss is its child.
            if self.type != "limit":
                raise ValueError("an oco order's type is limit")
            if self.take_profit is None:
                raise ValueError("an oco order needs take_profit")
            if self.limit_price not in (None, self.take_profit.limit_price):
                raise ValueError("an oco order's limit_price is take_profit.limit_price")
            self.limit_price = self.take_profit.limit_price
        elif self.order_class != "simple" and self.type == "trailing_stop":
            raise ValueError("a trailing stop is a simple order")
        needs_limit = self.type in ("limit", "stop_limit")
        needs_stop = self.type in ("stop", "stop_limit")
        if needs_limit != (self.limit_price is not None):
            raise ValueError(
                f"a {self.type} order {'needs' if needs_limit else 'takes no'} limit_price"
            )
        if self.limit_price is not None and self.limit_price <= 0:
            raise ValueError("limit_price must be positive")
        if needs_stop != (self.stop_price is not None):
            raise ValueError(
                f"a {self.type} order {'needs' if needs_stop else 'takes no'} stop_price"
            )
        trailing = self.type == "trailing_stop"
        if not trailing and (self.trail_price is not None or self.trail_percent is not None):
            raise ValueError("trail_price and trail_percent are for type trailing_stop")
        return self

    def _mleg_shape(self) -> OrderIn:
        if self.legs is None:
            raise ValueError("an mleg order needs legs (2 to 4)")
        if self.instrument is not None or self.side is not None:
            raise ValueError("an mleg order names instrument and side in each leg")
        if self.type not in ("market", "limit"):
            raise ValueError("an mleg order is market or limit")
        if (self.type == "limit") != (self.limit_price is not None):
            word = "needs" if self.type == "limit" else "takes no"
            raise ValueError(f"a {self.type} mleg order {word} limit_price (the net)")
        if self.stop_price is not None or self.take_profit or self.stop_loss:
            raise ValueError("an mleg order takes no stop_price, take_profit or stop_loss")
        if self.trail_price is not None or self.trail_percent is not None:
            raise ValueError("an mleg order takes no trail")
        return self


class OrderPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: Quantity | None = None
    limit_price: Price | None = None
    stop_price: Price | None = None

    @model_validator(mode="after")
    def _something(self) -> OrderPatch:
        if self.quantity is None and self.limit_price is None and self.stop_price is None:
            raise ValueError("give at least one of quantity, limit_price, stop_price")
        return self


class OrderOut(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    client_order_id: str | None
    instrument: str = Field(description="mleg: the first leg's; each leg is an order")
    side: str
    type: str
    order_class: str = Field(
        description="simple, bracket, oco, oto, mleg; sliced: an F&O order above the freeze "
        "limit, a plan whose legs are its child orders"
    )
    parent_id: uuid.UUID | None = Field(
        description="The order this one hangs from: a bracket's/OTO's entry, an OCO's "
        "take-profit, an mleg combination"
    )
    time_in_force: str
    product: str
    quantity: WireDecimal
    limit_price: WireDecimal | None
    stop_price: WireDecimal | None
    trail_price: WireDecimal | None = None
    trail_percent: WireDecimal | None = None
    hwm: WireDecimal | None = Field(
        default=None, description="A trailing stop's high-water mark (the low for a buy)"
    )
    ratio: int | None = Field(default=None, description="An mleg leg's ratio")
    status: str
    kite_status: str = Field(description="OPEN, TRIGGER PENDING, COMPLETE, CANCELLED, REJECTED")
    filled_quantity: WireDecimal
    remaining_quantity: WireDecimal
    average_fill_price: WireDecimal | None
    triggered: bool = Field(description="A stop order whose stop price has been reached")
    reserved: WireDecimal = Field(description="Cash still set aside for the unfilled part")
    after_market: bool
    active_from: dt.datetime | None
    expires_at: dt.datetime | None
    reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    legs: list[OrderOut] | None = Field(
        default=None,
        description="The orders hanging from this one (Alpaca's legs): a bracket's exits, "
        "an OCO's stop-loss, an mleg order's legs, a sliced order's children",
    )


class OrderPage(Page[OrderOut]):
    pass


class CancelAllOut(BaseModel):
    canceled: list[OrderOut]


class OrderEventOut(BaseModel):
    seq: int
    kind: str
    status: str
    reason: str | None
    execution_id: str | None
    at: dt.datetime


class FillOut(BaseModel):
    execution_id: str
    order_id: uuid.UUID
    instrument: str
    side: str
    product: str
    price: WireDecimal
    quantity: WireDecimal
    fee: WireDecimal
    charges: dict[str, WireDecimal] = Field(
        description="The fee itemised: brokerage, stt, exchange, ipft, sebi, stamp_duty, gst "
        "(India); sec_fee, taf (US). Lines that are zero are left out."
    )
    realised_pnl: WireDecimal
    liquidity: str
    ts: dt.datetime


class ChargesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instrument: InstrumentKey = Field(description="EXCHANGE:SYMBOL from the instrument master")
    side: Literal["buy", "sell"]
    quantity: Quantity = Field(description="Units (F&O: a multiple of the lot size)")
    price: Price | None = Field(
        default=None, description="The fill price; the last price if left out"
    )
    product: Literal["cnc", "mis", "nrml"] = "cnc"


class ChargesOut(BaseModel):
    instrument: str
    side: str
    quantity: WireDecimal
    price: WireDecimal
    product: str
    value: WireDecimal = Field(description="quantity x price x the contract multiplier")
    day: dt.date = Field(description="The trading day whose rates apply (exchange time)")
    charges: dict[str, WireDecimal] = Field(description="As on a fill: zero lines left out")
    total: WireDecimal


class FillPage(Page[FillOut]):
    pass


class PositionOut(BaseModel):
    instrument: str
    product: str
    quantity: WireDecimal = Field(description="Signed: negative is short")
    average_price: WireDecimal | None
    last_price: WireDecimal | None
    market_value: WireDecimal | None
    unrealised_pnl: WireDecimal | None
    realised_pnl: WireDecimal
    day_pnl: WireDecimal | None
    margin: WireDecimal
    updated_at: dt.datetime


class PositionList(BaseModel):
    items: list[PositionOut]


class DeliveryHoldingOut(BaseModel):
    """A delivery (CNC) equity holding, split by T+1 settlement (Kite's holdings view)."""

    instrument: str
    quantity: WireDecimal = Field(description="Held: settled_quantity + t1_quantity")
    settled_quantity: WireDecimal = Field(description="Settled into holdings")
    t1_quantity: WireDecimal = Field(description="Bought, settling on the next trading day")
    t1_settles_on: dt.date | None = Field(description="When the earliest T+1 part settles")
    average_price: WireDecimal | None
    last_price: WireDecimal | None
    market_value: WireDecimal | None
    unrealised_pnl: WireDecimal | None
    day_pnl: WireDecimal | None


class DeliveryHoldingList(BaseModel):
    items: list[DeliveryHoldingOut]


class PositionMarginOut(BaseModel):
    instrument: str
    product: str
    quantity: WireDecimal
    price: WireDecimal = Field(description="The mark: the last price (else the average)")
    naked: WireDecimal = Field(description="What this position would block alone")
    required: WireDecimal = Field(description="Its share of its group's requirement")
    blocked: WireDecimal = Field(description="What the ledger blocks for it now")


class MarginGroupOut(BaseModel):
    underlying: str
    expiry: dt.date | None
    instruments: list[str]
    naked: WireDecimal = Field(description="The sum of the legs' naked requirements")
    worst_payout: WireDecimal | None = Field(
        description="The most the group can owe at expiry (premiums aside); null: unbounded"
    )
    required: WireDecimal = Field(description="min(naked, worst_payout)")
    hedged: bool = Field(description="The group blocks less than its naked legs")


class MarginsOut(BaseModel):
    currency: str
    used: WireDecimal = Field(description="Margin the ledger blocks (every position)")
    required: WireDecimal = Field(description="F&O margin required, hedges recognised")
    available: WireDecimal = Field(description="Free cash: what new orders may use")
    positions: list[PositionMarginOut]
    groups: list[MarginGroupOut]
