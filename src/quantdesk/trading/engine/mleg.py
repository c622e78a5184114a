"""Multi-leg orders (``order_class: mleg``): 2-4 legs on different instruments, all or none.

After Alpaca's multi-leg options orders: an order for ``quantity`` combinations, each leg
(``instrument``, ``side``, ``ratio``) trading ``quantity x ratio`` units; a net
``limit_price`` per combination, positive for a debit (paid) and negative for a credit
(received), or a market order.  The rules here:

* All or none: every leg fills at once, for its whole quantity, or nothing fills.  Each leg
  takes its own quote (a buy leg the ask, a sell leg the bid) up to the displayed size when
  size tracking is on; a leg without a fresh quote, or without the size, holds the whole
  order back.
* The net price is the combination of those quotes: the sum over legs of ``ratio x ask``
  for buys less ``ratio x bid`` for sells.  A limit order fills when the net is at or
  better than (not above) its limit: a debit of at most the limit, a credit of at least
  the limit's size.  The legs fill at their quotes, so any improvement is the trader's.
* It rests until the quotes allow it (DAY/GTC), or is canceled when they do not at once
  (IOC and FOK, which for an all-or-none order mean the same), with the reason naming the
  leg that held it back.
* A combination has no book of its own: it fills only against quotes (as a taker), never
  at its own price on a print.  Its legs do not share displayed size with the single-leg
  orders of those instruments (each engine tracks its own).

Hand-written: the brokers' conventions, a few sums over at most four quotes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from quantdesk.trading.engine.checks import CheckFailure
from quantdesk.trading.engine.types import (
    ZERO,
    EventKind,
    Fill,
    InstrumentSpec,
    Liquidity,
    OrderEvent,
    OrderType,
    QuoteTick,
    Side,
    TimeInForce,
    execution_id,
)

MIN_LEGS, MAX_LEGS = 2, 4


@dataclass(frozen=True, slots=True)
class Leg:
    instrument: str
    side: Side
    ratio: int = 1


@dataclass(frozen=True, slots=True)
class MultiLegOrder:
    """``quantity`` combinations; ``limit_price`` the net per combination (debit > 0)."""

    id: str
    legs: tuple[Leg, ...]
    quantity: Decimal
    type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    version: int = 1
    priority: int = 0

    def leg_quantity(self, leg: Leg) -> Decimal:
        return self.quantity * leg.ratio


def _name(index: int, leg: Leg) -> str:
    return f"leg {index + 1} ({leg.instrument})"


def check_multileg(
    order: MultiLegOrder, specs: Mapping[str, InstrumentSpec]
) -> CheckFailure | None:
    """Pre-trade checks of an mleg order; a refusal names the leg."""

    def invalid(detail: str) -> CheckFailure:
        return CheckFailure("invalid-multileg-order", "Invalid multi-leg order", detail)

    if not MIN_LEGS <= len(order.legs) <= MAX_LEGS:
        return invalid(f"an mleg order has {MIN_LEGS} to {MAX_LEGS} legs, not {len(order.legs)}")
    if order.quantity <= 0:
        return invalid("quantity (the number of combinations) must be positive")
    if order.type is OrderType.LIMIT:
        if order.limit_price is None:
            return invalid("a limit mleg order needs limit_price (the net: debit > 0, credit < 0)")
    elif order.type is not OrderType.MARKET:
        return invalid(f"an mleg order is market or limit, not {order.type}")
    seen: set[str] = set()
    for index, leg in enumerate(order.legs):
        if leg.instrument in seen:
            return invalid(f"{_name(index, leg)}: each instrument may be in one leg only")
        seen.add(leg.instrument)
        if leg.ratio < 1:
            return invalid(f"{_name(index, leg)}: ratio must be a positive whole number")
        spec = specs.get(leg.instrument)
        if spec is None:
            return invalid(f"{_name(index, leg)}: unknown instrument")
        quantity = order.leg_quantity(leg)
        if spec.lot_size > 0 and quantity % spec.lot_size != 0:
            return CheckFailure(
                "quantity-not-lot-multiple",
                "Quantity is not a multiple of the lot size",
                f"{_name(index, leg)}: {quantity} (quantity {order.quantity} x ratio "
                f"{leg.ratio}) is not a multiple of the lot size {spec.lot_size}",
            )
    return None


@dataclass(frozen=True, slots=True)
class Pricing:
    """The legs' prices against the current quotes, or why they cannot trade now."""

    prices: tuple[Decimal, ...] = ()
    net: Decimal | None = None
    problem: str | None = None


def price_legs(
    order: MultiLegOrder,
    quotes: Mapping[str, QuoteTick],
    now: dt.datetime,
    *,
    max_quote_age: dt.timedelta | None = None,
    used: Mapping[str, tuple[Decimal, Decimal]] | None = None,
    size_tracking: bool = True,
) -> Pricing:
    """Each leg at its touch and the net per combination; ``problem`` names the leg (or
    the net) that stops the whole order from filling now.  ``used``: size already taken
    from each instrument's quote (ask, bid)."""
    prices: list[Decimal] = []
    net = ZERO
    for index, leg in enumerate(order.legs):
        quote = quotes.get(leg.instrument)
        if quote is None or (max_quote_age is not None and now - quote.ts > max_quote_age):
            return Pricing(problem=f"{_name(index, leg)}: no fresh quote")
        buy = leg.side is Side.BUY
        price = quote.ask if buy else quote.bid
        if price is None:
            return Pricing(problem=f"{_name(index, leg)}: no {'ask' if buy else 'bid'}")
        if size_tracking:
            taken = (used or {}).get(leg.instrument, (ZERO, ZERO))[0 if buy else 1]
            shown = (quote.ask_size if buy else quote.bid_size) - taken
            needed = order.leg_quantity(leg)
            if shown < needed:
                return Pricing(
                    problem=f"{_name(index, leg)}: {max(shown, ZERO)} on offer at {price}, "
                    f"{needed} needed (all or none)"
                )
        prices.append(price)
        net += leg.ratio * price if buy else -leg.ratio * price
    if order.type is OrderType.LIMIT:
        assert order.limit_price is not None  # noqa: S101 - checked at placement
        if net > order.limit_price:
            legs = ", ".join(
                f"{_name(i, leg)} {'ask' if leg.side is Side.BUY else 'bid'} {p}"
                for i, (leg, p) in enumerate(zip(order.legs, prices, strict=True))
            )
            return Pricing(
                tuple(prices),
                net,
                f"the net {net} of the quotes ({legs}) is worse than the limit {order.limit_price}",
            )
    return Pricing(tuple(prices), net)


@dataclass(slots=True)
class MultiLegBook:
    """Working mleg orders against the latest quote of each of their instruments."""

    size_tracking: bool = True
    max_quote_age: dt.timedelta | None = None
    quotes: dict[str, QuoteTick] = field(default_factory=dict)
    _orders: dict[str, MultiLegOrder] = field(default_factory=dict)
    _used: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)

    def open_orders(self) -> list[MultiLegOrder]:
        return list(self._orders.values())

    def get(self, order_id: str) -> MultiLegOrder | None:
        return self._orders.get(order_id)

    def __len__(self) -> int:
        return len(self._orders)

    def add(self, order: MultiLegOrder, now: dt.datetime) -> list[OrderEvent]:
        """A new order: filled at once if every leg's quote allows, else rests (IOC/FOK:
        canceled, the reason naming what held it back)."""
        if order.id in self._orders:
            raise ValueError(f"order {order.id} is already working")
        pricing = self._price(order, now)
        if pricing.problem is None:
            source = "+".join(self.quotes[leg.instrument].source_id for leg in order.legs)
            return self._fill(order, pricing, now, source)
        if order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            reason = f"all or none: {pricing.problem}"
            return [OrderEvent(order.id, EventKind.CANCELED, now, order.version, reason=reason)]
        self._orders[order.id] = order
        return []

    def restore(self, order: MultiLegOrder) -> None:
        """Put back a stored open order without matching it: the next quote of any of its
        instruments does."""
        self._orders[order.id] = order

    def cancel(self, order_id: str) -> MultiLegOrder | None:
        return self._orders.pop(order_id, None)

    def replace(self, order: MultiLegOrder, now: dt.datetime) -> list[OrderEvent]:
        self.cancel(order.id)
        return self.add(order, now)

    def on_quote(self, instrument: str, quote: QuoteTick) -> list[OrderEvent]:
        """A new quote of ``instrument``: its orders, in priority, fill if they now can."""
        self.quotes[instrument] = quote
        self._used.pop(instrument, None)  # a new quote brings fresh size
        events: list[OrderEvent] = []
        waiting = sorted(
            (o for o in self._orders.values() if any(g.instrument == instrument for g in o.legs)),
            key=lambda o: o.priority,
        )
        for order in waiting:
            pricing = self._price(order, quote.ts)
            if pricing.problem is None:
                del self._orders[order.id]
                events += self._fill(order, pricing, quote.ts, quote.source_id)
        return events

    def _price(self, order: MultiLegOrder, now: dt.datetime) -> Pricing:
        return price_legs(
            order,
            self.quotes,
            now,
            max_quote_age=self.max_quote_age,
            used=self._used,
            size_tracking=self.size_tracking,
        )

    def _fill(
        self, order: MultiLegOrder, pricing: Pricing, now: dt.datetime, source_id: str
    ) -> list[OrderEvent]:
        """One FILL per leg (``fill.leg``, ``fill.instrument``), all in one list: the
        service stores them in one transaction, so they are kept or lost together."""
        events: list[OrderEvent] = []
        for index, (leg, price) in enumerate(zip(order.legs, pricing.prices, strict=True)):
            quantity = order.leg_quantity(leg)
            if self.size_tracking:
                ask, bid = self._used.get(leg.instrument, (ZERO, ZERO))
                buy = leg.side is Side.BUY
                self._used[leg.instrument] = (
                    ask + quantity if buy else ask,
                    bid if buy else bid + quantity,
                )
            fill = Fill(
                order_id=order.id,
                execution_id=execution_id(order.id, order.version, source_id, index),
                price=price,
                quantity=quantity,
                liquidity=Liquidity.TAKER,
                source_id=source_id,
                ts=now,
                order_version=order.version,
                instrument=leg.instrument,
                leg=index,
            )
            events.append(OrderEvent(order.id, EventKind.FILL, now, order.version, fill=fill))
        return events
