"""``quantdesk kite``: the daily login, the session's status, the instruments import.

``quantdesk kite login`` prints Kite's login URL, takes the ``request_token`` (or the whole
redirect URL) from ``--request-token`` or a prompt, exchanges it and stores the access token
encrypted.  It prints who logged in and until when; never the token.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from quantdesk.cli.common import ensure_database_reachable, load_settings

if TYPE_CHECKING:  # the command tree imports no settings machinery (tests/cli)
    from quantdesk.settings import Settings

kite_app = typer.Typer(
    help="Kite Connect: the daily login, session status, instruments import.",
    no_args_is_help=True,
)


def _configured(settings: Settings, *, secret: bool = False) -> tuple[str, str]:
    if settings.kite_api_key is None or not settings.kite_api_key.get_secret_value():
        typer.echo("quantdesk: set QUANTDESK_KITE_API_KEY (docs/providers.md)", err=True)
        raise typer.Exit(2)
    api_secret = settings.kite_api_secret.get_secret_value() if settings.kite_api_secret else ""
    if secret and not api_secret:
        typer.echo(
            "quantdesk: set QUANTDESK_KITE_API_SECRET (or QUANTDESK_KITE_API_SECRET_FILE)",
            err=True,
        )
        raise typer.Exit(2)
    return settings.kite_api_key.get_secret_value(), api_secret


@kite_app.command("login")
def kite_login(
    request_token: Annotated[
        str | None,
        typer.Option(help="The request_token from Kite's redirect (or the whole redirect URL)."),
    ] = None,
) -> None:
    """Log in to Kite for today: exchange the request token, store the access token encrypted."""
    from quantdesk.marketdata.providers.kite.auth import (
        IST,
        exchange_request_token,
        login_url,
        request_token_from,
    )
    from quantdesk.marketdata.providers.kite.service import token_store
    from quantdesk.platform.db import Database
    from quantdesk.platform.exceptions import QuantdeskError

    settings = load_settings()
    api_key, api_secret = _configured(settings, secret=True)
    ensure_database_reachable(settings)
    if request_token is None:
        typer.echo("1. Open this URL and log in to Kite:")
        typer.echo(f"   {login_url(api_key, settings.kite_login_url)}")
        typer.echo("2. Kite sends you to your app's redirect URL with ?request_token=...")
        request_token = typer.prompt("   Paste the request_token (or the whole URL)")

    async def work() -> str:
        database = Database(settings)
        try:
            token = request_token_from(request_token or "")
            session = await exchange_request_token(
                api_key, api_secret, token, base_url=settings.kite_base_url
            )
            await token_store(settings, database).save(session)
        finally:
            await database.dispose()
        until = session.expires_at.astimezone(IST)
        return (
            f"logged in to Kite as {session.user_id}; "
            f"the session lasts until {until:%Y-%m-%d %H:%M} IST"
        )

    try:
        typer.echo(asyncio.run(work()))
    except QuantdeskError as exc:
        typer.echo(f"quantdesk: {exc.detail}", err=True)
        raise typer.Exit(1) from None


@kite_app.command("status")
def kite_status() -> None:
    """Say whether today's Kite session is stored and valid."""
    from quantdesk.marketdata.providers.kite.auth import IST
    from quantdesk.marketdata.providers.kite.service import token_store
    from quantdesk.platform.db import Database

    settings = load_settings()
    _configured(settings)
    ensure_database_reachable(settings)

    async def work() -> str:
        database = Database(settings)
        try:
            status = await token_store(settings, database).status()
        finally:
            await database.dispose()
        line = f"kite session: {status.state}"
        if status.expires_at is not None:
            line += f" (until {status.expires_at.astimezone(IST):%Y-%m-%d %H:%M} IST)"
        if status.reason:
            line += f"; {status.reason}"
        return line

    typer.echo(asyncio.run(work()))


@kite_app.command("instruments")
def kite_instruments() -> None:
    """Import today's instruments dump from Kite into the instrument master."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from quantdesk.marketdata.instruments.importers import ImportFormat, import_instruments
    from quantdesk.marketdata.providers.kite.provider import KiteProvider
    from quantdesk.platform.db import Database
    from quantdesk.platform.exceptions import QuantdeskError

    settings = load_settings()
    _configured(settings)
    ensure_database_reachable(settings)
    labels = {"parse": "Checking lines", "write": "Writing"}

    async def work() -> str:
        database = Database(settings)
        provider = KiteProvider.from_settings(settings, database=database)
        try:
            with Progress(
                TextColumn("{task.description:<15}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
            ) as bar:
                fetching = bar.add_task("Downloading", total=None)
                text = await provider.instruments_csv()
                bar.update(fetching, total=1, completed=1)
                tasks: dict[str, TaskID] = {}

                def show(stage: str, done: int, total: int | None) -> None:
                    if stage not in tasks:
                        tasks[stage] = bar.add_task(labels[stage], total=total)
                    bar.update(tasks[stage], completed=done, total=total)

                async with database.session(immediate=True) as db:
                    report = await import_instruments(db, text, ImportFormat.KITE, show)
        finally:
            await provider.aclose()
            await database.dispose()
        return (
            f"kite instruments: {report.inserted} inserted, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.skipped} skipped "
            "(exchanges quantdesk does not list)"
        )

    try:
        typer.echo(asyncio.run(work()))
    except QuantdeskError as exc:
        typer.echo(f"quantdesk: {exc.detail}", err=True)
        raise typer.Exit(1) from None
