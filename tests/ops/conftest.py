"""Helpers of the operations tests: the environment a ``quantdesk`` command runs with, a
second empty database, and every table's rows for before/after comparisons."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, select, table

from quantdesk.platform import migrations
from quantdesk.settings import Settings
from tests.conftest import TEST_SECRET, base_settings
from tests.support.servers import PostgresServer


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_DATABASE_URL": settings.database_url,
        "QUANTDESK_REDIS_URL": settings.redis_url or "",
        "QUANTDESK_VAR_DIR": str(settings.var_dir),
        "QUANTDESK_SECRET_KEY": TEST_SECRET,
        "QUANTDESK_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def empty_settings(
    settings: Settings, pg_server: PostgresServer | None, tmp_path: Path
) -> Iterator[Settings]:
    """Settings for a second, brand-new empty database beside the test's own."""
    if pg_server is None:
        yield base_settings(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}", settings.var_dir)
        return
    name = f"e_{uuid.uuid4().hex[:12]}"
    pg_server.psql(f"CREATE DATABASE {name}")
    yield base_settings(pg_server.url(name), settings.var_dir, settings.redis_url)
    pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def table_rows(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (alembic_version included), in primary-key order."""
    engine = create_engine(migrations.sync_url(settings))
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            found: dict[str, list[tuple[Any, ...]]] = {}
            for name in sorted(inspector.get_table_names()):
                columns = [c["name"] for c in inspector.get_columns(name)]
                keys = inspector.get_pk_constraint(name)["constrained_columns"] or columns
                shape = table(name, *(_column(c) for c in columns))
                query = select(*shape.c).order_by(*(shape.c[k] for k in keys))
                found[name] = [tuple(row) for row in connection.execute(query)]
            return found
    finally:
        engine.dispose()


def _column(name: str) -> Any:
    from sqlalchemy import column

    return column(name)
