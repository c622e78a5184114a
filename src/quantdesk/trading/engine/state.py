"""The order state machine: which transitions exist, and what a fill does to an order.

``pending_new -> new | rejected``; an open order (``new``, ``partially_filled``) may fill,
be canceled, expire or go pending a cancel or a replace; a pending cancel or replace still
fills (a fill racing a cancel wins) and then settles; terminal states never change.

The exits of a bracket or OTO start ``held`` (``pending_new -> held``, Alpaca's status for a
leg waiting on its entry): ``held -> new`` when the entry's first fill activates them, or
canceled/expired with their group; a held exit can be replaced (its prices) like any order.
"""

from __future__ import annotations

from decimal import Decimal

from quantdesk.trading.engine.types import OrderStatus

S = OrderStatus
_OPEN_NEXT = frozenset(
    {S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.PENDING_CANCEL, S.PENDING_REPLACE}
)
ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_NEW: frozenset({S.NEW, S.HELD, S.REJECTED}),
    S.HELD: frozenset({S.NEW, S.CANCELED, S.EXPIRED, S.PENDING_CANCEL, S.PENDING_REPLACE}),
    S.NEW: _OPEN_NEXT,
    S.PARTIALLY_FILLED: _OPEN_NEXT,
    S.PENDING_CANCEL: frozenset({S.CANCELED, S.PARTIALLY_FILLED, S.FILLED, S.NEW, S.HELD}),
    S.PENDING_REPLACE: frozenset(
        {S.NEW, S.HELD, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}
    ),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REJECTED: frozenset(),
}


class IllegalTransition(ValueError):
    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"an order cannot go from {current} to {target}")
        self.current = current
        self.target = target


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    if target not in ALLOWED[current]:
        raise IllegalTransition(current, target)
    return target


def status_after_fill(
    current: OrderStatus, quantity: Decimal, filled_before: Decimal, fill: Decimal
) -> OrderStatus:
    """The status once ``fill`` more units are filled; refuses overfills and dead orders."""
    if fill <= 0:
        raise ValueError("a fill has a positive quantity")
    filled = filled_before + fill
    if filled > quantity:
        raise ValueError(f"a fill of {fill} would overfill ({filled_before} of {quantity})")
    target = S.FILLED if filled == quantity else S.PARTIALLY_FILLED
    return transition(current, target)
