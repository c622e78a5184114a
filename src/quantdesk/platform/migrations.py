"""Alembic, driven from code: the CLI, the tests and ``make run`` share these functions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from quantdesk.platform.db import build_engine
from quantdesk.settings import Settings

SCRIPT_LOCATION = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def sync_url(settings: Settings) -> str:
    """The database URL with a synchronous driver, for the tests' and benchmarks' tools
    (psycopg is a development dependency; quantdesk itself runs on the async drivers)."""
    url = make_url(settings.database_url)
    driver = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return url.set(drivername=driver).render_as_string(hide_password=False)


def current(settings: Settings) -> str | None:
    """The database's revision, read with the app's own async driver (asyncpg or aiosqlite),
    so an installed quantdesk needs no second, synchronous PostgreSQL driver."""

    async def read() -> str | None:
        engine = build_engine(settings)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())
