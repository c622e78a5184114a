"""Contingent orders: bracket, OCO and OTO groups, with Alpaca's field names and rules.

* ``bracket``: an entry, a take-profit limit (``take_profit.limit_price``) and a stop-loss
  (``stop_loss.stop_price``, a stop-limit with ``stop_loss.limit_price``) on the other side.
  The exits are orders of their own with the entry as ``parent_id``; they start ``held``
  and become active as the entry fills, sized to what it has filled.  Alpaca activates them
  only once the entry is completely filled; here (issue 12) a partial entry fill activates
  the exits for that part, growing as the entry fills more.
* ``oto``: an entry and one exit (a take-profit or a stop-loss), activated the same way.
* ``oco``: two exits of a position already held (a take-profit limit as the parent and a
  stop-loss as its child), both active at once.

The two exits of a bracket or an OCO share one quantity: together they never fill more
than the entry has filled (an OCO: than its quantity).  The rule for a fill of one exit,
as Alpaca's "if the take-profit order is partially filled, the stop-loss order will be
adjusted to the remaining quantity": the sibling's quantity becomes the group's quantity
less what this exit has filled; when nothing is left open for the sibling it is canceled.
So each exit's ``quantity`` is (the entry's quantity, or what it filled once it has ended)
less the sibling's fills, and its ``active`` part (what it may have filled by now) is the
entry's filled quantity less the sibling's fills.  Canceling any order of a group cancels
the rest of it (Alpaca: "if any one of the orders is canceled, any remaining open order in
the group is canceled"), the parent's cancel included.

The matching engine keeps the groups (``MatchingEngine.add_group``); this module builds
them and does the arithmetic.  Hand-written: the rules are the brokers' conventions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from quantdesk.trading.engine.types import (
    ZERO,
    Order,
    OrderClass,
    OrderType,
    Side,
    TimeInForce,
)


@dataclass(frozen=True, slots=True)
class TakeProfit:
    limit_price: Decimal


@dataclass(frozen=True, slots=True)
class StopLoss:
    stop_price: Decimal
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderGroup:
    """Orders placed together.  ``entry`` for a bracket or an OTO (``None`` for an OCO);
    ``exits``: (take-profit, stop-loss) for a bracket or an OCO, the one exit of an OTO.
    ``entry_ended`` when restoring a group whose entry is terminal (filled, or canceled or
    expired short of its quantity): its exits then work for what it filled."""

    order_class: OrderClass
    entry: Order | None
    exits: tuple[Order, ...]
    entry_ended: bool = False

    @property
    def id(self) -> str:
        """The group's id is its parent's: the entry, or an OCO's take-profit."""
        return self.entry.id if self.entry is not None else self.exits[0].id

    @property
    def members(self) -> tuple[Order, ...]:
        return self.exits if self.entry is None else (self.entry, *self.exits)


def _opposite(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


def _exit(
    order_id: str,
    parent: Order,
    side: Side,
    quantity: Decimal,
    leg: TakeProfit | StopLoss,
    parent_id: str | None,
    active: Decimal | None,
) -> Order:
    limit: Decimal | None
    stop: Decimal | None
    if isinstance(leg, TakeProfit):
        kind, limit, stop = OrderType.LIMIT, leg.limit_price, None
    else:
        kind = OrderType.STOP if leg.limit_price is None else OrderType.STOP_LIMIT
        limit, stop = leg.limit_price, leg.stop_price
    return Order(
        order_id,
        side,
        kind,
        quantity,
        parent.time_in_force,
        limit,
        stop,
        priority=parent.priority,
        fill_model=parent.fill_model,
        parent_id=parent_id,
        active=active,
    )


def check_legs(
    order_class: OrderClass,
    side: Side,
    take_profit: TakeProfit | None,
    stop_loss: StopLoss | None,
    time_in_force: TimeInForce,
    base_price: Decimal | None = None,
) -> str | None:
    """Why these legs do not make a valid group (Alpaca's rules), or ``None``.  ``side`` is
    the entry's side (an OCO: the exits' side reversed); ``base_price`` the entry's limit or
    the market price, which a stop-loss must be beyond."""
    if order_class is OrderClass.BRACKET or order_class is OrderClass.OCO:
        if take_profit is None or stop_loss is None:
            return f"a {order_class} order needs both take_profit and stop_loss"
    elif order_class is OrderClass.OTO:
        if (take_profit is None) == (stop_loss is None):
            return "an oto order needs exactly one of take_profit and stop_loss"
    else:
        return f"{order_class} is not a contingent order class"
    if time_in_force not in (TimeInForce.DAY, TimeInForce.GTC):
        return f"a {order_class} order's time_in_force must be day or gtc"
    long_entry = side is Side.BUY
    if take_profit is not None and stop_loss is not None:
        ordered = take_profit.limit_price > stop_loss.stop_price
        if ordered != long_entry:
            word = "above" if long_entry else "below"
            return f"take_profit.limit_price must be {word} stop_loss.stop_price"
    if stop_loss is not None:
        if stop_loss.limit_price is not None and (
            (stop_loss.limit_price > stop_loss.stop_price)
            if long_entry
            else (stop_loss.limit_price < stop_loss.stop_price)
        ):
            word = "at or below" if long_entry else "at or above"
            return f"stop_loss.limit_price must be {word} stop_loss.stop_price"
        if base_price is not None and (
            stop_loss.stop_price >= base_price if long_entry else stop_loss.stop_price <= base_price
        ):
            word = "below" if long_entry else "above"
            return f"stop_loss.stop_price must be {word} the base price {base_price}"
    return None


def bracket(
    entry: Order,
    take_profit: TakeProfit,
    stop_loss: StopLoss,
    *,
    take_profit_id: str,
    stop_loss_id: str,
) -> OrderGroup:
    """An entry with a take-profit and a stop-loss, both held until the entry fills."""
    problem = check_legs(
        OrderClass.BRACKET, entry.side, take_profit, stop_loss, entry.time_in_force
    )
    if problem:
        raise ValueError(problem)
    side = _opposite(entry.side)
    exits = (
        _exit(take_profit_id, entry, side, entry.quantity, take_profit, entry.id, ZERO),
        _exit(stop_loss_id, entry, side, entry.quantity, stop_loss, entry.id, ZERO),
    )
    return OrderGroup(OrderClass.BRACKET, entry, exits)


def oto(entry: Order, leg: TakeProfit | StopLoss, *, exit_id: str) -> OrderGroup:
    """An entry with one exit, held until the entry fills."""
    tp, sl = (leg, None) if isinstance(leg, TakeProfit) else (None, leg)
    problem = check_legs(OrderClass.OTO, entry.side, tp, sl, entry.time_in_force)
    if problem:
        raise ValueError(problem)
    side = _opposite(entry.side)
    exit_order = _exit(exit_id, entry, side, entry.quantity, leg, entry.id, ZERO)
    return OrderGroup(OrderClass.OTO, entry, (exit_order,))


def oco(
    template: Order, take_profit: TakeProfit, stop_loss: StopLoss, *, stop_loss_id: str
) -> OrderGroup:
    """Two exits of a held position: ``template`` is the take-profit (its id, side,
    quantity, time in force; Alpaca's ``type`` is ``limit``), the stop-loss its child."""
    problem = check_legs(
        OrderClass.OCO, _opposite(template.side), take_profit, stop_loss, template.time_in_force
    )
    if problem:
        raise ValueError(problem)
    tp = replace(
        template,
        type=OrderType.LIMIT,
        limit_price=take_profit.limit_price,
        stop_price=None,
        parent_id=None,
        active=None,
    )
    sl = _exit(stop_loss_id, tp, tp.side, tp.quantity, stop_loss, tp.id, None)
    return OrderGroup(OrderClass.OCO, None, (tp, sl))


def exit_sizes(
    capacity: Decimal,
    active_capacity: Decimal | None,
    filled: tuple[Decimal, ...],
    index: int,
) -> tuple[Decimal, Decimal | None]:
    """(quantity, active) of exit ``index``: the group's ``capacity`` (what its exits may
    fill in all) and ``active_capacity`` (what they may have filled by now; ``None``: all
    of it, an OCO) less what the other exits have filled."""
    others = sum((f for i, f in enumerate(filled) if i != index), ZERO)
    active = None if active_capacity is None else active_capacity - others
    return capacity - others, active
