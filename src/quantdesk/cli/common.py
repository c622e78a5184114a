"""What every ``quantdesk`` command does first: load settings and check the database, with a
one-line error and a distinct exit code instead of a traceback.

Its own module so the feature packages' command groups (``users/cli.py``, the demo's
``cli.py``) import it at the top, without importing the ``quantdesk`` app that includes them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

if TYPE_CHECKING:
    import uuid

    from quantdesk.platform.context import AppContext
    from quantdesk.settings import Settings

# Settings, pydantic, SQLAlchemy and Alembic are imported inside the functions: every
# command's `--help` imports this module, and they cost half a second it does not need.


def load_settings() -> Settings:
    """Settings or a one-line explanation and exit code 2: never a traceback wall."""
    from pydantic import ValidationError

    from quantdesk.settings import ConfigurationError, Settings

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
    from quantdesk.platform.logging import configure_logging

    # Log events (security events of admin commands, provider retries) go to stderr at
    # QUANTDESK_LOG_LEVEL, in the format the server uses: stdout stays the command's answer.
    configure_logging(settings.log_level, json=settings.json_logs)
    # Alembic narrates every step at INFO ("Context impl PostgresqlImpl."); a command says
    # what it did in one line of its own, and a failure is that one line alone.
    logging.getLogger("alembic").setLevel(logging.WARNING)
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


_T = TypeVar("_T")


def database_step(what: str, step: Callable[[], _T]) -> _T:
    """Run a migration step; a database refusal is one line and exit code 3, not a traceback
    (a role without CREATE on its schema, a revision the database does not know)."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return step()
    except (SQLAlchemyError, CommandError, OSError) as exc:
        original = getattr(exc, "orig", None) or exc
        reason = (
            str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
        )
        typer.echo(f"quantdesk: {what} failed: {reason}", err=True)
        raise typer.Exit(3) from None


def run_in_app(work: Callable[[AppContext], Awaitable[_T]]) -> _T:
    """``work`` on an app context of its own (the database checked first; security set up,
    so users are found by e-mail), closed afterwards.  A refusal (``QuantdeskError``) is one
    line on stderr and exit code 1, as the API would answer it."""
    from quantdesk.platform.context import AppContext
    from quantdesk.platform.exceptions import QuantdeskError
    from quantdesk.security.services import install_security
    from quantdesk.users.credentials import UserCredentialStore

    settings = load_settings()
    ensure_database_reachable(settings)

    async def main() -> _T:
        ctx = AppContext.build(settings)
        install_security(ctx, UserCredentialStore(ctx.database))
        try:
            return await work(ctx)
        finally:
            await ctx.aclose()

    try:
        return asyncio.run(main())
    except QuantdeskError as exc:
        typer.echo(f"quantdesk: {exc.detail}", err=True)
        raise typer.Exit(1) from None


async def user_id_by_email(ctx: AppContext, email: str) -> uuid.UUID:
    """The id of the user with ``email`` (``NotFound`` names it), for commands run for a user."""
    from quantdesk.platform.exceptions import NotFound
    from quantdesk.security.services import security_services
    from quantdesk.users.repository import UserRepository

    async with ctx.database.session() as db:
        user = await UserRepository(db).by_email_index(
            security_services(ctx).pii.email_index(email)
        )
    if user is None:
        raise NotFound(f"no user with e-mail {email}")
    return user.id
