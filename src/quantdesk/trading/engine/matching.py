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
* Trailing stops (engine.trailing) follow the reference price that elects stops (the last
  traded price, or the touch): each move of the stop is a TRAILED event, then it elects and
  fills as a stop.
* Groups (engine.contingent): a bracket's or an OTO's exits are held until the entry fills
  and then work for what it filled (ACTIVATED); an exit's fill resizes its sibling at once
  (RESIZED, or CANCELED when nothing is left), inside the same tick, so two exits never
  both fill the same units.  Exits activated by a fill are matched, as arrivals, at the end
  of the call that filled their entry (on the same quote).
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import replace
from decimal import Decimal

from quantdesk.trading.engine import trailing
from quantdesk.trading.engine.book import TRAILING, Ladder
from quantdesk.trading.engine.groups import GroupedBook
from quantdesk.trading.engine.types import (
    ZERO,
    EventKind,
    Fill,
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
_FILL = EventKind.FILL


class MatchingEngine(GroupedBook):
    """One instrument's working orders matched against its quotes and trade prints."""

    def restore(self, order: Order, *, matched: bool = True) -> None:
        """Put back an order from storage (after a restart) without matching it now: it
        rests until the next tick, so no fill comes from a quote older than the restart.
        An order that never had its arrival match (``matched=False``) gets it, as a taker,
        on the next fresh quote.  A member of a known group is sized by its group."""
        gid = self._group_of.get(order.id)
        if gid is not None:
            self.cancel(order.id)
            self._reopen(gid, order, matched)
            self._regroup(gid, None, [], arrive=False, matched=matched)
        elif order.remaining > 0:
            self._place(order, matched)

    def add(self, order: Order, now: dt.datetime) -> list[OrderEvent]:
        """A new order: matched against the current quote at once (as a taker)."""
        if order.id in self._orders or (self._waiting and order.id in self._waiting):
            raise ValueError(f"order {order.id} is already working")
        kind = order.type
        if kind is OrderType.LIMIT or kind is OrderType.MARKET:
            events = self._arrive(order, now)  # the common case, without the stop checks
        else:
            events = self._enter(order, now)
        if self._to_arrive:
            self._drain(now, events)
        return events

    def _enter(self, order: Order, now: dt.datetime) -> list[OrderEvent]:
        events: list[OrderEvent] = []
        if order.type is TRAILING and not order.triggered and order.stop_price is None:
            order = self._start_trail(order, now, events)
            if order.stop_price is None:  # no price known yet: it starts on the first
                self._waiting[order.id] = order
                self._unpriced.add(order.id)
                return events
        if order.is_stop and not order.triggered and self._stop_elected(order):
            order = replace(order, triggered=True)
            events.append(OrderEvent(order.id, EventKind.TRIGGERED, now, order.version))
        if order.is_stop and not order.triggered:
            self._rest(order)
            return events
        events += self._arrive(order, now)
        return events

    def replace(self, order: Order, now: dt.datetime) -> list[OrderEvent]:
        """A modified order (same id, a newer version): requeued and matched as new.  A
        member of a group stays in it: an exit's quantity is its group's to decide."""
        gid = self._group_of.get(order.id)
        if gid is None:
            self.cancel(order.id)
            return self.add(order, now)
        self.cancel(order.id)
        events: list[OrderEvent] = []
        group = self._groups[gid]
        group.ended.pop(order.id, None)
        if order.id == group.entry_id:
            group.entry_ended = False
            events += self._enter(order, now)
        else:
            self._waiting[order.id] = order
        self._regroup(gid, now, events, arrive=True)
        self._drain(now, events)
        return events

    # --- ticks ---------------------------------------------------------------------------
    def on_quote(self, quote: QuoteTick) -> list[OrderEvent]:
        self.quote = quote
        self._ask_used = self._bid_used = ZERO
        if quote.last is not None:
            self.last_price = quote.last
        # Stops elect (and trailing stops trail) on the last traded price (as NSE's and
        # Alpaca's do); a quote without one on its touch.
        if quote.last is not None:
            buy_price: Decimal | None = quote.last
            sell_price: Decimal | None = quote.last
        else:
            buy_price, sell_price = quote.ask, quote.bid
        events: list[OrderEvent] = []
        if self._unpriced:
            self._price_trailing(quote.ts, events)
        if self._trailing:
            self._trail(buy_price, sell_price, quote.ts, events)
        elected = self._elect(buy_price, sell_price)
        events += [OrderEvent(o.id, EventKind.TRIGGERED, quote.ts, o.version) for o in elected]
        just_elected = {o.id for o in elected}
        for order_id in list(self._takers):
            if order_id not in just_elected and order_id in self._orders:
                events += self._take(self._orders[order_id], quote.ts, quote.source_id)
        for order in elected:
            current = self._orders.get(order.id)  # a sibling's fill may have resized it
            if current is not None:
                events += self._arrive(current, quote.ts)
        if self._unmatched and self._fresh(quote.ts):
            waiting, self._unmatched = self._unmatched, set()
            arriving = sorted(
                (self._orders[i] for i in waiting if i in self._orders and i not in just_elected),
                key=lambda o: o.priority,
            )
            for order in arriving:
                current = self._orders.get(order.id)
                if current is not None:
                    events += self._arrive(current, quote.ts)
            # Matched as takers on this quote: not again as makers on the same one.
            just_elected |= {o.id for o in arriving}
        events += self._make_from_quote(quote, just_elected)
        if self._to_arrive:
            self._drain(quote.ts, events)
        return events

    def on_trade(self, trade: TradeTick) -> list[OrderEvent]:
        self.last_price = trade.price
        events: list[OrderEvent] = []
        if self._unpriced:
            self._price_trailing(trade.ts, events)
        if self._trailing:
            self._trail(trade.price, trade.price, trade.ts, events)
        elected = self._elect(trade.price, trade.price)
        events += [OrderEvent(o.id, EventKind.TRIGGERED, trade.ts, o.version) for o in elected]
        for order in elected:
            current = self._orders.get(order.id)
            if current is not None:
                events += self._arrive(current, trade.ts)
        # The print that elects a stop-limit does not also fill it: it rests from here on.
        events += self._make_from_trade(trade, {o.id for o in elected})
        if self._to_arrive:
            self._drain(trade.ts, events)
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

    # --- trailing stops (engine.trailing) ------------------------------------------------
    def _start_trail(self, order: Order, now: dt.datetime, events: list[OrderEvent]) -> Order:
        """The first stop of a trailing stop: from its stored mark, or the current price."""
        hwm = order.hwm
        if hwm is None:
            hwm = self.last_price
            if hwm is None and self.quote is not None:
                hwm = self.quote.bid if order.side is Side.SELL else self.quote.ask
        if hwm is None:
            return order
        stop = trailing.stop_for(order.side, hwm, order, self.spec.tick_size)
        order = replace(order, hwm=hwm, stop_price=stop)
        events.append(
            OrderEvent(order.id, EventKind.TRAILED, now, order.version, stop_price=stop, hwm=hwm)
        )
        return order

    def _price_trailing(self, now: dt.datetime, events: list[OrderEvent]) -> None:
        for order_id in sorted(self._unpriced):
            order = self._waiting.pop(order_id, None)
            self._unpriced.discard(order_id)
            if order is not None:
                events += self._enter(order, now)

    def _trail(
        self,
        buy_price: Decimal | None,
        sell_price: Decimal | None,
        now: dt.datetime,
        events: list[OrderEvent],
    ) -> None:
        """Move each trailing stop after a new high-water mark (low for buys); only ever
        tighter.  Each move is an event, so the service can store it."""
        tick = self.spec.tick_size
        for order_id in list(self._trailing):
            order = self._orders[order_id]
            price = sell_price if order.side is Side.SELL else buy_price
            if price is None or not trailing.better_mark(order.side, price, order.hwm):
                continue
            stop = trailing.stop_for(order.side, price, order, tick)
            if not trailing.tighter(order.side, stop, order.stop_price):
                self._orders[order_id] = replace(order, hwm=price)
                continue
            ladder = self._buy_stops if order.side is Side.BUY else self._sell_stops
            ladder.remove(self._stop_key(order), order)
            moved = replace(order, hwm=price, stop_price=stop)
            ladder.add(self._stop_key(moved), moved)
            self._orders[order_id] = moved
            events.append(
                OrderEvent(
                    order_id, EventKind.TRAILED, now, order.version, stop_price=stop, hwm=price
                )
            )

    @staticmethod
    def _stop_key(order: Order) -> Decimal:
        assert order.stop_price is not None  # noqa: S101
        return order.stop_price if order.side is Side.BUY else -order.stop_price

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
            if self._side:
                events += self._side
                self._side = []
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
        gid = self._group_of.get(order.id) if self._group_of else None
        # A group member may fill twice on one tick (an exit re-activated by its entry's
        # fill): what it had filled before tells those fills apart.
        key = source_id if gid is None else f"{source_id}@{order.filled_quantity}"
        version = order.version
        # Positional: this runs once per fill (keywords cost more).
        fill = Fill(
            order.id,
            execution_id(order.id, version, key, index),
            price,
            quantity,
            liquidity,
            source_id,
            now,
            version,
        )
        if gid is not None:
            self._after_group_fill(gid, filled, now)
        return filled, OrderEvent(order.id, _FILL, now, version, fill)

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
        ladder: Ladder,
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
            place = keys[i]
            order_id = place[2]
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
            if self._side:
                # Its group changed (a sibling resized or canceled, perhaps out of this
                # very ladder): find our place in the walk again.
                events += self._side
                self._side = []
                i = bisect.bisect_left(keys, place)
                if i < len(keys) and keys[i] == place:
                    i += 1
            elif order_id in self._orders:
                i += 1  # still resting (partly filled): on to the next
        return events
