"""``quantdesk admin``: create users (the first admin too), change roles, unlock, keys.

There is no "first registered user becomes admin": the operator creates the first admin
here, on the server, with the database the settings point at.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from quantdesk.cli.common import load_settings
from quantdesk.security.principal import Role

if TYPE_CHECKING:
    # The app context and the security services are imported where a command runs: every
    # `quantdesk ... --help` imports this module (issue 19).
    from quantdesk.platform.context import AppContext
    from quantdesk.settings import Settings

admin_app = typer.Typer(help="User administration and security keys.", no_args_is_help=True)

_T = TypeVar("_T")


def _settings() -> Settings:
    return load_settings()


def _run(settings: Settings, work: Callable[[AppContext], Awaitable[_T]]) -> _T:
    from quantdesk.platform.context import AppContext
    from quantdesk.platform.exceptions import QuantdeskError
    from quantdesk.security.services import install_security
    from quantdesk.users.credentials import UserCredentialStore

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


async def _find(ctx: AppContext, email: str) -> str:
    from quantdesk.security.services import security_services
    from quantdesk.users.repository import UserRepository

    async with ctx.database.session() as db:
        user = await UserRepository(db).by_email_index(
            security_services(ctx).pii.email_index(email)
        )
    if user is None:
        typer.echo(f"quantdesk: no user with e-mail {email}", err=True)
        raise typer.Exit(1)
    return str(user.id)


@admin_app.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(help="The user's e-mail address (their login).")],
    role: Annotated[Role, typer.Option(help="viewer, trader or admin.")] = Role.TRADER,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input (scripts).")
    ] = False,
) -> None:
    """Create a user; asks for the password unless --password-stdin."""
    from quantdesk.security.audit import SecurityEventType
    from quantdesk.users.auth import create_user as create

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = _settings()

    async def work(ctx: AppContext) -> str:
        # Writers take SQLite's lock at BEGIN (platform/db.py), like the API's write requests.
        async with ctx.database.session(immediate=True) as db:
            user = await create(
                ctx,
                db,
                email=email,
                password=password,
                role=role,
                event=SecurityEventType.USER_CREATED,
            )
            return str(user.id)

    user_id = _run(settings, work)
    typer.echo(f"created {role.value} {user_id}")


def _update(email: str, *, role: Role | None = None, active: bool | None = None) -> None:
    from quantdesk.users import admin, schemas

    settings = _settings()

    async def work(ctx: AppContext) -> None:
        import uuid

        user_id = uuid.UUID(await _find(ctx, email))
        async with ctx.database.session(immediate=True) as db:
            body = schemas.AdminUserUpdate(role=role, is_active=active)
            await admin.update_user(ctx, db, None, None, user_id, body)

    _run(settings, work)
    typer.echo("updated")


@admin_app.command("set-role")
def set_role(email: str, role: Role) -> None:
    """Change a user's role (ends their sessions)."""
    _update(email, role=role)


@admin_app.command("disable")
def disable(email: str) -> None:
    """Disable a user: sessions end, API keys stop working."""
    _update(email, active=False)


@admin_app.command("enable")
def enable(email: str) -> None:
    """Enable a disabled user."""
    _update(email, active=True)


@admin_app.command("unlock")
def unlock(email: str) -> None:
    """Lift a sign-in lockout."""
    from quantdesk.users import admin

    settings = _settings()

    async def work(ctx: AppContext) -> None:
        import uuid

        user_id = uuid.UUID(await _find(ctx, email))
        async with ctx.database.session(immediate=True) as db:
            await admin.unlock_user(ctx, db, None, None, user_id)

    _run(settings, work)
    typer.echo("unlocked")


@admin_app.command("generate-keys")
def generate_keys(
    jwt_key_file: Annotated[
        Path, typer.Option(help="Where to write the new PEM signing key (mode 0600).")
    ],
    algorithm: Annotated[str, typer.Option(help="EdDSA (Ed25519) or RS256.")] = "EdDSA",
    pii_key_id: Annotated[str, typer.Option(help="Id of the new PII encryption key.")] = "k1",
) -> None:
    """Make production secrets: a JWT signing key file and PII/secret env lines."""
    import os
    import secrets

    from quantdesk.security.pii import new_encryption_key_entry
    from quantdesk.security.tokens import generate_private_key_pem

    pem = generate_private_key_pem(algorithm)
    fd = os.open(jwt_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    typer.echo(f"# signing key written to {jwt_key_file}")
    typer.echo(f"QUANTDESK_JWT_PRIVATE_KEY_FILE={jwt_key_file}")
    typer.echo(f"QUANTDESK_PII_ENCRYPTION_KEYS={new_encryption_key_entry(pii_key_id)}")
    typer.echo(f"QUANTDESK_PII_INDEX_KEY={secrets.token_urlsafe(48)}")
    typer.echo(f"QUANTDESK_SECRET_KEY={secrets.token_urlsafe(48)}")


@admin_app.command("reencrypt-pii")
def reencrypt_pii() -> None:
    """Re-encrypt stored personal data under the first key of QUANTDESK_PII_ENCRYPTION_KEYS."""
    settings = _settings()

    async def work(ctx: AppContext) -> int:
        from sqlalchemy import select

        from quantdesk.security.services import security_services
        from quantdesk.users.models import EMAIL_FIELD, TOTP_FIELD, User

        pii = security_services(ctx).pii
        changed = 0
        async with ctx.database.session(immediate=True) as db:
            for user in (await db.execute(select(User))).scalars():
                for attribute, field in (
                    ("email_encrypted", EMAIL_FIELD),
                    ("totp_secret_encrypted", TOTP_FIELD),
                    ("totp_pending_encrypted", TOTP_FIELD),
                ):
                    value = getattr(user, attribute)
                    if value is not None and pii.key_id_of(value) != pii.current_key_id:
                        setattr(user, attribute, pii.reencrypt(value, field=field))
                        changed += 1
        return changed

    changed = _run(settings, work)
    typer.echo(f"re-encrypted {changed} values")
