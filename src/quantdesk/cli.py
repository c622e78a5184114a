"""The ``quantdesk`` command: serve, migrate, version (feature packages add their own groups)."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from quantdesk import __version__
from quantdesk.platform import migrations
from quantdesk.settings import ConfigurationError, Settings

app = typer.Typer(
    name="quantdesk",
    help="quantdesk: a self-hostable investment and trading platform backend.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
migrate_app = typer.Typer(help="Database migrations (Alembic).", no_args_is_help=True)
app.add_typer(migrate_app, name="migrate")


def load_settings() -> Settings:
    """Settings or a one-line explanation and exit code 2: never a traceback wall."""
    try:
        settings = Settings()
        settings.check_production()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        typer.echo(f"quantdesk: invalid configuration: {field}: {first['msg']}", err=True)
        raise typer.Exit(2) from None
    except ConfigurationError as exc:
        typer.echo(f"quantdesk: refusing to start: {exc}", err=True)
        raise typer.Exit(2) from None
    return settings


def ensure_database_reachable(settings: Settings) -> None:
    from quantdesk.platform.db import Database

    async def ping() -> None:
        database = Database(settings)
        try:
            await asyncio.wait_for(database.ping(), 10)
        finally:
            await database.dispose()

    try:
        asyncio.run(ping())
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        typer.echo(f"quantdesk: cannot reach the database: {reason}", err=True)
        raise typer.Exit(3) from None


@app.command()
def version() -> None:
    """Print the quantdesk version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    migrate: Annotated[bool, typer.Option(help="Upgrade the database to head first.")] = True,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (dev only).")] = False,
) -> None:
    """Run the HTTP API with uvicorn (uvloop + httptools)."""
    import uvicorn

    settings = load_settings()
    ensure_database_reachable(settings)
    if migrate:
        migrations.upgrade(settings, "head")
    uvicorn.run(
        "quantdesk.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        loop="uvloop",
        http="httptools",
        reload=reload,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )


@migrate_app.command("upgrade")
def migrate_upgrade(revision: str = typer.Argument("head")) -> None:
    """Upgrade the database to REVISION (default: head)."""
    settings = load_settings()
    ensure_database_reachable(settings)
    migrations.upgrade(settings, revision)


@migrate_app.command("downgrade")
def migrate_downgrade(revision: str = typer.Argument(..., help="Target, e.g. -1 or base.")) -> None:
    """Downgrade the database to REVISION."""
    settings = load_settings()
    ensure_database_reachable(settings)
    migrations.downgrade(settings, revision)


@migrate_app.command("current")
def migrate_current() -> None:
    """Show the database's current revision."""
    settings = load_settings()
    ensure_database_reachable(settings)
    typer.echo(migrations.current(settings) or "(empty database)")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
