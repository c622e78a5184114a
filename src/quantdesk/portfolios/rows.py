"""Between stored transactions and the accounting: a request becomes a row (instrument,
currency and FX resolved, fields checked per type), a row becomes an accounting
``Transaction`` and a response document."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.domain import EXCHANGE_CURRENCY, make_key, parse_key
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.models import InstrumentRow
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.portfolios import schemas
from quantdesk.portfolios.accounting.types import (
    CASH_TYPES,
    INSTRUMENT_TYPES,
    ONE,
    LotMethod,
    LotPick,
    Transaction,
    TxnType,
)
from quantdesk.portfolios.models import PortfolioAccountRow, PortfolioRow, PortfolioTransactionRow
from quantdesk.portfolios.repository import FxRates


def canonical_instrument(key: str, field: str = "instrument") -> str:
    try:
        exchange, symbol = parse_key(key)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=field) from None
    return make_key(exchange, symbol)


def is_instrument_key(key: str) -> bool:
    """Whether ``key`` is of the form EXCHANGE:SYMBOL with a known exchange."""
    try:
        parse_key(key)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class InstrumentFacts:
    currency: str
    multiplier: Decimal
    type: str


def facts_of(key: str, row: InstrumentRow | None) -> InstrumentFacts:
    if row is not None:
        return InstrumentFacts(row.currency, row.multiplier, row.type)
    exchange, _ = parse_key(key)
    return InstrumentFacts(EXCHANGE_CURRENCY[exchange], ONE, "equity")


class RowBuilder:
    """Turns requests into rows for one portfolio, caching the lookups a large import
    repeats (the instrument master, FX rates)."""

    def __init__(
        self, db: AsyncSession, portfolio: PortfolioRow, accounts: Sequence[PortfolioAccountRow]
    ) -> None:
        self.db = db
        self.portfolio = portfolio
        self.accounts = {a.id: a for a in accounts}
        self.default_account = accounts[0].id if accounts else None
        self._facts: dict[str, InstrumentFacts] = {}
        self._fx: dict[tuple[str, dt.date], Decimal | None] = {}

    async def preload(self, keys: Iterable[str]) -> None:
        wanted = sorted({k for k in keys if k not in self._facts})
        if not wanted:
            return
        found = await InstrumentService(self.db).get_rows(wanted)
        for key in wanted:
            self._facts[key] = facts_of(key, found.get(key))

    async def facts(self, key: str) -> InstrumentFacts:
        if key not in self._facts:
            await self.preload([key])
        return self._facts[key]

    async def fx_rate(self, currency: str, day: dt.date) -> Decimal | None:
        if currency == self.portfolio.currency:
            return ONE
        cache_key = (currency, day)
        if cache_key not in self._fx:
            self._fx[cache_key] = await FxRates(self.db).on_or_before(
                currency, self.portfolio.currency, day
            )
        return self._fx[cache_key]

    async def build(
        self,
        body: schemas.TransactionIn,
        *,
        source: str = "api",
        row: PortfolioTransactionRow | None = None,
    ) -> PortfolioTransactionRow:
        """A new row (or ``row`` rewritten) from ``body``; 422 for what the type forbids."""
        kind = body.type
        instrument = canonical_instrument(body.instrument) if body.instrument else None
        if kind in INSTRUMENT_TYPES and instrument is None:
            raise InvalidInput(f"a {kind.value} needs an instrument", field="instrument")
        if kind in CASH_TYPES and body.amount is None:
            raise InvalidInput(f"a {kind.value} needs an amount", field="amount")
        if kind in (TxnType.SPLIT, TxnType.BONUS) and body.ratio is None:
            raise InvalidInput(f"a {kind.value} needs a ratio", field="ratio")
        if kind is TxnType.MERGER and body.new_instrument is None:
            raise InvalidInput("a merger needs new_instrument", field="new_instrument")
        if kind is TxnType.DIVIDEND and body.amount is None and not body.price:
            raise InvalidInput("a dividend needs an amount, or a price (per share)", field="amount")
        account_id = body.account_id or self.default_account
        if account_id is None or account_id not in self.accounts:
            raise InvalidInput("no such account in this portfolio", field="account_id")
        if body.to_account_id is not None:
            if kind is not TxnType.TRANSFER_OUT:
                raise InvalidInput("to_account_id is for transfer_out", field="to_account_id")
            if body.to_account_id not in self.accounts or body.to_account_id == account_id:
                raise InvalidInput(
                    "to_account_id must be another account of this portfolio",
                    field="to_account_id",
                )
        if body.tax and kind not in (TxnType.DIVIDEND, TxnType.INTEREST):
            # The book takes tax out of a dividend or interest only: on any other type it
            # would be stored and silently left out of every figure.
            raise InvalidInput(
                f"tax is the withholding of a dividend or interest; a {kind.value}'s taxes "
                "and charges go in fees (a tax paid on its own is a tax transaction)",
                field="tax",
            )
        if body.lots and kind not in (TxnType.SELL, TxnType.BUY_TO_COVER, TxnType.TRANSFER_OUT):
            raise InvalidInput("lots are chosen on a sell, a cover or a transfer", field="lots")
        facts = await self.facts(instrument) if instrument else None
        currency = body.currency or (facts.currency if facts else self.portfolio.currency)
        fx_rate = body.fx_rate or await self.fx_rate(currency, body.date)
        if fx_rate is None:
            raise InvalidInput(
                f"no {currency}/{self.portfolio.currency} rate on or before {body.date}: "
                "give fx_rate, or load rates (POST /api/v1/portfolios/fx-rates)",
                field="fx_rate",
            )
        new_instrument = (
            canonical_instrument(body.new_instrument, "new_instrument")
            if body.new_instrument
            else None
        )
        if kind is TxnType.MERGER and new_instrument == instrument:
            raise InvalidInput(
                "a merger's new_instrument must differ from its instrument "
                "(a change of the share count alone is a split)",
                field="new_instrument",
            )
        now = utcnow()
        if row is None:
            self.portfolio.txn_seq += 1
            row = PortfolioTransactionRow(
                id=uuid.uuid4(),
                portfolio_id=self.portfolio.id,
                seq=self.portfolio.txn_seq,
                source=source,
                version=1,
                created_at=now,
            )
        else:
            row.version += 1
        row.account_id = account_id
        row.type = kind.value
        row.trade_date = body.date
        row.settlement_date = body.settlement_date
        row.instrument = instrument
        row.instrument_type = facts.type if facts else "cash"
        row.quantity = body.quantity
        row.price = body.price
        row.fees = body.fees
        row.amount = body.amount
        row.tax = body.tax
        row.ratio = body.ratio
        row.currency = currency
        row.fx_rate = fx_rate
        row.multiplier = facts.multiplier if facts else ONE
        row.to_account_id = body.to_account_id
        row.new_instrument = new_instrument
        row.lots = (
            orjson.dumps(
                [{"lot_id": p.lot_id, "quantity": str(p.quantity)} for p in body.lots]
            ).decode()
            if body.lots
            else None
        )
        row.note = body.note
        row.external_id = body.external_id
        row.fingerprint = fingerprint(row)
        row.updated_at = now
        return row


def fingerprint(row: PortfolioTransactionRow) -> str:
    """What makes two transactions "the same" for an import's duplicate check (Ghostfolio's
    rule: same account, type, date, instrument, quantity, price, fees, amount)."""

    def text(value: Decimal | None) -> str:
        return "" if value is None else format(value.normalize(), "f")

    parts = (
        str(row.account_id),
        row.type,
        row.trade_date.isoformat(),
        row.instrument or "",
        text(row.quantity),
        text(row.price),
        text(row.fees),
        text(row.amount),
    )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def picks_of(row: PortfolioTransactionRow) -> tuple[LotPick, ...]:
    return _picks(row.lots)


def to_accounting(row: PortfolioTransactionRow) -> Transaction:
    return Transaction(
        id=str(row.id),
        type=TxnType(row.type),
        date=row.trade_date,
        account=str(row.account_id),
        instrument=row.instrument,
        quantity=row.quantity,
        price=row.price,
        fees=row.fees,
        amount=row.amount,
        tax=row.tax,
        ratio=row.ratio,
        fx_rate=row.fx_rate,
        multiplier=row.multiplier,
        is_future=row.instrument_type == "future",
        currency=row.currency,
        to_account=str(row.to_account_id) if row.to_account_id else None,
        new_instrument=row.new_instrument,
        lots=picks_of(row),
        seq=row.seq,
        kind=row.instrument_type,
    )


async def load_transactions(db: AsyncSession, portfolio_id: uuid.UUID) -> list[Transaction]:
    """A portfolio's transactions for the accounting, in book order, read as plain rows:
    building 20,000 ORM objects cost more than the whole recompute."""
    t = PortfolioTransactionRow
    query = (
        select(
            t.id,
            t.type,
            t.trade_date,
            t.account_id,
            t.instrument,
            t.quantity,
            t.price,
            t.fees,
            t.amount,
            t.tax,
            t.ratio,
            t.fx_rate,
            t.multiplier,
            t.instrument_type,
            t.currency,
            t.to_account_id,
            t.new_instrument,
            t.lots,
            t.seq,
        )
        .where(t.portfolio_id == portfolio_id)
        .order_by(t.trade_date, t.seq)
    )
    out: list[Transaction] = []
    for r in (await db.execute(query)).all():
        out.append(
            Transaction(
                id=str(r.id),
                type=TxnType(r.type),
                date=r.trade_date,
                account=str(r.account_id),
                instrument=r.instrument,
                quantity=r.quantity,
                price=r.price,
                fees=r.fees,
                amount=r.amount,
                tax=r.tax,
                ratio=r.ratio,
                fx_rate=r.fx_rate,
                multiplier=r.multiplier,
                is_future=r.instrument_type == "future",
                currency=r.currency,
                to_account=str(r.to_account_id) if r.to_account_id else None,
                new_instrument=r.new_instrument,
                lots=_picks(r.lots),
                seq=r.seq,
                kind=r.instrument_type,
            )
        )
    return out


def _picks(text: str | None) -> tuple[LotPick, ...]:
    if not text:
        return ()
    return tuple(
        LotPick(str(item["lot_id"]), Decimal(str(item["quantity"]))) for item in orjson.loads(text)
    )


def account_methods(accounts: Iterable[PortfolioAccountRow]) -> dict[str, LotMethod]:
    return {str(a.id): LotMethod(a.lot_method) for a in accounts if a.lot_method}


def transaction_out(row: PortfolioTransactionRow) -> schemas.TransactionOut:
    return schemas.TransactionOut(
        id=row.id,
        account_id=row.account_id,
        type=row.type,
        instrument=row.instrument,
        date=row.trade_date,
        settlement_date=row.settlement_date,
        quantity=row.quantity,
        price=row.price,
        fees=row.fees,
        amount=row.amount,
        tax=row.tax,
        ratio=row.ratio,
        currency=row.currency,
        fx_rate=row.fx_rate,
        multiplier=row.multiplier,
        to_account_id=row.to_account_id,
        new_instrument=row.new_instrument,
        lots=[schemas.LotPickOut(lot_id=p.lot_id, quantity=p.quantity) for p in picks_of(row)]
        or None,
        note=row.note,
        source=row.source,
        external_id=row.external_id,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def request_of(row: PortfolioTransactionRow) -> dict[str, Any]:
    """The request that would build ``row`` again (for edits that change some fields)."""
    return {
        "type": row.type,
        "instrument": row.instrument,
        "date": row.trade_date,
        "settlement_date": row.settlement_date,
        "quantity": row.quantity,
        "price": row.price,
        "fees": row.fees,
        "amount": row.amount,
        "tax": row.tax,
        "ratio": row.ratio,
        "currency": row.currency,
        "fx_rate": row.fx_rate,
        "account_id": row.account_id,
        "to_account_id": row.to_account_id,
        "new_instrument": row.new_instrument,
        "lots": [{"lot_id": p.lot_id, "quantity": p.quantity} for p in picks_of(row)] or None,
        "note": row.note,
        "external_id": row.external_id,
    }


MONEY_PLACES = Decimal("1e-8")
_WIDE = Context(prec=60)


def money(value: Decimal) -> Decimal:
    """A computed amount for the wire: at most 8 places, at least 2 (``1480.625``,
    ``1482.50``); exact amounts keep their digits up to 8."""
    quantised = _WIDE.quantize(value, MONEY_PLACES).normalize(_WIDE)
    exponent = quantised.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        quantised = _WIDE.quantize(quantised, Decimal("0.01"))
    return _WIDE.plus(quantised)
