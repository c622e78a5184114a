"""Fee schedules: what a fill costs.  A flat rate in basis points of the traded value with
a minimum per fill (the Indian statutory charges — STT, exchange fees, stamp duty, GST —
come with the F&O lifecycle)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from quantdesk.trading.engine.positions import money

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    bps: Decimal = ZERO
    minimum: Decimal = ZERO
    maximum: Decimal | None = None

    def __post_init__(self) -> None:
        if self.bps < 0 or self.minimum < 0 or (self.maximum is not None and self.maximum < 0):
            raise ValueError("fees are not negative")

    def fee(self, value: Decimal) -> Decimal:
        """The fee on a fill of ``value`` (its absolute traded value)."""
        if self.bps == 0 and self.minimum == 0:
            return ZERO
        fee = max(abs(value) * self.bps / Decimal(10_000), self.minimum)
        if self.maximum is not None:
            fee = min(fee, self.maximum)
        return money(fee)
