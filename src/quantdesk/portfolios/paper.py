"""Paper-trading fills flow into a portfolio by themselves.

A portfolio account of kind ``paper`` names a trading account; its fills (``fills``, whose
``id`` only grows) are read after the last one taken (``last_fill_id``) and become
transactions with the fill's execution id as external id, so a fill is never taken twice.
It happens before every read of the portfolio (in its own short write unit of work) and
inside every write, so what a reader sees always includes every committed fill.

A fill that crosses zero (a sell of more than the account holds long) becomes a sell and
a short sell (a buy while short: a cover and a buy), its fee shared by quantity.  Fill
dates are the exchange's local date (IST for INR listings, New York for USD).

This reads the trading package's tables and writes nothing there (``docs/portfolios.md``
names the hook the trading feature could offer instead: a fill event on the bus).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.db import Database
from quantdesk.portfolios.accounting.types import ZERO, TxnType
from quantdesk.portfolios.models import PortfolioAccountRow, PortfolioRow, PortfolioTransactionRow
from quantdesk.portfolios.rows import RowBuilder
from quantdesk.portfolios.schemas import TransactionIn
from quantdesk.trading.models import FillRow

# A fill is dated on its market's calendar, as a broker's contract note dates it.
MARKET_ZONES = {"INR": ZoneInfo("Asia/Kolkata"), "USD": ZoneInfo("America/New_York")}


def market_today(now: dt.datetime | None = None) -> dt.date:
    """The latest date any market quantdesk trades on has reached: the day holdings are
    valued on by default.  UTC's date would leave out an NSE fill made after 18:30 UTC,
    which is dated the next day in India."""
    now = now or dt.datetime.now(dt.UTC)
    return max(now.astimezone(zone).date() for zone in (dt.UTC, *MARKET_ZONES.values()))


_SIGN = {
    TxnType.BUY.value: 1,
    TxnType.BUY_TO_COVER.value: 1,
    TxnType.SELL.value: -1,
    TxnType.SHORT_SELL.value: -1,
}


async def pending(database: Database, portfolio_id: uuid.UUID) -> bool:
    """Whether a linked trading account has fills this portfolio has not taken yet."""
    async with database.session() as db:
        query = (
            select(func.count())
            .select_from(PortfolioAccountRow)
            .join(FillRow, FillRow.account_id == PortfolioAccountRow.trading_account_id)
            .where(
                PortfolioAccountRow.portfolio_id == portfolio_id,
                FillRow.id > PortfolioAccountRow.last_fill_id,
            )
        )
        return bool((await db.execute(query)).scalar_one())


async def sync_fills(
    db: AsyncSession, portfolio: PortfolioRow, accounts: Sequence[PortfolioAccountRow]
) -> int:
    """Take the new fills of every paper account of ``portfolio`` (locked by the caller)."""
    linked = [a for a in accounts if a.trading_account_id is not None]
    if not linked:
        return 0
    created = 0
    builder = RowBuilder(db, portfolio, accounts)
    for account in linked:
        fills = (
            (
                await db.execute(
                    select(FillRow)
                    .where(
                        FillRow.account_id == account.trading_account_id,
                        FillRow.id > account.last_fill_id,
                    )
                    .order_by(FillRow.id)
                )
            )
            .scalars()
            .all()
        )
        if not fills:
            continue
        held = await _held(db, account)
        for fill in fills:
            for kind, quantity in _split(fill, held.get(fill.instrument, ZERO)):
                fee = fill.fee * quantity / fill.quantity if fill.quantity else ZERO
                facts = await builder.facts(fill.instrument)
                zone = MARKET_ZONES.get(facts.currency, ZoneInfo("UTC"))
                suffix = "" if quantity == fill.quantity else f":{kind}"
                request = TransactionIn(
                    type=TxnType(kind),
                    instrument=fill.instrument,
                    date=fill.ts.astimezone(zone).date(),
                    quantity=quantity,
                    price=fill.price,
                    fees=fee.quantize(Decimal("1e-8")),
                    account_id=account.id,
                    external_id=f"paper:{fill.execution_id}{suffix}"[:120],
                    note=f"paper fill {fill.execution_id}",
                )
                row = await builder.build(request, source="paper")
                db.add(row)
                held[fill.instrument] = held.get(fill.instrument, ZERO) + _SIGN[kind] * quantity
                created += 1
            account.last_fill_id = fill.id
    if created:
        portfolio.version += 1
    await db.flush()
    return created


def _split(fill: FillRow, held: Decimal) -> list[tuple[str, Decimal]]:
    q = fill.quantity
    if fill.side == "buy":
        if held >= 0:
            return [(TxnType.BUY.value, q)]
        cover = min(q, -held)
        rest = q - cover
        return [(TxnType.BUY_TO_COVER.value, cover)] + ([(TxnType.BUY.value, rest)] if rest else [])
    if held <= 0:
        return [(TxnType.SHORT_SELL.value, q)]
    sold = min(q, held)
    rest = q - sold
    return [(TxnType.SELL.value, sold)] + ([(TxnType.SHORT_SELL.value, rest)] if rest else [])


async def _held(db: AsyncSession, account: PortfolioAccountRow) -> dict[str, Decimal]:
    rows = (
        (
            await db.execute(
                select(PortfolioTransactionRow).where(
                    PortfolioTransactionRow.account_id == account.id,
                    PortfolioTransactionRow.type.in_(tuple(_SIGN)),
                )
            )
        )
        .scalars()
        .all()
    )
    held: dict[str, Decimal] = {}
    for row in rows:
        if row.instrument:
            held[row.instrument] = held.get(row.instrument, ZERO) + _SIGN[row.type] * row.quantity
    return held
