"""Net positions at average cost: what a fill does to quantity, cost basis and realised P&L.

Average cost, as brokers report positions (the portfolios feature offers lot methods for
holdings).  ``cost`` is signed (quantity x average price x multiplier), so a short has a
negative cost.  A partial reduction removes cost in proportion, rounded to 4 places; the
last unit removes what is left, so a flat position carries no cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

ZERO = Decimal(0)
_MONEY = Decimal("0.0001")
_ONE = Decimal(1)


def tidy(amount: Decimal) -> Decimal:
    """The same value without trailing zeros (``10005.00`` is ``10005``), never an exponent."""
    exact = amount.normalize()
    exponent = exact.as_tuple().exponent
    return exact.quantize(_ONE) if isinstance(exponent, int) and exponent > 0 else exact


def money(value: Decimal) -> Decimal:
    """To 4 places (half-even), without trailing zeros: 990.0000 is ``990``, 0.30 is ``0.3``."""
    return tidy(value.quantize(_MONEY, rounding=ROUND_HALF_EVEN))


def sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


@dataclass(frozen=True, slots=True)
class Position:
    quantity: Decimal = ZERO
    cost: Decimal = ZERO
    realised_pnl: Decimal = ZERO

    @property
    def average_price(self) -> Decimal | None:
        return abs(self.cost / self.quantity) if self.quantity else None


def split_open_close(position_qty: Decimal, signed_qty: Decimal) -> tuple[Decimal, Decimal]:
    """(closing, opening) units of a signed fill against a signed position."""
    if position_qty == 0 or sign(position_qty) == sign(signed_qty):
        return ZERO, abs(signed_qty)
    closing = min(abs(signed_qty), abs(position_qty))
    return closing, abs(signed_qty) - closing


@dataclass(frozen=True, slots=True)
class FillEffect:
    position: Position
    closing: Decimal
    opening: Decimal
    removed_cost: Decimal  # cost basis taken out by the closing part (signed)
    closing_value: Decimal  # signed value of the closing part at the fill price
    opening_value: Decimal  # signed value of the opening part at the fill price
    realised: Decimal


def apply_fill(
    position: Position, signed_qty: Decimal, price: Decimal, multiplier: Decimal = Decimal(1)
) -> FillEffect:
    closing, opening = split_open_close(position.quantity, signed_qty)
    direction = sign(signed_qty)
    removed = closing_value = realised = ZERO
    quantity, cost = position.quantity, position.cost
    if closing:
        held = abs(quantity)
        removed = cost if closing == held else money(cost * closing / held)
        # Closing a long sells (value in), closing a short buys (value out).
        closing_value = sign(quantity) * closing * price * multiplier
        realised = closing_value - removed
        quantity += direction * closing
        cost -= removed
    opening_value = direction * opening * price * multiplier
    quantity += direction * opening
    cost += opening_value
    return FillEffect(
        Position(quantity, cost, position.realised_pnl + realised),
        closing,
        opening,
        removed,
        closing_value,
        opening_value,
        realised,
    )
