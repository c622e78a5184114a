"""The vocabulary of orders: sides, types, classes, time in force, statuses, ticks and fills.

Status names, order types and order classes follow Alpaca's (``trailing_stop`` with
``trail_price``/``trail_percent`` and ``hwm``; ``order_class`` ``simple | bracket | oco |
oto | mleg``); ``kite_status`` gives Kite Connect's word for Indian users.
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
    TRAILING_STOP = "trailing_stop"


class OrderClass(StrEnum):
    """Alpaca's ``order_class``: how an order relates to others (engine.contingent, mleg)."""

    SIMPLE = "simple"
    BRACKET = "bracket"  # an entry; a take-profit and a stop-loss active as it fills
    OCO = "oco"  # two exits of one position: a fill of one reduces or cancels the other
    OTO = "oto"  # an entry and one exit, active as the entry fills
    MLEG = "mleg"  # 2-4 legs on different instruments, all or none at a net price


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(StrEnum):
    PENDING_NEW = "pending_new"
    # Alpaca's word for a bracket/OTO exit waiting for its entry to fill (not yet working).
    HELD = "held"
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
    if status is OrderStatus.HELD:
        return "TRIGGER PENDING"  # waits on its entry's fill, as a stop waits on its trigger
    if order_type in _STOP_TYPES and not triggered:
        return "TRIGGER PENDING"
    return "OPEN"


_STOP_TYPES = frozenset({OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    key: str
    tick_size: Decimal
    lot_size: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class Order:
    """A working order as the engine sees it; ``version`` changes with every modify, so a
    fill computed for an older version is recognised and dropped.

    Trailing stops carry ``trail_price`` or ``trail_percent`` and the high-water mark
    ``hwm`` (the low for buys); ``stop_price`` is derived from them and only tightens.
    Children of a bracket/OTO/OCO carry their ``parent_id``; ``active`` is how much of a
    child may trade now (its entry's filled quantity less what its sibling filled), ``None``
    for an order that is active in full.
    """

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
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None
    parent_id: str | None = None
    active: Decimal | None = None

    @property
    def remaining(self) -> Decimal:
        """What may fill now: the open quantity, or of a child only its active part."""
        if self.active is None:
            return self.quantity - self.filled_quantity
        return min(self.quantity, self.active) - self.filled_quantity

    @property
    def open_quantity(self) -> Decimal:
        """Not yet filled, whether active now or not."""
        return self.quantity - self.filled_quantity

    @property
    def is_stop(self) -> bool:
        kind = self.type  # identity tests: this runs several times per order
        return kind is OrderType.STOP or kind is OrderType.STOP_LIMIT or kind is _TRAILING

    @property
    def works_as_market(self) -> bool:
        """A market order, or a stop (or trailing stop) whose trigger has been hit."""
        kind = self.type
        return kind is OrderType.MARKET or (
            self.triggered and (kind is OrderType.STOP or kind is _TRAILING)
        )

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
            self.trail_price,
            self.trail_percent,
            self.hwm,
            self.parent_id,
            self.active,
        )


_TRAILING = OrderType.TRAILING_STOP


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
    # Set on the fills of a multi-leg order: which leg (0-based) of which instrument.
    instrument: str | None = None
    leg: int | None = None


class EventKind(StrEnum):
    FILL = "fill"
    TRIGGERED = "triggered"
    CANCELED = "canceled"  # IOC/FOK residuals, no liquidity, a group canceled with its member
    EXPIRED = "expired"
    # A bracket/OTO exit that may now trade ``quantity`` in all (its entry filled that
    # much less what its sibling filled): held -> new the first time, then growing.
    ACTIVATED = "activated"
    # The order's quantity is now ``quantity`` (an OCO sibling filled, or the entry ended
    # short of its quantity); it stays open: an order left with nothing open is CANCELED.
    RESIZED = "resized"
    # A trailing stop moved: the new ``stop_price`` and the ``hwm`` it follows.
    TRAILED = "trailed"


@dataclass(frozen=True, slots=True)
class OrderEvent:
    order_id: str
    kind: EventKind
    ts: dt.datetime
    order_version: int
    fill: Fill | None = None
    reason: str | None = None
    quantity: Decimal | None = None  # ACTIVATED, RESIZED
    stop_price: Decimal | None = None  # TRAILED
    hwm: Decimal | None = None  # TRAILED
