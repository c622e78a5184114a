"""``quantdesk portfolio ...``: the API's portfolio operations for a user named by e-mail.

``import FILE`` is the CLI side of the importers, with a progress bar (rich) for the large
files (10,000+ lines), all or nothing like the API.  ``create``, ``list``,
``add-transaction``, ``transactions``, ``holdings``, ``gains``, ``performance`` and
``export`` call the service layer the API calls, with the API's request models, and print
a table, or with ``--json`` exactly what the API answers; a refusal is one line and exit 1.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from quantdesk.cli.common import (
    ensure_database_reachable,
    load_settings,
    run_in_app,
    user_id_by_email,
)

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy.ext.asyncio import AsyncSession

    from quantdesk.platform.context import AppContext
    from quantdesk.portfolios.schemas import FxFetchIn, FxFetchOut, ImportOut

portfolio_app = typer.Typer(
    help="Portfolios: create, transactions, imports, holdings, gains, performance, FX rates.",
    no_args_is_help=True,
)

FORMATS = ("csv", "zerodha", "ghostfolio")


@portfolio_app.command("import")
def import_file(
    file: Annotated[
        Path,
        typer.Argument(
            help="Generic CSV, Zerodha tradebook CSV or Ghostfolio export JSON "
            "(docs/portfolios.md).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    user: Annotated[str, typer.Option(help="The owner's e-mail address.")],
    portfolio: Annotated[str, typer.Option(help="The portfolio's id.")],
    format_: Annotated[str, typer.Option("--format", help="csv, zerodha or ghostfolio.")] = "csv",
    dry_run: Annotated[bool, typer.Option(help="Check and show; write nothing.")] = False,
) -> None:
    """Import transactions: every line checked first, nothing written on any problem
    (each one named by its line), duplicates skipped and counted."""
    if format_ not in FORMATS:
        typer.echo(f"quantdesk: --format must be one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    try:
        portfolio_id = uuid.UUID(portfolio)
    except ValueError:
        typer.echo("quantdesk: --portfolio must be a portfolio id", err=True)
        raise typer.Exit(2) from None
    settings = load_settings()
    ensure_database_reachable(settings)
    from quantdesk.platform.exceptions import QuantdeskError

    try:
        report = _run(settings, file, user, portfolio_id, format_, dry_run)
    except QuantdeskError as exc:
        typer.echo(f"quantdesk: {file}: {exc.detail}", err=True)
        for problem in exc.extra.get("errors", [])[:20]:
            typer.echo(f"  line {problem['line']}: {problem['message']}", err=True)
        raise typer.Exit(1) from None
    verb = "would create" if report.dry_run else "created"
    typer.echo(
        f"{file.name}: {report.rows} lines, {verb} {report.created} transactions, "
        f"skipped {len(report.skipped)} duplicates"
    )


def _run(
    settings: object, file: Path, email: str, portfolio_id: uuid.UUID, fmt: str, dry_run: bool
) -> ImportOut:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from quantdesk.platform.context import AppContext
    from quantdesk.portfolios.importers import TransactionFileFormat, parse
    from quantdesk.portfolios.service import PortfolioService
    from quantdesk.security.services import install_security
    from quantdesk.settings import Settings
    from quantdesk.users.credentials import UserCredentialStore

    assert isinstance(settings, Settings)  # noqa: S101 - load_settings' type
    labels = {"parse": "Reading lines", "check": "Checking", "write": "Writing"}
    text = file.read_text(encoding="utf-8-sig")

    async def main(show: Progress) -> ImportOut:
        tasks: dict[str, TaskID] = {}

        def step(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = show.add_task(labels[stage], total=total)
            show.update(tasks[stage], completed=done, total=total)

        ctx = AppContext.build(settings)
        install_security(ctx, UserCredentialStore(ctx.database))
        try:
            parsed = parse(text, TransactionFileFormat(fmt), lambda d, t: step("parse", d, t))
            owner_id = await user_id_by_email(ctx, email)
            async with ctx.database.session(immediate=True) as db:
                return await PortfolioService(ctx, db).import_rows(
                    owner_id, portfolio_id, parsed, fmt, dry_run=dry_run, progress=step
                )
        finally:
            await ctx.aclose()

    with Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        return asyncio.run(main(bar))


@portfolio_app.command("fx-fetch")
def fx_fetch(
    provider: Annotated[
        str, typer.Option(help="A provider with an FX feed: alphavantage, polygon.")
    ],
    from_: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day.")],
    to: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Last day, inclusive.")],
    pair: Annotated[str, typer.Option(help="BASE/QUOTE, e.g. USD/INR.")] = "USD/INR",
) -> None:
    """Fetch a currency pair's daily rates from a market-data provider into the FX table
    portfolios value their holdings with (an admin's own rates are kept)."""
    from pydantic import ValidationError

    from quantdesk.portfolios.schemas import FxFetchIn

    base, _, quote = pair.upper().partition("/")
    try:
        body = FxFetchIn(
            provider=provider, base=base, quote=quote, from_=from_.date(), to=to.date()
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        typer.echo(f"quantdesk: {problems}", err=True)
        raise typer.Exit(2) from None
    settings = load_settings()
    ensure_database_reachable(settings)
    from quantdesk.platform.exceptions import QuantdeskError

    try:
        out = asyncio.run(_fetch(settings, body))
    except QuantdeskError as exc:
        typer.echo(f"quantdesk: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    span = f"{out.first} to {out.last}" if out.first else "no days"
    typer.echo(
        f"{out.base}/{out.quote} from {out.provider}: {out.fetched} days ({span}), "
        f"stored {out.stored}, kept {out.kept} posted by an admin"
    )


async def _fetch(settings: object, body: FxFetchIn) -> FxFetchOut:
    from rich.console import Console

    from quantdesk.marketdata.providers.setup import close_providers
    from quantdesk.platform.context import AppContext
    from quantdesk.portfolios.service import fetch_fx_rates
    from quantdesk.settings import Settings

    assert isinstance(settings, Settings)  # noqa: S101 - load_settings' type
    ctx = AppContext.build(settings)
    try:
        # One request per provider page: a spinner, since the provider does not say how many.
        with Console(stderr=True).status(f"asking {body.provider} for {body.base}/{body.quote}"):
            async with ctx.database.session(immediate=True) as db:
                return await fetch_fx_rates(ctx, db, body)
    finally:
        await close_providers(ctx)
        await ctx.aclose()


# --- the API's operations, for a user named by e-mail -------------------------------------
User = Annotated[str, typer.Option("--user", help="The owner's e-mail address.")]
PortfolioId = Annotated[str, typer.Argument(help="The portfolio's id.")]
Json = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]
FromDay = Annotated[
    datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="First day, YYYY-MM-DD.")
]
ToDay = Annotated[
    datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day, inclusive.")
]
AsOf = Annotated[
    datetime | None, typer.Option("--date", formats=["%Y-%m-%d"], help="As of this day.")
]
Work = Callable[["AppContext", "AsyncSession", uuid.UUID], Awaitable[Any]]


def _act(email: str, work: Work, *, writes: bool = False) -> Any:
    """``work`` run for the user with e-mail ``email`` in one unit of work; a refusal is
    one line on stderr and exit 1 (exit 2 for input the request models refuse)."""
    from pydantic import ValidationError

    async def for_user(ctx: AppContext) -> Any:
        owner_id = await user_id_by_email(ctx, email)
        async with ctx.database.session(immediate=writes) as db:
            return await work(ctx, db, owner_id)

    try:
        return run_in_app(for_user)
    except ValidationError as exc:
        typer.echo(f"quantdesk: {_problems(exc)}", err=True)
        raise typer.Exit(2) from None


def _problems(exc: Any) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def _portfolio_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        typer.echo("quantdesk: PORTFOLIO must be a portfolio id", err=True)
        raise typer.Exit(2) from None


def _day(value: datetime | None) -> Any:
    return value.date() if value is not None else None


def _show(
    result: BaseModel, as_json: bool, title: str, rows: list[Any], columns: list[str]
) -> None:
    """The API's JSON, or ``rows`` (models or dicts) as a table of ``columns``."""
    if as_json:
        typer.echo(result.model_dump_json(by_alias=True))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        values = row if isinstance(row, dict) else row.model_dump(mode="json", by_alias=True)
        table.add_row(*("" if values.get(c) is None else str(values[c]) for c in columns))
    Console(width=200).print(table)


def _figures(result: BaseModel, as_json: bool, title: str, skip: tuple[str, ...] = ()) -> None:
    """The API's JSON, or the answer's plain fields one per line."""
    data = result.model_dump(mode="json", by_alias=True)
    figures = [{"figure": k, "value": v} for k, v in data.items() if k not in skip]
    figures = [f for f in figures if not isinstance(f["value"], list | dict)]
    _show(result, as_json, title, figures, ["figure", "value"])


@portfolio_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The portfolio's name.")],
    user: User,
    currency: Annotated[str, typer.Option(help="INR or USD.")] = "INR",
    lot_method: Annotated[str, typer.Option(help="fifo, lifo, hifo or average.")] = "fifo",
    as_json: Json = False,
) -> None:
    """Create a portfolio (with its first account)."""
    from quantdesk.portfolios.schemas import PortfolioIn
    from quantdesk.portfolios.service import PortfolioService

    async def work(ctx: AppContext, db: AsyncSession, owner: uuid.UUID) -> Any:
        body = PortfolioIn.model_validate(
            {"name": name, "currency": currency, "lot_method": lot_method}
        )
        return await PortfolioService(ctx, db).create(owner, body)

    out = _act(user, work, writes=True)
    _show(out, as_json, "portfolio created", [out], ["id", "name", "currency", "method"])


@portfolio_app.command("list")
def list_(user: User, as_json: Json = False) -> None:
    """The user's portfolios, oldest first."""
    from quantdesk.portfolios.service import PortfolioService

    async def work(ctx: AppContext, db: AsyncSession, owner: uuid.UUID) -> Any:
        return await PortfolioService(ctx, db).page(owner, limit=200, cursor=None)

    out = _act(user, work)
    _show(out, as_json, "portfolios", out.items, ["id", "name", "currency", "method", "version"])


@portfolio_app.command("add-transaction")
def add_transaction(
    portfolio: PortfolioId,
    user: User,
    type_: Annotated[str, typer.Option("--type", help="buy, sell, dividend, split, ...")],
    date: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Trade date.")],
    instrument: Annotated[str | None, typer.Option(help="EXCHANGE:SYMBOL.")] = None,
    quantity: Annotated[str | None, typer.Option(help="A decimal.")] = None,
    price: Annotated[str | None, typer.Option(help="A decimal.")] = None,
    fees: Annotated[str | None, typer.Option(help="A decimal.")] = None,
    amount: Annotated[str | None, typer.Option(help="Cash of cash-only types.")] = None,
    tax: Annotated[str | None, typer.Option(help="A dividend's withholding tax.")] = None,
    ratio: Annotated[str | None, typer.Option(help="Split/bonus: new shares per share.")] = None,
    note: Annotated[str, typer.Option(help="Free text.")] = "",
    as_json: Json = False,
) -> None:
    """Record a transaction, checked against the lots as the API checks it."""
    from quantdesk.portfolios.schemas import TransactionIn
    from quantdesk.portfolios.service import PortfolioService

    given = {"quantity": quantity, "price": price, "fees": fees, "amount": amount, "tax": tax}
    given["ratio"] = ratio
    fields = {k: v for k, v in given.items() if v is not None}
    pid = _portfolio_id(portfolio)

    async def work(ctx: AppContext, db: AsyncSession, owner: uuid.UUID) -> Any:
        body = TransactionIn.model_validate(
            {"type": type_, "date": date.date(), "instrument": instrument, "note": note, **fields}
        )
        return await PortfolioService(ctx, db).add_transaction(owner, pid, body)

    out = _act(user, work, writes=True)
    _show(out, as_json, "transaction recorded", [out], TRANSACTION_COLUMNS)


TRANSACTION_COLUMNS = ["id", "date", "type", "instrument", "quantity", "price", "fees", "amount"]


@portfolio_app.command("transactions")
def transactions(
    portfolio: PortfolioId,
    user: User,
    type_: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    instrument: Annotated[str | None, typer.Option(help="Only this instrument.")] = None,
    from_: FromDay = None,
    to: ToDay = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    as_json: Json = False,
) -> None:
    """Transactions, newest first."""
    from quantdesk.portfolios.accounting.types import TxnType
    from quantdesk.portfolios.service import PortfolioService

    pid = _portfolio_id(portfolio)
    types = [TxnType(type_).value] if type_ else None

    async def work(ctx: AppContext, db: AsyncSession, owner: uuid.UUID) -> Any:
        return await PortfolioService(ctx, db).transactions(
            owner, pid, limit=limit, cursor=None, types=types,
            instrument=instrument.upper() if instrument else None, account_id=None,
            since=_day(from_), until=_day(to),
        )  # fmt: skip

    out = _act(user, work)
    _show(out, as_json, "transactions", out.items, TRANSACTION_COLUMNS)


@portfolio_app.command("holdings")
def holdings(portfolio: PortfolioId, user: User, date: AsOf = None, as_json: Json = False) -> None:
    """Holdings at the latest prices (or as of a day)."""
    from quantdesk.portfolios.valuation import PortfolioAnalytics

    pid = _portfolio_id(portfolio)

    async def work(ctx: AppContext, db: AsyncSession, owner: uuid.UUID) -> Any:
        return await PortfolioAnalytics(ctx, db).holdings(owner, pid, _day(date), False)

    out = _act(user, work)
    columns = ["instrument", "quantity", "average_cost", "cost_basis", "price", "market_value"]
    _show(out, as_json, f"holdings on {out.as_of} ({out.currency})", out.items,
          [*columns, "unrealized_pnl", "weight"])  # fmt: skip
    if not as_json:
        _figures(out, False, "totals", skip=("as_of", "currency"))


@portfolio_app.command("gains")
def gains(
    portfolio: PortfolioId,
    user: User,
    from_: FromDay = None,
    to: ToDay = None,
    as_json: Json = False,
) -> None:
    """Realised gains per sale, by holding period and financial year."""
    from quantdesk.portfolios.valuation import PortfolioAnalytics

    pid = _portfolio_id(portfolio)

    async def work(ctx: AppContext, db: AsyncSession, owner: uuid.UUID) -> Any:
        return await PortfolioAnalytics(ctx, db).gains(owner, pid, _day(from_), _day(to))

    out = _act(user, work)
    columns = ["date", "instrument", "quantity", "proceeds", "cost", "realized_pnl"]
    _show(out, as_json, f"sales ({out.currency})", out.sales, columns)
    if not as_json:
        _figures(out, False, "realised")


@portfolio_app.command("performance")
def performance(
    portfolio: PortfolioId,
    user: User,
    period: Annotated[
        str | None, typer.Option(help="today, wtd, mtd, ytd, 1y, 3y, 5y or max.")
    ] = None,
    from_: FromDay = None,
    to: ToDay = None,
    as_json: Json = False,
) -> None:
    """TWR, XIRR, ROAI and Modified Dietz over a period or a range."""
    from quantdesk.portfolios.valuation import PortfolioAnalytics

    pid = _portfolio_id(portfolio)

    async def work(ctx: AppContext, db: AsyncSession, owner: uuid.UUID) -> Any:
        return await PortfolioAnalytics(ctx, db).performance(
            owner, pid, period, _day(from_), _day(to)
        )

    _figures(_act(user, work), as_json, "performance")


@portfolio_app.command("export")
def export(
    portfolio: PortfolioId,
    user: User,
    format_: Annotated[str, typer.Option("--format", help="csv (imports back) or json.")] = "csv",
) -> None:
    """Every transaction, as the generic CSV or as JSON, on stdout."""
    from quantdesk.portfolios.service import PortfolioService

    if format_ not in ("csv", "json"):
        typer.echo("quantdesk: --format must be csv or json", err=True)
        raise typer.Exit(2)
    pid = _portfolio_id(portfolio)

    async def work(ctx: AppContext, db: AsyncSession, owner: uuid.UUID) -> Any:
        body, _ = await PortfolioService(ctx, db).export(owner, pid, format_)
        return body

    typer.echo(_act(user, work).decode(), nl=False)
