"""The vocabulary of orders: sides, types, time in force, statuses, ticks and fills.

Status names follow Alpaca's; ``kite_status`` gives Kite Connect's word for Indian users.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from quantdesk.trading.engine.fill_models import BestPriceFillModel, FillModel

ZERO = Decimal(0)
_BEST_PRICE: FillModel = BestPriceFillModel()


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(StrEnum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED}
)
# The same, as the strings stored in the orders table.
TERMINAL_STATUSES: frozenset[str] = frozenset(s.value for s in _TERMINAL)


def kite_status(status: OrderStatus, order_type: str, triggered: bool) -> str:
    """Kite Connect's status word: OPEN, TRIGGER PENDING, COMPLETE, CANCELLED, REJECTED."""
    if status is OrderStatus.FILLED:
        return "COMPLETE"
    if status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
        return "CANCELLED"
    if status is OrderStatus.REJECTED:
        return "REJECTED"
    if status is OrderStatus.PENDING_NEW:
        return "PUT ORDER REQ RECEIVED"
    if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and not triggered:
        return "TRIGGER PENDING"
    return "OPEN"


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    key: str
    tick_size: Decimal
    lot_size: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class Order:
    """A working order as the engine sees it; ``version`` changes with every modify, so a
    fill computed for an older version is recognised and dropped."""

    id: str
    side: Side
    type: OrderType
    quantity: Decimal
    time_in_force: TimeInForce = TimeInForce.GTC
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    filled_quantity: Decimal = ZERO
    triggered: bool = False
    version: int = 1
    # Time priority among orders at one price: lower first (the placement sequence).
    priority: int = 0
    fill_model: FillModel = _BEST_PRICE

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def is_stop(self) -> bool:
        kind = self.type  # identity tests: this runs several times per order
        return kind is OrderType.STOP or kind is OrderType.STOP_LIMIT

    @property
    def works_as_market(self) -> bool:
        """A market order, or a stop whose trigger has been hit."""
        return self.type is OrderType.MARKET or (self.type is OrderType.STOP and self.triggered)

    def with_fill(self, quantity: Decimal) -> Order:
        # Spelled out rather than dataclasses.replace: this runs once per fill (3x faster).
        return Order(
            self.id,
            self.side,
            self.type,
            self.quantity,
            self.time_in_force,
            self.limit_price,
            self.stop_price,
            self.filled_quantity + quantity,
            self.triggered,
            self.version,
            self.priority,
            self.fill_model,
        )


@dataclass(frozen=True, slots=True)
class QuoteTick:
    """Top of book.  ``source_id`` names this tick uniquely: fills it causes are keyed by it."""

    bid: Decimal | None
    bid_size: Decimal
    ask: Decimal | None
    ask_size: Decimal
    ts: dt.datetime
    source_id: str
    last: Decimal | None = None


@dataclass(frozen=True, slots=True)
class TradeTick:
    price: Decimal
    size: Decimal
    ts: dt.datetime
    source_id: str


class Liquidity(StrEnum):
    MAKER = "maker"  # a resting order, filled at its own price
    TAKER = "taker"  # an order that crossed the quote, filled at the quote


def execution_id(order_id: str, version: int, source_id: str, index: int) -> str:
    """Deterministic: the same order (version), tick and fill index give the same id on any
    process, before and after a restart, so a fill is stored once however often it is
    computed.  The version is part of it: a modified order may trade on the same tick."""
    digest = hashlib.sha256(f"{order_id}|{version}|{source_id}|{index}".encode()).hexdigest()
    return f"X{digest[:31]}"


@dataclass(frozen=True, slots=True)
class Fill:
    order_id: str
    execution_id: str
    price: Decimal
    quantity: Decimal
    liquidity: Liquidity
    source_id: str
    ts: dt.datetime
    order_version: int


class EventKind(StrEnum):
    FILL = "fill"
    TRIGGERED = "triggered"
    CANCELED = "canceled"  # IOC/FOK residuals, no liquidity for IOC
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class OrderEvent:
    order_id: str
    kind: EventKind
    ts: dt.datetime
    order_version: int
    fill: Fill | None = None
    reason: str | None = None
