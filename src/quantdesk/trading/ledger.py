"""The double-entry cash journal of a paper-trading account.

Every movement of money is one ``LedgerEntry`` whose postings sum to zero (debits positive,
credits negative).  The books of an account:

=================  ======  ===========================================================
book               normal  holds
=================  ======  ===========================================================
``cash``           debit   free cash: what buying power is made of; never below zero
``reserved``       debit   cash set aside for open orders (released as they fill or end)
``margin``         debit   cash blocked as margin by futures, short options, intraday shorts
``positions``      debit   cost basis of positions paid in cash (equities, option premium;
                           negative for shorts, whose proceeds are in cash)
``capital``        credit  deposits less withdrawals (the opening balance is a deposit)
``realised_pnl``   credit  realised profit (futures: daily settlement too)
``fees``           debit   fees and charges paid
=================  ======  ===========================================================

The account row caches each book's balance in its natural sign (credit books negated, so a
profit is a positive ``realised_pnl``); ``post`` updates the cache in the same transaction
as the entry, and ``verify_account`` recomputes every balance from the postings.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import InsufficientFunds
from quantdesk.trading.engine.positions import tidy
from quantdesk.trading.engine.types import TERMINAL_STATUSES
from quantdesk.trading.models import (
    LedgerEntry,
    LedgerPosting,
    OrderRow,
    PositionRow,
    TradingAccount,
)
from quantdesk.trading.writes import PendingRows, RowSink

ZERO = Decimal(0)


class Book(StrEnum):
    CASH = "cash"
    RESERVED = "reserved"
    MARGIN = "margin"
    POSITIONS = "positions"
    CAPITAL = "capital"
    REALISED_PNL = "realised_pnl"
    FEES = "fees"


# The account column caching each book, and the sign that turns the book's debit balance
# into the column's value.
_CACHE: dict[Book, tuple[str, int]] = {
    Book.CASH: ("cash", 1),
    Book.RESERVED: ("reserved", 1),
    Book.MARGIN: ("margin", 1),
    Book.POSITIONS: ("positions_cost", 1),
    Book.CAPITAL: ("capital", -1),
    Book.REALISED_PNL: ("realised_pnl", -1),
    Book.FEES: ("fees", 1),
}


class EntryKind(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    RESERVE = "reserve"
    RELEASE = "release"
    FILL = "fill"
    FEE = "fee"
    SETTLEMENT = "settlement"
    RESET = "reset"
    EXPIRY = "expiry"  # an F&O position closed at expiry (trading.lifecycle)
    CORPORATE_ACTION = "corporate_action"  # a split, bonus or dividend on a holding
    MARGIN = "margin"  # F&O margin set to the hedge-aware requirement (trading.margins)


@dataclass(frozen=True, slots=True)
class Posting:
    book: Book
    amount: Decimal


def move(amount: Decimal, *, to: Book, source: Book) -> tuple[Posting, Posting]:
    """``amount`` from ``source`` to ``to``: debit ``to``, credit ``source``."""
    return Posting(to, amount), Posting(source, -amount)


class UnbalancedEntry(ValueError):
    pass


def _checked(postings: Iterable[Posting]) -> list[Posting]:
    lines = [Posting(p.book, tidy(p.amount)) for p in postings if p.amount != 0]
    total = sum((p.amount for p in lines), ZERO)
    if total != 0:
        raise UnbalancedEntry(f"postings sum to {total}, not zero: {lines}")
    return lines


async def post(
    db: RowSink,
    account: TradingAccount,
    kind: EntryKind,
    postings: Iterable[Posting],
    *,
    reference: str | None = None,
    memo: str = "",
) -> None:
    """Write one balanced entry and update the account's cached balances.

    The caller holds the account's row lock.  Cash may never go below zero: such an entry
    raises ``InsufficientFunds`` before anything is written.  An entry whose postings are
    all zero writes nothing.
    """
    lines = _checked(postings)
    if not lines:
        return
    changes: dict[str, Decimal] = {}
    for line in lines:
        column, sign = _CACHE[line.book]
        changes[column] = changes.get(column, ZERO) + sign * line.amount
    new_cash = account.cash + changes.get("cash", ZERO)
    if new_cash < 0:
        raise InsufficientFunds(
            f"this needs {-changes['cash']:f} {account.currency} of cash; "
            f"{account.cash:f} is available",
            available=f"{account.cash:f}",
        )
    values = {
        "account_id": account.id, "kind": kind.value, "reference": reference, "memo": memo,
        "created_at": utcnow(),
    }  # fmt: skip
    rows: list[dict[str, Any]] = [
        {"account_id": account.id, "book": p.book.value, "amount": p.amount} for p in lines
    ]
    if isinstance(db, PendingRows):
        db.entry(values, rows)
    else:
        entry = LedgerEntry(**values)
        entry.postings = [LedgerPosting(**row) for row in rows]
        db.add(entry)
    for column, delta in changes.items():
        setattr(account, column, tidy(getattr(account, column) + delta))
    account.version += 1


async def journal_balances(db: AsyncSession, account_id: uuid.UUID) -> dict[Book, Decimal]:
    """Each book's balance recomputed from the postings, in the cached columns' signs."""
    rows = await db.execute(
        select(LedgerPosting.book, LedgerPosting.amount).where(
            LedgerPosting.account_id == account_id
        )
    )
    # Summed in Python: SQLite's SUM over NUMERIC would go through floats.
    totals = dict.fromkeys(Book, ZERO)
    for book, amount in rows:
        totals[Book(book)] += amount
    return {book: _CACHE[book][1] * total for book, total in totals.items()}


async def unbalanced_entries(db: AsyncSession, account_id: uuid.UUID) -> list[int]:
    """Ids of the account's entries whose postings do not sum to zero (none, ever)."""
    rows = await db.execute(
        select(LedgerPosting.entry_id, LedgerPosting.amount).where(
            LedgerPosting.account_id == account_id
        )
    )
    sums: dict[int, Decimal] = {}
    for entry_id, amount in rows:
        sums[entry_id] = sums.get(entry_id, ZERO) + amount
    return sorted(entry_id for entry_id, total in sums.items() if total != 0)


async def verify_account(db: AsyncSession, account: TradingAccount) -> list[str]:
    """What is wrong with one account's journal and cached balances (empty: all good)."""
    problems = [
        f"entry {entry_id} does not balance"
        for entry_id in await unbalanced_entries(db, account.id)
    ]
    for book, balance in (await journal_balances(db, account.id)).items():
        column = _CACHE[book][0]
        cached = getattr(account, column)
        if cached != balance:
            problems.append(f"{column}: cached {cached}, journal {balance}")
    if account.cash < 0:
        problems.append(f"cash is negative: {account.cash}")
    return problems


async def verify_reservations(db: AsyncSession, account: TradingAccount) -> list[str]:
    """Reservations and margin agree with the orders and positions that hold them: no leak."""
    orders = (await db.execute(select(OrderRow).where(OrderRow.account_id == account.id))).scalars()
    problems: list[str] = []
    held = ZERO
    for order in orders:
        if order.status in TERMINAL_STATUSES and order.reserved:
            problems.append(f"order {order.id} is {order.status} but holds {order.reserved}")
        if order.filled_quantity > order.quantity:
            problems.append(f"order {order.id} is overfilled")
        held += order.reserved
    if held != account.reserved:
        problems.append(f"reserved {account.reserved}, but the orders hold {held}")
    positions = (
        await db.execute(select(PositionRow).where(PositionRow.account_id == account.id))
    ).scalars()
    margin = sum((p.margin for p in positions), ZERO)
    if margin != account.margin:
        problems.append(f"margin {account.margin}, but the positions block {margin}")
    return problems


async def verify_all(db: AsyncSession) -> dict[str, list[str]]:
    """Every account's problems (``quantdesk admin verify-ledger``); empty when all is well."""
    accounts = (await db.execute(select(TradingAccount).order_by(TradingAccount.id))).scalars()
    found: dict[str, list[str]] = {}
    for account in list(accounts):
        problems = await verify_account(db, account) + await verify_reservations(db, account)
        if problems:
            found[str(account.id)] = problems
    return found
