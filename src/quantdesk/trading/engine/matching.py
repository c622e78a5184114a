"""The matching engine of one instrument: working orders against quotes and trade prints.

Written by hand because no library matches simulated orders against an external top of
book (an exchange's order book matches orders against each other).  The rules, after
NautilusTrader's L1 simulation (docs/trading.md lists them with worked cases):

* An order that can trade when it arrives (a market order, a marketable limit, a stop at
  its trigger) is a *taker*: it fills at the quote (buys at the ask, sells at the bid), up
  to the displayed size when size tracking is on, and the rest one tick worse, never past
  its limit.  What it cannot fill rests (or is canceled: IOC; or nothing fills: FOK).
* A resting limit is a *maker*: when a later quote or trade crosses it, it fills at its
  own limit price, up to the quote's or the trade's size.
* Stops trigger on the last traded price (a quote's last, or a trade print) at or through
  the stop, as NSE's and Alpaca's do (a quote without a last price elects on its touch);
  a triggered stop is a market order (a gap fills at the market, not at the trigger), a
  triggered stop-limit a limit.  The print that elects a stop-limit does not also fill it.
* Size tracking: the displayed size of a quote is consumed by the fills it gives, so two
  orders never both take the same 300 on offer; a new quote brings fresh size.
* A market order never fills at a stale quote: it waits for a fresh one (IOC: canceled).
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal

from quantdesk.trading.engine.types import (
    ZERO,
    EventKind,
    Fill,
    InstrumentSpec,
    Liquidity,
    Order,
    OrderEvent,
    OrderType,
    QuoteTick,
    Side,
    TimeInForce,
    TradeTick,
    execution_id,
)

_UNLIMITED = Decimal("Infinity")


@dataclass(slots=True)
class _Ladder:
    """Order ids sorted by (price key, priority): the best first."""

    keys: list[tuple[Decimal, int, str]] = field(default_factory=list)

    def add(self, key: Decimal, order: Order) -> None:
        bisect.insort(self.keys, (key, order.priority, order.id))

    def remove(self, key: Decimal, order: Order) -> None:
        entry = (key, order.priority, order.id)
        at = bisect.bisect_left(self.keys, entry)
        if at < len(self.keys) and self.keys[at] == entry:
            del self.keys[at]


class MatchingEngine:
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
        self._buy_limits = _Ladder()  # key: -limit (highest first)
        self._sell_limits = _Ladder()  # key: limit (lowest first)
        self._buy_stops = _Ladder()  # key: stop (lowest triggers first as the ask rises)
        self._sell_stops = _Ladder()  # key: -stop
        self._ask_used = ZERO
        self._bid_used = ZERO
        self._arriving: str | None = None
        # Orders resting without their arrival match (no fresh quote then, or restored):
        # the next fresh quote matches them as takers, not at their own limit.
        self._unmatched: set[str] = set()

    # --- the book ------------------------------------------------------------------------
    def open_orders(self) -> list[Order]:
        return list(self._orders.values())

    def get(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    def __len__(self) -> int:
        return len(self._orders)

    def _ladder(self, order: Order) -> tuple[_Ladder, Decimal] | None:
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

    def _unrest(self, order: Order) -> None:
        self._unmatched.discard(order.id)
        placed = self._ladder(order)
        if placed is None:
            self._takers.remove(order.id)
        else:
            placed[0].remove(placed[1], order)
        del self._orders[order.id]

    def restore(self, order: Order, *, matched: bool = True) -> None:
        """Put back an order from storage (after a restart) without matching it now: it
        rests until the next tick, so no fill comes from a quote older than the restart.
        An order that never had its arrival match (``matched=False``) gets it, as a taker,
        on the next fresh quote."""
        if order.remaining > 0:
            self._rest(order)
            if not matched:
                self._unmatched.add(order.id)

    def cancel(self, order_id: str) -> Order | None:
        self._unmatched.discard(order_id)
        order = self._orders.get(order_id)
        if order is not None:
            self._unrest(order)
        return order

    def add(self, order: Order, now: dt.datetime) -> list[OrderEvent]:
        """A new order: matched against the current quote at once (as a taker)."""
        if order.id in self._orders:
            raise ValueError(f"order {order.id} is already working")
        events: list[OrderEvent] = []
        if order.is_stop and not order.triggered and self._stop_elected(order):
            order = replace(order, triggered=True)
            events.append(OrderEvent(order.id, EventKind.TRIGGERED, now, order.version))
        if order.is_stop and not order.triggered:
            self._rest(order)
            return events
        events += self._arrive(order, now)
        return events

    def replace(self, order: Order, now: dt.datetime) -> list[OrderEvent]:
        """A modified order (same id, a newer version): requeued and matched as new."""
        self.cancel(order.id)
        return self.add(order, now)

    # --- ticks ---------------------------------------------------------------------------
    def on_quote(self, quote: QuoteTick) -> list[OrderEvent]:
        self.quote = quote
        self._ask_used = self._bid_used = ZERO
        if quote.last is not None:
            self.last_price = quote.last
        # Stops elect on the last traded price (as NSE's and Alpaca's do); a quote without
        # one elects on its touch.
        if quote.last is not None:
            elected = self._elect(quote.last, quote.last)
        else:
            elected = self._elect(quote.ask, quote.bid)
        events = [OrderEvent(o.id, EventKind.TRIGGERED, quote.ts, o.version) for o in elected]
        just_elected = {o.id for o in elected}
        for order_id in list(self._takers):
            if order_id not in just_elected and order_id in self._orders:
                events += self._take(self._orders[order_id], quote.ts, quote.source_id)
        for order in elected:
            events += self._arrive(order, quote.ts)
        if self._unmatched and self._fresh(quote.ts):
            waiting, self._unmatched = self._unmatched, set()
            arriving = sorted(
                (self._orders[i] for i in waiting if i in self._orders and i not in just_elected),
                key=lambda o: o.priority,
            )
            for order in arriving:
                events += self._arrive(order, quote.ts)
            # Matched as takers on this quote: not again as makers on the same one.
            just_elected |= {o.id for o in arriving}
        events += self._make_from_quote(quote, just_elected)
        return events

    def on_trade(self, trade: TradeTick) -> list[OrderEvent]:
        self.last_price = trade.price
        elected = self._elect(trade.price, trade.price)
        events = [OrderEvent(o.id, EventKind.TRIGGERED, trade.ts, o.version) for o in elected]
        for order in elected:
            events += self._arrive(order, trade.ts)
        # The print that elects a stop-limit does not also fill it: it rests from here on.
        events += self._make_from_trade(trade, {o.id for o in elected})
        return events

    # --- stops ---------------------------------------------------------------------------
    def _stop_elected(self, order: Order) -> bool:
        assert order.stop_price is not None  # noqa: S101
        reference = self.last_price
        if reference is None and self.quote is not None:
            reference = self.quote.ask if order.side is Side.BUY else self.quote.bid
        if reference is None:
            return False
        if order.side is Side.BUY:
            return reference >= order.stop_price
        return reference <= order.stop_price

    def _elect(self, buy_price: Decimal | None, sell_price: Decimal | None) -> list[Order]:
        """Trigger the stops ``buy_price`` (rising) and ``sell_price`` (falling) reach."""
        elected: list[Order] = []
        if buy_price is not None:
            while self._buy_stops.keys and self._buy_stops.keys[0][0] <= buy_price:
                elected.append(self._trigger(self._buy_stops.keys[0][2]))
        if sell_price is not None:
            while self._sell_stops.keys and -self._sell_stops.keys[0][0] >= sell_price:
                elected.append(self._trigger(self._sell_stops.keys[0][2]))
        return elected

    def _trigger(self, order_id: str) -> Order:
        order = self._orders[order_id]
        self._unrest(order)
        order = replace(order, triggered=True)
        self._rest(order)  # a stop now waits as a taker, a stop-limit as a limit
        return order

    # --- takers --------------------------------------------------------------------------
    def _fresh(self, now: dt.datetime) -> bool:
        if self.quote is None:
            return False
        return self.max_quote_age is None or now - self.quote.ts <= self.max_quote_age

    def _arrive(self, order: Order, now: dt.datetime) -> list[OrderEvent]:
        """An order becoming active: it takes what it can, then rests or is canceled."""
        if order.id in self._orders:
            self._unrest(order)
        tif = order.time_in_force
        if not self._fresh(now):
            if tif in (TimeInForce.IOC, TimeInForce.FOK):
                return [self._canceled(order, now, "no fresh quote to trade against")]
            self._rest(order)
            if not order.works_as_market:  # market orders are takers on every quote anyway
                self._unmatched.add(order.id)
            return []
        assert self.quote is not None  # noqa: S101
        if tif is TimeInForce.FOK and self._fillable(order) < order.remaining:
            return [self._canceled(order, now, "fill or kill: not enough size at the price")]
        # Visible to _fill while it takes, placed in its queue only if something is left.
        self._orders[order.id] = order
        self._arriving = order.id
        try:
            events = self._take(order, now, self.quote.source_id)
        finally:
            self._arriving = None
        current = self._orders.pop(order.id, None)
        if current is not None:
            if tif is TimeInForce.IOC:
                events.append(self._canceled(current, now, "immediate or cancel: unfilled part"))
            else:
                self._rest(current)
        return events

    def _canceled(self, order: Order, now: dt.datetime, reason: str) -> OrderEvent:
        return OrderEvent(order.id, EventKind.CANCELED, now, order.version, reason=reason)

    def _touch(self, side: Side) -> tuple[Decimal | None, Decimal]:
        """(best opposite price, its size still on display)."""
        assert self.quote is not None  # noqa: S101
        if side is Side.BUY:
            price, size, used = self.quote.ask, self.quote.ask_size, self._ask_used
        else:
            price, size, used = self.quote.bid, self.quote.bid_size, self._bid_used
        if not self.size_tracking:
            return price, _UNLIMITED
        return price, max(size - used, ZERO)

    def _levels(self, order: Order) -> list[tuple[Decimal, Decimal]]:
        """(price, size) the order may take now: the touch, then one tick worse."""
        touch, size = self._touch(order.side)
        if touch is None:
            return []
        tick = self.spec.tick_size
        step = tick if order.side is Side.BUY else -tick
        if order.works_as_market:
            touch += step * order.fill_model.slippage_ticks()
        levels = [(touch, size)] if size > 0 else []
        if self.size_tracking:
            levels.append((touch + step, _UNLIMITED))
        limit = order.limit_price if order.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
        if limit is not None:
            if order.side is Side.BUY:
                levels = [(p, s) for p, s in levels if p <= limit]
            else:
                levels = [(p, s) for p, s in levels if p >= limit]
        return levels

    def _fillable(self, order: Order) -> Decimal:
        return sum((self._lots(size) for _, size in self._levels(order)), ZERO)

    def _lots(self, size: Decimal) -> Decimal:
        if size == _UNLIMITED:
            return size
        lot = self.spec.lot_size
        return (size // lot) * lot

    def _take(self, order: Order, now: dt.datetime, source_id: str) -> list[OrderEvent]:
        events: list[OrderEvent] = []
        want = order.remaining
        if order.time_in_force is not TimeInForce.FOK:
            want = order.fill_model.portion(order.id, source_id, want, self.spec.lot_size)
        for index, (price, size) in enumerate(self._levels(order)):
            if want <= 0:
                break
            quantity = min(want, self._lots(size))
            if quantity <= 0:
                continue
            if index == 0 and self.size_tracking:
                self._use(order.side, quantity)
            want -= quantity
            order, event = self._fill(
                order, price, quantity, Liquidity.TAKER, source_id, now, index
            )
            events.append(event)
        return events

    def _use(self, side: Side, quantity: Decimal) -> None:
        if side is Side.BUY:
            self._ask_used += quantity
        else:
            self._bid_used += quantity

    def _fill(
        self,
        order: Order,
        price: Decimal,
        quantity: Decimal,
        liquidity: Liquidity,
        source_id: str,
        now: dt.datetime,
        index: int,
    ) -> tuple[Order, OrderEvent]:
        filled = order.with_fill(quantity)
        if filled.remaining > 0:
            self._orders[order.id] = filled  # same place in its queue: time priority kept
        elif order.id == self._arriving:
            del self._orders[order.id]  # never queued
        else:
            self._unrest(order)
        fill = Fill(
            order_id=order.id,
            execution_id=execution_id(order.id, order.version, source_id, index),
            price=price,
            quantity=quantity,
            liquidity=liquidity,
            source_id=source_id,
            ts=now,
            order_version=order.version,
        )
        return filled, OrderEvent(order.id, EventKind.FILL, now, order.version, fill=fill)

    # --- makers --------------------------------------------------------------------------
    def _make_from_quote(self, quote: QuoteTick, skip: set[str]) -> list[OrderEvent]:
        events: list[OrderEvent] = []
        if quote.ask is not None:
            events += self._make(self._buy_limits, Side.BUY, quote.ask, quote, None, skip)
        if quote.bid is not None:
            events += self._make(self._sell_limits, Side.SELL, quote.bid, quote, None, skip)
        return events

    def _make_from_trade(self, trade: TradeTick, skip: set[str]) -> list[OrderEvent]:
        remaining = [trade.size if self.size_tracking else _UNLIMITED]
        events = self._make(self._buy_limits, Side.BUY, trade.price, trade, remaining, skip)
        events += self._make(self._sell_limits, Side.SELL, trade.price, trade, remaining, skip)
        return events

    def _make(
        self,
        ladder: _Ladder,
        side: Side,
        market: Decimal,
        tick: QuoteTick | TradeTick,
        trade_size: list[Decimal] | None,
        skip: set[str],
    ) -> list[OrderEvent]:
        """Resting limits on ``side`` that ``market`` crosses fill at their own price."""
        events: list[OrderEvent] = []
        keys = ladder.keys  # walked in place: a fill that ends an order removes it here
        i = 0
        while i < len(keys):
            order_id = keys[i][2]
            if order_id in skip:
                i += 1
                continue
            order = self._orders[order_id]
            limit = order.limit_price
            assert limit is not None  # noqa: S101
            if (market > limit) if side is Side.BUY else (market < limit):
                break
            if trade_size is None:
                _, available = self._touch(side)
            else:
                available = trade_size[0]
            want = order.fill_model.portion(
                order.id, tick.source_id, order.remaining, self.spec.lot_size
            )
            quantity = min(want, self._lots(available))
            if quantity <= 0:
                break
            if trade_size is None:
                if self.size_tracking:
                    self._use(side, quantity)
            else:
                trade_size[0] -= quantity
            _, event = self._fill(
                order, limit, quantity, Liquidity.MAKER, tick.source_id, tick.ts, 0
            )
            events.append(event)
            if order_id in self._orders:
                i += 1
        return events
