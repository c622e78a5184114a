"""Auto-slicing: an order above the exchange's freeze quantity
becomes child orders of at most that quantity each, in whole lots.

An exchange rejects a single F&O order above the underlying's *quantity freeze limit* (NSE
publishes them per index, and per stock in its contract files).  Sliced, the parent is a
plan and each child an order of its own (``parent_id`` is the parent's id, ids
``<parent>.1``, ``<parent>.2`` ...), placed at once and independent from there on; the
parent's fills are the sum of its children's.  Our rule: as few children as the limit
allows, as equal as whole lots allow, so that none is a small remainder (4,500 NIFTY, lot
75, limit 1,800 = 24 lots: three children of 1,500, not 1,800 + 1,800 + 900).

``iceberg_sizes`` gives Kite's iceberg instead: a chosen number of legs (2-10), released one
after another as each fills, so that only one leg shows at a time.

The freeze limits are data: ``FreezeTable`` (per underlying, with its source and date),
``NSE_INDEX_FREEZE_LIMITS`` the current NSE index limits; a deployment passes its own table
for stocks or other exchanges.  Hand-written: one division.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from quantdesk.trading.engine.types import ZERO, Order


@dataclass(frozen=True, slots=True)
class FreezeTable:
    """Maximum units per order, by underlying (``NIFTY``), with where the numbers are from."""

    limits: Mapping[str, Decimal] = field(default_factory=dict)
    source: str = ""
    effective: dt.date | None = None

    def limit(self, underlying: str) -> Decimal | None:
        return self.limits.get(underlying.upper())

    def merged(self, other: Mapping[str, Decimal], source: str) -> FreezeTable:
        """This table with ``other``'s limits on top (configuration overriding defaults)."""
        limits = {**self.limits, **{k.upper(): v for k, v in other.items()}}
        return FreezeTable(limits, f"{self.source}; {source}", self.effective)


NSE_INDEX_FREEZE_LIMITS = FreezeTable(
    limits={
        "NIFTY": Decimal(1800),
        "BANKNIFTY": Decimal(600),
        "FINNIFTY": Decimal(1800),
        "MIDCPNIFTY": Decimal(2800),
        "NIFTYNXT50": Decimal(600),
    },
    source=(
        "NSE circular 'Quantity freeze limits for Indices' of 2025-10-31 (F&O), effective "
        "2025-11-03, under the methodology of consolidated circular NSE/FAOP/67775 "
        "(2025-04-30); maximum units per order"
    ),
    effective=dt.date(2025, 11, 3),
)


def slice_sizes(quantity: Decimal, freeze: Decimal, lot: Decimal = Decimal(1)) -> list[Decimal]:
    """Child quantities: as few as the freeze limit allows, as equal as whole lots allow,
    none above ``freeze`` (rounded down to whole lots)."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    if lot <= 0 or quantity % lot != 0:
        raise ValueError(f"quantity {quantity} is not a multiple of the lot {lot}")
    per_order = (freeze // lot) * lot
    if per_order <= 0:
        raise ValueError(f"the freeze limit {freeze} is below one lot ({lot})")
    if quantity <= per_order:
        return [quantity]
    lots = int(quantity // lot)
    lots_per_order = int(per_order // lot)
    children = -(-lots // lots_per_order)  # ceiling division
    base, extra = divmod(lots, children)
    return [Decimal(base + (1 if i < extra else 0)) * lot for i in range(children)]


def iceberg_sizes(
    quantity: Decimal, legs: int, lot: Decimal = Decimal(1), freeze: Decimal | None = None
) -> list[Decimal]:
    """Kite's iceberg: ``legs`` (2 to 10) child quantities as equal as whole lots allow,
    meant to be released one after another (the next when the one before has filled), each
    within the freeze limit if there is one."""
    if not 2 <= legs <= 10:  # Kite Connect: iceberg_legs 2-10
        raise ValueError("an iceberg has 2 to 10 legs")
    if lot <= 0 or quantity <= 0 or quantity % lot != 0:
        raise ValueError(f"quantity {quantity} is not a positive multiple of the lot {lot}")
    lots = int(quantity // lot)
    if lots < legs:
        raise ValueError(f"{quantity} is fewer than {legs} lots of {lot}")
    base, extra = divmod(lots, legs)
    sizes = [Decimal(base + (1 if i < extra else 0)) * lot for i in range(legs)]
    if freeze is not None and sizes[0] > freeze:
        raise ValueError(f"a leg of {sizes[0]} is above the freeze limit {freeze}: more legs")
    return sizes


def slice_order(order: Order, freeze: Decimal | None, lot: Decimal = Decimal(1)) -> list[Order]:
    """The children of ``order`` (or the order itself, alone, when it is not above the
    freeze limit or there is none).  Each child carries ``parent_id`` and the parent's
    prices, type, time in force and priority; none has fills yet."""
    if order.filled_quantity != ZERO:
        raise ValueError("only a new order is sliced")
    if freeze is None or order.quantity <= freeze:
        return [order]
    sizes = slice_sizes(order.quantity, freeze, lot)
    return [
        replace(order, id=f"{order.id}.{n}", quantity=size, parent_id=order.id)
        for n, size in enumerate(sizes, start=1)
    ]
