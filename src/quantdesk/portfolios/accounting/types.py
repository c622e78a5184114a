"""The vocabulary of portfolio accounting: transaction types, lot methods, a transaction.

Quantities are unsigned on a transaction (its type says the direction); lots carry a signed
quantity (positive long, negative short) and a signed cost in the portfolio's currency
(a short's cost is minus the proceeds it opened with).  Every amount is a ``Decimal``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)
ONE = Decimal(1)


class TxnType(StrEnum):
    BUY = "buy"
    SELL = "sell"
    SHORT_SELL = "short_sell"
    BUY_TO_COVER = "buy_to_cover"
    DIVIDEND = "dividend"
    INTEREST = "interest"
    FEE = "fee"
    TAX = "tax"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    SPLIT = "split"
    BONUS = "bonus"
    MERGER = "merger"
    OPTION_EXERCISE = "option_exercise"
    OPTION_ASSIGNMENT = "option_assignment"
    OPTION_EXPIRY = "option_expiry"
    FUTURES_SETTLEMENT = "futures_settlement"


# Types that need an instrument; the cash-only types take ``amount`` instead.
TRADE_TYPES = frozenset({TxnType.BUY, TxnType.SELL, TxnType.SHORT_SELL, TxnType.BUY_TO_COVER})
CLOSING_EVENTS = frozenset(
    {
        TxnType.OPTION_EXERCISE,
        TxnType.OPTION_ASSIGNMENT,
        TxnType.OPTION_EXPIRY,
        TxnType.FUTURES_SETTLEMENT,
    }
)
CORPORATE_ACTIONS = frozenset({TxnType.SPLIT, TxnType.BONUS, TxnType.MERGER})
CASH_TYPES = frozenset(
    {TxnType.INTEREST, TxnType.FEE, TxnType.TAX, TxnType.DEPOSIT, TxnType.WITHDRAWAL}
)
INSTRUMENT_TYPES = (
    TRADE_TYPES
    | CLOSING_EVENTS
    | CORPORATE_ACTIONS
    | {TxnType.DIVIDEND, TxnType.TRANSFER_IN, TxnType.TRANSFER_OUT}
)

# Order of the types on one day: cash arrives first, corporate actions apply to what was
# held at the start of the day (an ex-date), then trades, then income and the cash that
# leaves.  Within a type, the order the transactions were recorded in.
DAY_ORDER: dict[TxnType, int] = {
    TxnType.DEPOSIT: 0,
    TxnType.TRANSFER_IN: 1,
    TxnType.SPLIT: 2,
    TxnType.BONUS: 2,
    TxnType.MERGER: 2,
    TxnType.BUY: 3,
    TxnType.SHORT_SELL: 3,
    TxnType.SELL: 3,
    TxnType.BUY_TO_COVER: 3,
    TxnType.OPTION_EXERCISE: 4,
    TxnType.OPTION_ASSIGNMENT: 4,
    TxnType.OPTION_EXPIRY: 4,
    TxnType.FUTURES_SETTLEMENT: 4,
    TxnType.TRANSFER_OUT: 5,
    TxnType.DIVIDEND: 6,
    TxnType.INTEREST: 6,
    TxnType.FEE: 7,
    TxnType.TAX: 7,
    TxnType.WITHDRAWAL: 8,
}


class LotMethod(StrEnum):
    FIFO = "fifo"
    LIFO = "lifo"
    HIFO = "hifo"
    AVERAGE = "average"


@dataclass(frozen=True, slots=True)
class LotPick:
    """Specific identification: take ``quantity`` from the lot opened by ``lot_id``."""

    lot_id: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Transaction:
    """One transaction as the accounting sees it (the service builds these from rows).

    ``fx_rate`` converts the transaction's currency into the portfolio's.  ``multiplier``
    is the instrument's contract multiplier (1 for cash equities).  ``is_future`` marks a
    margined contract: its value is its unrealised P&L, not its notional.
    """

    id: str
    type: TxnType
    date: dt.date
    account: str = ""
    instrument: str | None = None
    quantity: Decimal = ZERO
    price: Decimal = ZERO
    fees: Decimal = ZERO
    amount: Decimal | None = None
    tax: Decimal = ZERO
    ratio: Decimal | None = None
    fx_rate: Decimal = ONE
    multiplier: Decimal = ONE
    is_future: bool = False
    currency: str = ""
    to_account: str | None = None
    new_instrument: str | None = None
    lots: tuple[LotPick, ...] = field(default=())
    seq: int = 0
    kind: str = "equity"  # the instrument's type (equity, etf, index, future, option; cash)

    @property
    def sort_key(self) -> tuple[dt.date, int, int]:
        return (self.date, DAY_ORDER[self.type], self.seq)


class AccountingError(ValueError):
    """A transaction the book cannot apply (sells more than held, an unknown lot...):
    ``transaction_id`` names it so the caller can point at the row or the request."""

    def __init__(self, transaction_id: str, message: str) -> None:
        super().__init__(message)
        self.transaction_id = transaction_id
        self.message = message
