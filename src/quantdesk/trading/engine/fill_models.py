"""Fill models: how much of an order fills against the market, and at what price.

After NautilusTrader's fill models (``BestPriceFillModel``, ``OneTickSlippageFillModel``),
with the parameters validated at construction.  The matching engine asks a model two
things: how many ticks of slippage a taker order pays, and what portion of the quantity it
could fill now actually fills.  Randomness is a pure function of (seed, order, tick), so a
seeded model gives the same fills on every run and after a restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Protocol


class FillModel(Protocol):
    @property
    def name(self) -> str: ...

    def slippage_ticks(self) -> int: ...

    def portion(self, order_id: str, source_id: str, quantity: Decimal, lot: Decimal) -> Decimal:
        """Of ``quantity`` (a multiple of ``lot``) that could fill, how much does."""
        ...


@dataclass(frozen=True, slots=True)
class BestPriceFillModel:
    """At the touch, up to the displayed size; the rest one tick worse (when size tracking)."""

    name: str = "best_price"

    def slippage_ticks(self) -> int:
        return 0

    def portion(self, order_id: str, source_id: str, quantity: Decimal, lot: Decimal) -> Decimal:
        return quantity


@dataclass(frozen=True, slots=True)
class OneTickSlippageFillModel:
    """Market orders (and triggered stops) pay one tick more than the touch; limits never
    fill beyond their limit."""

    name: str = "one_tick_slippage"

    def slippage_ticks(self) -> int:
        return 1

    def portion(self, order_id: str, source_id: str, quantity: Decimal, lot: Decimal) -> Decimal:
        return quantity


@dataclass(frozen=True, slots=True)
class RandomPartialFillModel:
    """Each tick fills a seeded random share of what could fill: between ``min_share`` and
    all of it, in whole lots, at least one lot."""

    seed: int = 0
    min_share: Decimal = Decimal("0.1")
    name: str = "random_partial"

    def __post_init__(self) -> None:
        if not Decimal(0) < self.min_share <= 1:
            raise ValueError("min_share must be in (0, 1]")
        if self.seed < 0:
            raise ValueError("seed must not be negative")

    def slippage_ticks(self) -> int:
        return 0

    def portion(self, order_id: str, source_id: str, quantity: Decimal, lot: Decimal) -> Decimal:
        digest = hashlib.sha256(f"{self.seed}|{order_id}|{source_id}".encode()).digest()
        uniform = Decimal(int.from_bytes(digest[:8], "big")) / Decimal(2**64)
        share = self.min_share + (1 - self.min_share) * uniform
        lots = (quantity * share / lot).to_integral_value(rounding=ROUND_FLOOR)
        return min(quantity, max(lots, Decimal(1)) * lot)


def fill_model_from_name(name: str, seed: int = 0) -> FillModel:
    if name == "best_price":
        return BestPriceFillModel()
    if name == "one_tick_slippage":
        return OneTickSlippageFillModel()
    if name == "random_partial":
        return RandomPartialFillModel(seed=seed)
    raise ValueError(f"unknown fill model {name!r}")
