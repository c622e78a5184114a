"""``quantdesk portfolio import FILE``: the CLI side of the importers, with a progress bar
(rich) for the large files (10,000+ lines), all or nothing like the API."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from quantdesk.cli.common import ensure_database_reachable, load_settings

if TYPE_CHECKING:
    from quantdesk.portfolios.schemas import FxFetchIn, FxFetchOut, ImportOut

portfolio_app = typer.Typer(
    help="Portfolios: imports of transactions, FX rates.", no_args_is_help=True
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
    from quantdesk.platform.exceptions import NotFound
    from quantdesk.portfolios.importers import TransactionFileFormat, parse
    from quantdesk.portfolios.service import PortfolioService
    from quantdesk.security.services import install_security, security_services
    from quantdesk.settings import Settings
    from quantdesk.users.credentials import UserCredentialStore
    from quantdesk.users.repository import UserRepository

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
            async with ctx.database.session() as db:
                owner = await UserRepository(db).by_email_index(
                    security_services(ctx).pii.email_index(email)
                )
            if owner is None:
                raise NotFound(f"no user with e-mail {email}")
            async with ctx.database.session(immediate=True) as db:
                return await PortfolioService(ctx, db).import_rows(
                    owner.id, portfolio_id, parsed, fmt, dry_run=dry_run, progress=step
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
