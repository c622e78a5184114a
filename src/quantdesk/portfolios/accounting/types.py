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

# Order of the types on one day: cash and securities arrive first, corporate actions apply
# to what was held at the start of the day (an ex-date), and so do dividends: a dividend's
# ``date`` is its ex-date, so shares bought on it are not entitled and shares sold on it
# still are (per share, it is measured before the day's trades).  Then trades, then the
# cash that leaves.  Within a type, the order the transactions were recorded in.  Returns
# sum each day's flows (inflows at its start, outflows at its end), so this order moves no
# flow between days.
DAY_ORDER: dict[TxnType, int] = {
    TxnType.DEPOSIT: 0,
    TxnType.TRANSFER_IN: 1,
    TxnType.SPLIT: 2,
    TxnType.BONUS: 2,
    TxnType.MERGER: 2,
    TxnType.DIVIDEND: 3,
    TxnType.BUY: 4,
    TxnType.SHORT_SELL: 4,
    TxnType.SELL: 4,
    TxnType.BUY_TO_COVER: 4,
    TxnType.OPTION_EXERCISE: 5,
    TxnType.OPTION_ASSIGNMENT: 5,
    TxnType.OPTION_EXPIRY: 5,
    TxnType.FUTURES_SETTLEMENT: 5,
    TxnType.TRANSFER_OUT: 6,
    TxnType.INTEREST: 7,
    TxnType.FEE: 8,
    TxnType.TAX: 8,
    TxnType.WITHDRAWAL: 9,
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


class DeductionsExceedGross(AccountingError):
    """Withholding tax and fees larger than the dividend or interest they are taken from:
    a negative income is an entry error (a charge beyond the payment is its own ``fee``
    or ``tax`` transaction).  ``field`` names the deduction to correct."""

    def __init__(self, transaction_id: str, message: str, field: str) -> None:
        super().__init__(transaction_id, message)
        self.field = field
