"""Trailing stops: where the stop of a ``trailing_stop`` order sits, after Alpaca's rules.

The order follows the high-water mark ``hwm`` (the highest reference price since it was
placed for a sell, the lowest for a buy) at ``trail_price`` (an amount) or
``trail_percent`` (a percentage) away: a sell's stop is ``hwm - trail_price`` or
``hwm * (1 - trail_percent / 100)``, a buy's ``hwm + trail_price`` or
``hwm * (1 + trail_percent / 100)``.  The stop only ever tightens (moves with the market in
the trader's favour, stays put otherwise) and is kept on the instrument's tick grid, rounded
away from the market (a sell's down, a buy's up) so that it is never closer than the trail.
Once elected it is a stop: a market order, filled at the quote.

Hand-written: a few lines of arithmetic; the matching engine calls it on every trade print
(and every quote's last price) for its untriggered trailing stops.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from quantdesk.trading.engine.types import Order, Side

_HUNDRED = Decimal(100)


def validate_trail(trail_price: Decimal | None, trail_percent: Decimal | None) -> str | None:
    """Why a trail is invalid, or ``None``: exactly one of the two, and positive."""
    if (trail_price is None) == (trail_percent is None):
        return "a trailing stop needs exactly one of trail_price and trail_percent"
    if trail_price is not None and trail_price <= 0:
        return "trail_price must be positive"
    if trail_percent is not None and not Decimal(0) < trail_percent < _HUNDRED:
        return "trail_percent must be between 0 and 100"
    return None


def stop_for(side: Side, hwm: Decimal, order: Order, tick: Decimal) -> Decimal:
    """The stop at ``trail`` from the high-water mark, on the tick grid, away from the market."""
    if order.trail_price is not None:
        raw = hwm - order.trail_price if side is Side.SELL else hwm + order.trail_price
    else:
        assert order.trail_percent is not None  # noqa: S101 - validated at placement
        factor = order.trail_percent / _HUNDRED
        raw = hwm * (1 - factor) if side is Side.SELL else hwm * (1 + factor)
    if tick <= 0:
        return raw
    rounding = ROUND_FLOOR if side is Side.SELL else ROUND_CEILING
    return (raw / tick).to_integral_value(rounding=rounding) * tick


def tighter(side: Side, new: Decimal, old: Decimal | None) -> bool:
    """Is ``new`` a tighter stop than ``old``: higher for a sell, lower for a buy."""
    if old is None:
        return True
    return new > old if side is Side.SELL else new < old


def better_mark(side: Side, price: Decimal, hwm: Decimal | None) -> bool:
    """Does ``price`` set a new high-water mark: higher for a sell, lower for a buy."""
    if hwm is None:
        return True
    return price > hwm if side is Side.SELL else price < hwm
