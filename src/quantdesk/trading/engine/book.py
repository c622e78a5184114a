"""The book of one instrument's working orders: price-time ladders of limits and stops,
the takers queue, and the orders waiting outside the book.

The state and bookkeeping under ``MatchingEngine`` (engine.matching), which adds the
matching; ``GroupedBook`` (engine.groups) the contingent groups in between.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from quantdesk.trading.engine.types import (
    ZERO,
    InstrumentSpec,
    Order,
    OrderClass,
    OrderEvent,
    OrderType,
    QuoteTick,
    Side,
)

TRAILING = OrderType.TRAILING_STOP


@dataclass(slots=True)
class Ladder:
    """Order ids sorted by (price key, priority): the best first."""

    keys: list[tuple[Decimal, int, str]] = field(default_factory=list)

    def add(self, key: Decimal, order: Order) -> None:
        bisect.insort(self.keys, (key, order.priority, order.id))

    def remove(self, key: Decimal, order: Order) -> None:
        entry = (key, order.priority, order.id)
        at = bisect.bisect_left(self.keys, entry)
        if at < len(self.keys) and self.keys[at] == entry:
            del self.keys[at]


@dataclass(slots=True)
class GroupState:
    """A group as the book keeps it: its members' ids; ``ended`` holds those no longer
    open (their fills still size the others)."""

    order_class: OrderClass
    entry_id: str | None
    exit_ids: tuple[str, ...]
    entry_quantity: Decimal  # an OCO: its quantity
    entry_ended: bool = False
    ended: dict[str, Order] = field(default_factory=dict)  # members no longer open


class Book:
    """The working orders and the bookkeeping that places them; no matching here."""

    def __init__(
        self,
        spec: InstrumentSpec,
        *,
        size_tracking: bool = True,
        max_quote_age: dt.timedelta | None = None,
    ) -> None:
        self.spec = spec
        self.size_tracking = size_tracking
        self.max_quote_age = max_quote_age
        self.quote: QuoteTick | None = None
        self.last_price: Decimal | None = None
        self._orders: dict[str, Order] = {}
        self._takers: list[str] = []  # market orders and triggered stops, in arrival order
        self._buy_limits = Ladder()  # key: -limit (highest first)
        self._sell_limits = Ladder()  # key: limit (lowest first)
        self._buy_stops = Ladder()  # key: stop (lowest triggers first as the ask rises)
        self._sell_stops = Ladder()  # key: -stop
        self._ask_used = ZERO
        self._bid_used = ZERO
        self._arriving: str | None = None
        # Orders resting without their arrival match (no fresh quote then, or restored):
        # the next fresh quote matches them as takers, not at their own limit.
        self._unmatched: set[str] = set()
        # Open orders outside the book: held exits, exits with nothing active now, trailing
        # stops placed before any price was known.
        self._waiting: dict[str, Order] = {}
        self._unpriced: set[str] = set()  # those trailing stops
        self._trailing: dict[str, None] = {}  # untriggered trailing stops in the book
        self._groups: dict[str, GroupState] = {}
        self._group_of: dict[str, str] = {}
        self._side: list[OrderEvent] = []  # what a fill did to its group, after its event
        self._to_arrive: list[str] = []  # exits activated by a fill: matched when a call ends

    # --- the book ------------------------------------------------------------------------
    def open_orders(self) -> list[Order]:
        """Every open order: working in the book or waiting (held exits included)."""
        return [*self._orders.values(), *self._waiting.values()]

    def get(self, order_id: str) -> Order | None:
        order = self._orders.get(order_id)
        return order if order is not None else self._waiting.get(order_id)

    def __len__(self) -> int:
        return len(self._orders) + len(self._waiting)

    def group_of(self, order_id: str) -> str | None:
        """The id of the group (its parent's id) an order belongs to, if any."""
        return self._group_of.get(order_id)

    def _ladder(self, order: Order) -> tuple[Ladder, Decimal] | None:
        if order.is_stop and not order.triggered:
            assert order.stop_price is not None  # noqa: S101 - validated by the type
            if order.side is Side.BUY:
                return self._buy_stops, order.stop_price
            return self._sell_stops, -order.stop_price
        if order.works_as_market:
            return None
        assert order.limit_price is not None  # noqa: S101 - limits carry a limit price
        if order.side is Side.BUY:
            return self._buy_limits, -order.limit_price
        return self._sell_limits, order.limit_price

    def _rest(self, order: Order) -> None:
        self._orders[order.id] = order
        placed = self._ladder(order)
        if placed is None:
            self._takers.append(order.id)
        else:
            placed[0].add(placed[1], order)
            if order.type is TRAILING and not order.triggered:
                self._trailing[order.id] = None

    def _unrest(self, order: Order) -> None:
        self._unmatched.discard(order.id)
        placed = self._ladder(order)
        if placed is None:
            self._takers.remove(order.id)
        else:
            placed[0].remove(placed[1], order)
        if self._trailing:
            self._trailing.pop(order.id, None)
        del self._orders[order.id]

    def _place(self, order: Order, matched: bool) -> None:
        """Rest an order restored from storage, or keep it waiting if it cannot work now."""
        if order.remaining <= 0 or (order.type is TRAILING and order.stop_price is None):
            self._waiting[order.id] = order
            if order.type is TRAILING and order.stop_price is None:
                self._unpriced.add(order.id)
            return
        self._rest(order)
        if not matched:
            self._unmatched.add(order.id)

    def cancel(self, order_id: str) -> Order | None:
        """Take an order out of the engine (a cancel, an expiry, a reload).  Its group, if
        any, is left as it is: ``cancel_group`` cancels the rest of the group as well."""
        self._unmatched.discard(order_id)
        self._unpriced.discard(order_id)
        order = self._orders.get(order_id)
        if order is not None:
            self._unrest(order)
        else:
            order = self._waiting.pop(order_id, None)
        if order is not None and self._group_of:
            gid = self._group_of.get(order_id)
            if gid is not None:  # out of the book: its group counts it as ended
                group = self._groups[gid]
                group.ended[order_id] = order
                if order_id == group.entry_id:
                    group.entry_ended = True
        return order

    def _enter(self, order: Order, now: dt.datetime) -> list[OrderEvent]:
        """An order starting to work: the matching engine's arrival."""
        raise NotImplementedError
