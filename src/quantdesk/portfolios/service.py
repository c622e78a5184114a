"""Use cases of portfolios: portfolios and accounts, transactions (create, list, edit,
delete), imports and exports.

Every change of a portfolio's transactions locks the portfolio row first (``SELECT ... FOR
UPDATE`` on PostgreSQL; on SQLite the request already holds the write lock), rebuilds the
portfolio's lots with the change and refuses it (422, nothing written) when the book cannot
hold it: a sell of more than is held, a lot that is not there.  That is how "every edit
recomputes what depends on it": lots are never stored, so nothing can go stale, and a
change that would break a later transaction is refused.  Edits carry the version they
read: a stale one is 409, so concurrent edits never lose one.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.providers.base import FxSource
from quantdesk.marketdata.providers.setup import providers_of
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import Conflict, InvalidInput, NotFound
from quantdesk.portfolios import schemas
from quantdesk.portfolios.accounting.lots import build_book
from quantdesk.portfolios.accounting.types import (
    AccountingError,
    DeductionsExceedGross,
    LotMethod,
    Transaction,
)
from quantdesk.portfolios.books import appends, check_append, current_book, extend_after_commit
from quantdesk.portfolios.importers import ParsedRow
from quantdesk.portfolios.models import PortfolioAccountRow, PortfolioRow, PortfolioTransactionRow
from quantdesk.portfolios.paper import sync_fills
from quantdesk.portfolios.repository import FxRates, PortfolioContents, PortfolioRepository
from quantdesk.portfolios.rows import (
    RowBuilder,
    account_methods,
    is_instrument_key,
    load_transactions,
    request_of,
    to_accounting,
    transaction_out,
)
from quantdesk.trading.models import TradingAccount

PREVIEW_LIMIT = 1000
EXPORT_COLUMNS = (
    "date",
    "type",
    "instrument",
    "quantity",
    "price",
    "fees",
    "amount",
    "tax",
    "ratio",
    "currency",
    "fx_rate",
    "account",
    "to_account",
    "new_instrument",
    "settlement_date",
    "external_id",
    "note",
)


def portfolio_not_found(portfolio_id: uuid.UUID) -> NotFound:
    return NotFound(f"no portfolio {portfolio_id}", portfolio_id=str(portfolio_id))


def account_out(row: PortfolioAccountRow) -> schemas.PortfolioAccountOut:
    return schemas.PortfolioAccountOut(
        id=row.id,
        name=row.name,
        kind=row.kind,
        method=row.lot_method,
        trading_account_id=row.trading_account_id,
        created_at=row.created_at,
    )


def portfolio_out(
    row: PortfolioRow, accounts: Sequence[PortfolioAccountRow]
) -> schemas.PortfolioOut:
    return schemas.PortfolioOut(
        id=row.id,
        name=row.name,
        currency=row.currency,
        method=row.lot_method,
        jurisdiction=row.jurisdiction,
        version=row.version,
        accounts=[account_out(a) for a in accounts],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def check_book(
    portfolio: PortfolioRow,
    accounts: Sequence[PortfolioAccountRow],
    transactions: Sequence[Transaction],
    lines: dict[str, int] | None = None,
) -> None:
    """422 when the portfolio's transactions do not make a consistent book."""
    try:
        build_book(transactions, LotMethod(portfolio.lot_method), account_methods(accounts))
    except AccountingError as exc:
        raise refused(exc, lines) from None


class DeductionsRefused(InvalidInput):
    """Withholding tax and fees larger than the dividend or interest they come out of:
    its own problem type, so a client can point at the field without parsing the detail."""

    type_slug = "deductions-exceed-gross"
    title = "Tax and fees exceed the gross income"


class BookNeedsRepair(Conflict):
    """A stored transaction the book can no longer apply: one written before a rule was
    tightened (withholding above the gross was accepted once).  Nothing is guessed: every
    read and write of the portfolio names it, and editing or deleting it (both check the
    book without it) repairs the portfolio."""

    type_slug = "portfolio-needs-repair"
    title = "A stored transaction needs repair"


def needs_repair(exc: AccountingError) -> BookNeedsRepair:
    return BookNeedsRepair(
        f"stored transaction {exc.transaction_id} can no longer be applied: {exc.message}; "
        "edit (PATCH) or delete it to repair this portfolio",
        transaction_id=exc.transaction_id,
    )


def refused(exc: AccountingError, lines: dict[str, int] | None = None) -> InvalidInput:
    extra: dict[str, Any] = {"transaction_id": exc.transaction_id}
    problem = InvalidInput
    field = None
    if isinstance(exc, DeductionsExceedGross):
        problem, field = DeductionsRefused, exc.field
        extra["field"] = field
    if lines and exc.transaction_id in lines:
        line = lines[exc.transaction_id]
        extra["errors"] = [{"line": line, "field": field, "message": exc.message}]
        return problem(f"line {line}: {exc.message}", **extra)
    return problem(exc.message, **extra)


async def fetch_fx_rates(
    ctx: AppContext, db: AsyncSession, body: schemas.FxFetchIn
) -> schemas.FxFetchOut:
    """A pair's daily closes from a provider with an FX feed into the rate table.  The
    provider is asked before the unit of work writes anything, so no write lock waits on
    the network."""
    if body.base == body.quote:
        raise InvalidInput("base and quote are the same currency", field="quote")
    try:
        provider = providers_of(ctx).get(body.provider)
    except NotFound as exc:
        raise InvalidInput(exc.detail, field="provider") from None
    if not isinstance(provider, FxSource):
        raise InvalidInput(
            f"provider {body.provider} has no FX feed (alphavantage and polygon have)",
            field="provider",
        )
    days = await provider.fx_daily(body.base, body.quote, body.from_, body.to)
    stored, kept = await FxRates(db).store_fetched(
        body.base, body.quote, [(d.day, d.rate) for d in days], provider.name
    )
    return schemas.FxFetchOut(
        provider=provider.name, base=body.base, quote=body.quote, fetched=len(days),
        stored=stored, kept=kept, first=days[0].day if days else None,
        last=days[-1].day if days else None,
    )  # fmt: skip


class PortfolioService:
    def __init__(self, ctx: AppContext, db: AsyncSession) -> None:
        self.ctx = ctx
        self.db = db
        self.portfolios = PortfolioRepository(db)
        self.contents = PortfolioContents(db)

    # --- portfolios ---------------------------------------------------------------------
    async def _get(
        self, owner_id: uuid.UUID, portfolio_id: uuid.UUID, *, lock: bool = False
    ) -> PortfolioRow:
        row = await self.portfolios.get_for_owner(owner_id, portfolio_id, for_update=lock)
        if row is None:
            raise portfolio_not_found(portfolio_id)
        return row

    async def create(self, owner_id: uuid.UUID, body: schemas.PortfolioIn) -> schemas.PortfolioOut:
        now = utcnow()
        row = PortfolioRow(
            id=uuid.uuid4(),
            user_id=owner_id,
            name=body.name,
            currency=body.currency,
            lot_method=body.lot_method.value,
            jurisdiction=body.jurisdiction or ("US" if body.currency == "USD" else "IN"),
            txn_seq=0,
            version=1,
            created_at=now,
            updated_at=now,
        )
        account = PortfolioAccountRow(
            id=uuid.uuid4(),
            portfolio_id=row.id,
            name="Default",
            kind="broker",
            last_fill_id=0,
            created_at=now,
        )
        self.db.add(row)
        await self.db.flush()
        self.db.add(account)
        await self.db.flush()
        return portfolio_out(row, [account])

    async def page(
        self, owner_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> schemas.PortfolioPage:
        rows, next_cursor = await self.portfolios.page(owner_id, limit=limit, cursor=cursor)
        accounts = await self.contents.accounts([r.id for r in rows])
        by_portfolio: dict[uuid.UUID, list[PortfolioAccountRow]] = {}
        for account in accounts:
            by_portfolio.setdefault(account.portfolio_id, []).append(account)
        return schemas.PortfolioPage(
            items=[portfolio_out(r, by_portfolio.get(r.id, [])) for r in rows],
            next_cursor=next_cursor,
        )

    async def get(self, owner_id: uuid.UUID, portfolio_id: uuid.UUID) -> schemas.PortfolioOut:
        row = await self._get(owner_id, portfolio_id)
        return portfolio_out(row, await self.contents.accounts([row.id]))

    async def update(
        self, owner_id: uuid.UUID, portfolio_id: uuid.UUID, body: schemas.PortfolioPatch
    ) -> schemas.PortfolioOut:
        row = await self._get(owner_id, portfolio_id, lock=True)
        _check_version(row.version, body.version, "portfolio")
        if body.name is not None:
            row.name = body.name
        if body.jurisdiction is not None:
            row.jurisdiction = body.jurisdiction
        accounts = await self.contents.accounts([row.id])
        if body.lot_method is not None and body.lot_method.value != row.lot_method:
            row.lot_method = body.lot_method.value
            # Specific lots chosen under one method stay valid under another; a sale the
            # new method cannot make (none today) would be refused here.
            check_book(row, accounts, await load_transactions(self.db, row.id))
        self._touch(row)
        await self.db.flush()
        return portfolio_out(row, accounts)

    async def delete(self, owner_id: uuid.UUID, portfolio_id: uuid.UUID) -> None:
        row = await self._get(owner_id, portfolio_id, lock=True)
        await self.db.delete(row)
        await self.db.flush()

    def _touch(self, row: PortfolioRow) -> None:
        row.version += 1
        row.updated_at = utcnow()

    # --- accounts -----------------------------------------------------------------------
    async def add_account(
        self, owner_id: uuid.UUID, portfolio_id: uuid.UUID, body: schemas.PortfolioAccountIn
    ) -> schemas.PortfolioAccountOut:
        portfolio = await self._get(owner_id, portfolio_id, lock=True)
        accounts = await self.contents.accounts([portfolio.id])
        if any(a.name == body.name for a in accounts):
            raise Conflict(f"this portfolio already has an account named {body.name!r}")
        if (body.kind == "paper") != (body.trading_account_id is not None):
            raise InvalidInput(
                "a paper account names its trading_account_id (and only a paper account does)",
                field="trading_account_id",
            )
        if body.trading_account_id is not None:
            owned = await self.db.scalar(
                select(TradingAccount.id).where(
                    TradingAccount.id == body.trading_account_id,
                    TradingAccount.user_id == owner_id,
                )
            )
            if owned is None:
                raise NotFound(
                    f"no trading account {body.trading_account_id}",
                    account_id=str(body.trading_account_id),
                )
        row = PortfolioAccountRow(
            id=uuid.uuid4(),
            portfolio_id=portfolio.id,
            name=body.name,
            kind=body.kind,
            lot_method=body.lot_method.value if body.lot_method else None,
            trading_account_id=body.trading_account_id,
            last_fill_id=0,
            created_at=utcnow(),
        )
        self.db.add(row)
        self._touch(portfolio)
        await self.db.flush()
        if row.trading_account_id is not None:
            await sync_fills(self.db, portfolio, [*accounts, row])
        return account_out(row)

    # --- transactions -------------------------------------------------------------------
    async def add_transaction(
        self, owner_id: uuid.UUID, portfolio_id: uuid.UUID, body: schemas.TransactionIn
    ) -> schemas.TransactionOut:
        portfolio = await self._get(owner_id, portfolio_id, lock=True)
        accounts = await self.contents.accounts([portfolio.id])
        await sync_fills(self.db, portfolio, accounts)
        if body.external_id and body.external_id in await self.contents.external_ids(portfolio.id):
            raise Conflict(f"a transaction with external_id {body.external_id!r} exists")
        try:
            entry = await current_book(self.ctx, self.db, portfolio, accounts)
        except AccountingError as exc:
            raise needs_repair(exc) from None
        row = await RowBuilder(self.db, portfolio, accounts).build(body)
        txn = to_accounting(row)
        if appends(entry, txn):
            # The common case, today's trade: checked against the positions it touches.
            try:
                check_append(entry, txn)
            except AccountingError as exc:
                raise refused(exc) from None
        else:
            check_book(portfolio, accounts, [*entry.transactions, txn])
        self.db.add(row)
        self._touch(portfolio)
        await self.db.flush()
        if appends(entry, txn):
            extend_after_commit(self.ctx, self.db, portfolio, entry, txn)
        return transaction_out(row)

    async def transactions(
        self,
        owner_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
        **filters: Any,
    ) -> schemas.TransactionPage:
        portfolio = await self._get(owner_id, portfolio_id)
        rows, next_cursor = await self.contents.transactions_page(
            portfolio.id, limit=limit, cursor=cursor, **filters
        )
        return schemas.TransactionPage(
            items=[transaction_out(r) for r in rows], next_cursor=next_cursor
        )

    async def transaction(
        self, owner_id: uuid.UUID, portfolio_id: uuid.UUID, transaction_id: uuid.UUID
    ) -> schemas.TransactionOut:
        portfolio = await self._get(owner_id, portfolio_id)
        return transaction_out(await self._transaction(portfolio, transaction_id))

    async def _transaction(
        self, portfolio: PortfolioRow, transaction_id: uuid.UUID
    ) -> PortfolioTransactionRow:
        row = await self.contents.transaction(portfolio.id, transaction_id)
        if row is None:
            raise NotFound(f"no transaction {transaction_id}", transaction_id=str(transaction_id))
        return row

    async def update_transaction(
        self,
        owner_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        transaction_id: uuid.UUID,
        body: schemas.TransactionPatch,
    ) -> schemas.TransactionOut:
        portfolio = await self._get(owner_id, portfolio_id, lock=True)
        row = await self._transaction(portfolio, transaction_id)
        _check_version(row.version, body.version, "transaction")
        merged = request_of(row)
        merged.update(body.model_dump(exclude_unset=True, exclude={"version"}))
        if "instrument" in body.model_fields_set and "currency" not in body.model_fields_set:
            merged["currency"] = None  # the new instrument's
        if {"currency", "date", "instrument"} & body.model_fields_set and (
            "fx_rate" not in body.model_fields_set
        ):
            merged["fx_rate"] = None  # looked up again
        try:
            request = schemas.TransactionIn.model_validate(merged)
        except ValidationError as exc:
            raise InvalidInput(str(exc.errors()[0]["msg"])) from None
        accounts = await self.contents.accounts([portfolio.id])
        await RowBuilder(self.db, portfolio, accounts).build(request, row=row)
        await self.db.flush()
        check_book(portfolio, accounts, await load_transactions(self.db, portfolio.id))
        self._touch(portfolio)
        await self.db.flush()
        return transaction_out(row)

    async def delete_transaction(
        self,
        owner_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        transaction_id: uuid.UUID,
        version: int | None,
    ) -> None:
        portfolio = await self._get(owner_id, portfolio_id, lock=True)
        row = await self._transaction(portfolio, transaction_id)
        if version is not None:
            _check_version(row.version, version, "transaction")
        accounts = await self.contents.accounts([portfolio.id])
        rest = [t for t in await load_transactions(self.db, portfolio.id) if t.id != str(row.id)]
        check_book(portfolio, accounts, rest)
        await self.db.delete(row)
        self._touch(portfolio)
        await self.db.flush()

    # --- imports and exports -----------------------------------------------------------
    async def import_rows(
        self,
        owner_id: uuid.UUID,
        portfolio_id: uuid.UUID,
        parsed: Sequence[ParsedRow],
        fmt: str,
        *,
        dry_run: bool,
        account_id: uuid.UUID | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> schemas.ImportOut:
        """All or nothing: every row is checked (and the whole book rebuilt with them)
        before anything is written; the first problems come back with their line numbers.
        Rows already in the portfolio (same external id, or same account, type, date,
        instrument, quantity, price, fees and amount) are skipped and reported."""
        portfolio = await self._get(owner_id, portfolio_id, lock=True)
        accounts = await self.contents.accounts([portfolio.id])
        await sync_fills(self.db, portfolio, accounts)
        existing = await load_transactions(self.db, portfolio.id)
        fingerprints = await self.contents.fingerprints(portfolio.id)
        external_ids = await self.contents.external_ids(portfolio.id)
        builder = RowBuilder(self.db, portfolio, accounts)
        await builder.preload(
            k
            for p in parsed
            for k in (p.request.instrument, p.request.new_instrument)
            if k
            if is_instrument_key(k)
        )
        problems: list[dict[str, Any]] = []
        skipped: list[schemas.SkippedOut] = []
        new_rows: list[PortfolioTransactionRow] = []
        lines: dict[str, int] = {}
        seq_before = portfolio.txn_seq
        by_name = {a.name: a for a in accounts}
        new_accounts: list[PortfolioAccountRow] = []

        def named(name: str) -> uuid.UUID:
            if name not in by_name:
                # An account the file names and the portfolio lacks is created with it.
                account = PortfolioAccountRow(
                    id=uuid.uuid4(),
                    portfolio_id=portfolio.id,
                    name=name[:100],
                    kind="broker",
                    last_fill_id=0,
                    created_at=utcnow(),
                )
                by_name[name] = account
                new_accounts.append(account)
                builder.accounts[account.id] = account
            return by_name[name].id

        for number, item in enumerate(parsed, start=1):
            if progress is not None and (number % 500 == 0 or number == len(parsed)):
                progress("check", number, len(parsed))
            request = item.request
            update: dict[str, Any] = {}
            if item.account_name:
                update["account_id"] = named(item.account_name)
            elif account_id is not None and request.account_id is None:
                update["account_id"] = account_id
            if item.to_account_name:
                update["to_account_id"] = named(item.to_account_name)
            if update:
                request = request.model_copy(update=update)
            if request.external_id and request.external_id in external_ids:
                skipped.append(schemas.SkippedOut(line=item.line, reason="duplicate external_id"))
                continue
            try:
                row = await builder.build(request, source=fmt)
            except InvalidInput as exc:
                problems.append(
                    {"line": item.line, "field": exc.extra.get("field"), "message": exc.detail}
                )
                if len(problems) >= 50:
                    break
                continue
            if row.fingerprint in fingerprints:
                skipped.append(
                    schemas.SkippedOut(line=item.line, reason="duplicate of a stored transaction")
                )
                portfolio.txn_seq -= 1
                continue
            if request.external_id:
                external_ids.add(request.external_id)
            new_rows.append(row)
            lines[str(row.id)] = item.line
        if problems:
            raise InvalidInput(
                f"{len(problems)} line(s) cannot be imported (first: line {problems[0]['line']}: "
                f"{problems[0]['message']}); nothing was imported",
                errors=problems,
            )
        check_book(
            portfolio,
            [*accounts, *new_accounts],
            [*existing, *(to_accounting(r) for r in new_rows)],
            lines,
        )
        if dry_run:
            portfolio.txn_seq = seq_before
        else:
            self.db.add_all(new_accounts)
            await self.db.flush()
            # Bulk inserts in batches: the ORM's unit of work cost most of a large import.
            columns = [c.key for c in PortfolioTransactionRow.__table__.columns]
            for start in range(0, len(new_rows), 2000):
                batch = new_rows[start : start + 2000]
                await self.db.execute(
                    insert(PortfolioTransactionRow),
                    [{c: getattr(r, c) for c in columns} for r in batch],
                )
                if progress is not None:
                    progress("write", start + len(batch), len(new_rows))
            self._touch(portfolio)
            await self.db.flush()
        return schemas.ImportOut(
            format=fmt,
            dry_run=dry_run,
            rows=len(parsed),
            created=len(new_rows),
            skipped=skipped,
            transactions=[transaction_out(r) for r in new_rows[:PREVIEW_LIMIT]],
        )

    async def export(
        self, owner_id: uuid.UUID, portfolio_id: uuid.UUID, fmt: str
    ) -> tuple[bytes, str]:
        """Every transaction, oldest first, as the generic CSV (which imports it back) or as
        JSON: the body and its media type."""
        portfolio = await self._get(owner_id, portfolio_id)
        accounts = {a.id: a.name for a in await self.contents.accounts([portfolio.id])}
        rows = await self.contents.transactions(portfolio.id)
        documents = [transaction_out(r).model_dump(mode="json") for r in rows]
        if fmt == "json":
            body = {
                "portfolio": portfolio_out(portfolio, []).model_dump(
                    mode="json", exclude={"accounts"}
                ),
                "accounts": [{"id": str(k), "name": v} for k, v in accounts.items()],
                "transactions": documents,
            }
            return orjson.dumps(body), "application/json"
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        for doc in documents:
            doc["account"] = accounts.get(uuid.UUID(doc["account_id"]), "")
            target = doc.get("to_account_id")
            doc["to_account"] = accounts.get(uuid.UUID(target), "") if target else ""
            writer.writerow(["" if doc.get(c) is None else doc.get(c) for c in EXPORT_COLUMNS])
        return out.getvalue().encode(), "text/csv"


def _check_version(current: int, given: int, what: str) -> None:
    if current != given:
        raise Conflict(
            f"the {what} changed since you read it (version {given}, now {current}); "
            "read it again and retry",
            current_version=current,
        )
