"""Alembic environment: runs migrations on the async engine built from quantdesk settings."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from quantdesk.models import metadata
from quantdesk.platform.db import build_engine
from quantdesk.settings import Settings

config = context.config


def _configure(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # Batch mode rebuilds a table (copy, drop, rename); with foreign keys enforced the
        # drop would cascade and delete every child row (a rebuild of ``orders`` emptied
        # ``fills``).  SQLite ignores this pragma inside a transaction, hence the raw cursor
        # before the migration's transaction begins.
        cursor = connection.connection.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(settings: Settings) -> None:
    engine = build_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
            await connection.commit()
    finally:
        await engine.dispose()


def run() -> None:
    given: Any = config.attributes.get("connection")
    if given is not None:
        _configure(given)
        return
    settings = config.attributes.get("settings") or Settings()
    asyncio.run(_run_async(settings))


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run()
