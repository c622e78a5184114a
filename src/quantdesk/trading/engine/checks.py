"""Pre-trade checks: each returns ``None`` or a ``CheckFailure`` with a stable type slug
(the API turns it into a 422 problem whose ``type`` ends in that slug)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from quantdesk.trading.engine.contingent import StopLoss, TakeProfit, check_legs
from quantdesk.trading.engine.trailing import validate_trail
from quantdesk.trading.engine.types import OrderClass, Side, TimeInForce

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class CheckFailure:
    type: str
    title: str
    detail: str


def check_lot_multiple(quantity: Decimal, lot_size: Decimal) -> CheckFailure | None:
    if lot_size > 0 and quantity % lot_size != 0:
        return CheckFailure(
            "quantity-not-lot-multiple",
            "Quantity is not a multiple of the lot size",
            f"quantity {quantity:f} is not a multiple of the lot size {lot_size:f}; "
            f"try {max(quantity // lot_size, Decimal(1)) * lot_size:f}",
        )
    return None


def check_tick(price: Decimal | None, tick_size: Decimal, name: str) -> CheckFailure | None:
    if price is not None and tick_size > 0 and price % tick_size != 0:
        below = (price // tick_size) * tick_size
        return CheckFailure(
            "price-off-tick",
            "Price is off the tick grid",
            f"{name} {price:f} is not a multiple of the tick size {tick_size:f}; "
            f"the nearest prices are {below:f} and {below + tick_size:f}",
        )
    return None


def check_order_prices(
    side: str, order_type: str, limit_price: Decimal | None, stop_price: Decimal | None
) -> CheckFailure | None:
    """A stop-limit's limit must not be on the wrong side of its stop."""
    if order_type != "stop_limit" or limit_price is None or stop_price is None:
        return None
    if (side == "buy" and limit_price < stop_price) or (
        side == "sell" and limit_price > stop_price
    ):
        return CheckFailure(
            "invalid-order-prices",
            "Limit price on the wrong side of the stop",
            f"a {side} stop-limit needs limit_price "
            f"{'>=' if side == 'buy' else '<='} stop_price ({stop_price})",
        )
    return None


def check_price_band(
    price: Decimal | None, last: Decimal, band_pct: Decimal, name: str
) -> CheckFailure | None:
    if price is None or last <= 0:
        return None
    low = last * (1 - band_pct / HUNDRED)
    high = last * (1 + band_pct / HUNDRED)
    if not low <= price <= high:
        return CheckFailure(
            "price-outside-band",
            "Price outside the allowed band",
            f"{name} {price} is more than {band_pct}% away from the last price {last} "
            f"(allowed {low.normalize():f} to {high.normalize():f})",
        )
    return None


def check_order_value(value: Decimal, maximum: Decimal) -> CheckFailure | None:
    if value > maximum:
        return CheckFailure(
            "order-value-too-large",
            "Order value too large",
            f"the order's value {value.normalize():f} exceeds the maximum {maximum.normalize():f}",
        )
    return None


def check_buying_power(needed: Decimal, available: Decimal, currency: str) -> CheckFailure | None:
    if needed > available:
        return CheckFailure(
            "insufficient-buying-power",
            "Insufficient buying power",
            f"this order needs {needed:f} {currency}; the buying power is {available:f}",
        )
    return None


def check_contingent(
    order_class: str,
    side: str,
    take_profit: TakeProfit | None,
    stop_loss: StopLoss | None,
    time_in_force: str,
    base_price: Decimal | None = None,
) -> CheckFailure | None:
    """Alpaca's rules for a bracket, OCO or OTO (engine.contingent.check_legs).  ``side``
    is the entry's (for an OCO, of the position the exits close); ``base_price`` the entry's
    limit or the market price, which the stop-loss must be beyond."""
    problem = check_legs(
        OrderClass(order_class),
        Side(side),
        take_profit,
        stop_loss,
        TimeInForce(time_in_force),
        base_price,
    )
    if problem is None:
        return None
    return CheckFailure("invalid-order-class", "Invalid contingent order", problem)


def check_trailing(
    trail_price: Decimal | None, trail_percent: Decimal | None
) -> CheckFailure | None:
    problem = validate_trail(trail_price, trail_percent)
    if problem is None:
        return None
    return CheckFailure("invalid-trailing-stop", "Invalid trailing stop", problem)
