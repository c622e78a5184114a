"""Built books, kept in the process per portfolio *version*.

Every change of a portfolio's transactions (and every paper fill taken in) bumps the
portfolio row's ``version`` in the same transaction, so a book built for (portfolio,
version) is right for as long as the row says that version, in any process: a reader
compares the version it reads with the cached one and rebuilds on a miss.

A transaction appended at the end of the book (dated on or after every other, the common
case: today's trade, a new fill) is checked on a scratch copy of the positions it touches,
and once its unit of work has committed it is applied to the cached book, which becomes the
next version's: one new transaction costs what applying it costs, not a rebuild, and the
day-by-day holdings kept with the book are extended by it from its day on.
"""

from __future__ import annotations

import copy
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.context import AppContext
from quantdesk.platform.db import after_commit
from quantdesk.portfolios.accounting.lots import Book, Position, build_book
from quantdesk.portfolios.accounting.returns import Holdings, with_effect
from quantdesk.portfolios.accounting.types import LotMethod, Transaction
from quantdesk.portfolios.models import PortfolioAccountRow, PortfolioRow
from quantdesk.portfolios.rows import account_methods, load_transactions

CACHE_SIZE = 32
_KEY = "portfolio_books"


@dataclass(slots=True)
class CachedBook:
    version: int
    transactions: list[Transaction]
    book: Book
    # What the series needs beside prices, by (first day, last day): kept while quotes move.
    held: dict[tuple[object, ...], Holdings] = field(default_factory=dict)


class BookCache:
    """The most recently used books (a few dozen portfolios' worth of memory)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[uuid.UUID, CachedBook] = OrderedDict()

    def get(self, portfolio_id: uuid.UUID, version: int) -> CachedBook | None:
        entry = self._items.get(portfolio_id)
        if entry is None or entry.version != version:
            return None
        self._items.move_to_end(portfolio_id)
        return entry

    def put(self, portfolio_id: uuid.UUID, entry: CachedBook) -> None:
        self._items[portfolio_id] = entry
        self._items.move_to_end(portfolio_id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def book_cache(ctx: AppContext) -> BookCache:
    cache = ctx.extensions.get(_KEY)
    if not isinstance(cache, BookCache):
        cache = BookCache()
        ctx.extensions[_KEY] = cache
    return cache


async def current_book(
    ctx: AppContext,
    db: AsyncSession,
    portfolio: PortfolioRow,
    accounts: list[PortfolioAccountRow],
) -> CachedBook:
    """The book of every transaction of ``portfolio`` at its current version.  Raises
    ``AccountingError`` when the stored transactions do not make one."""
    cache = book_cache(ctx)
    hit = cache.get(portfolio.id, portfolio.version)
    if hit is not None:
        return hit
    transactions = await load_transactions(db, portfolio.id)
    book = build_book(transactions, LotMethod(portfolio.lot_method), account_methods(accounts))
    entry = CachedBook(portfolio.version, transactions, book)
    cache.put(portfolio.id, entry)
    return entry


def appends(entry: CachedBook, txn: Transaction) -> bool:
    """Whether ``txn`` sorts after every transaction of the book."""
    return not entry.transactions or txn.sort_key > entry.transactions[-1].sort_key


def check_append(entry: CachedBook, txn: Transaction) -> None:
    """Apply ``txn`` to copies of the positions it can touch; ``AccountingError`` if it
    cannot be applied.  The cached book is not changed."""
    book = entry.book
    scratch = Book(book.method, book.account_methods)
    touched = {txn.instrument, txn.new_instrument} - {None}
    for key, position in book.positions.items():
        if key[1] in touched:
            scratch.positions[key] = _copy(position)
    scratch.apply(txn)


def _copy(position: Position) -> Position:
    clone = copy.copy(position)
    clone.lots = [copy.copy(lot) for lot in position.lots]
    return clone


def extend_after_commit(
    ctx: AppContext, db: AsyncSession, portfolio: PortfolioRow, entry: CachedBook, txn: Transaction
) -> None:
    """Once this unit of work has committed, ``entry`` plus ``txn`` is the book of the
    portfolio's new version (the version the row has now, bumped by the caller)."""
    version = portfolio.version

    async def extend() -> None:
        cache = book_cache(ctx)
        if cache.get(portfolio.id, entry.version) is not entry:
            return  # another change got there first: the next reader rebuilds
        effect = entry.book.apply(txn)
        entry.transactions.append(txn)
        # What was held each day, extended by the new effect rather than built again.
        extended = {
            (*key[:-1], version): held
            for key, old in entry.held.items()
            if (held := with_effect(old, effect)) is not None
        }
        entry.held.clear()
        entry.held.update(extended)
        entry.version = version
        cache.put(portfolio.id, entry)

    after_commit(db, extend)
