"""Migrations: one head, up/down/up round trip, and no drift between models and migrations."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from quantdesk.cli import app as cli
from quantdesk.models import metadata
from quantdesk.platform import migrations
from quantdesk.settings import Settings
from tests.conftest import TEST_SECRET, base_settings
from tests.support.servers import PostgresServer


@pytest.fixture
def empty_settings(
    settings: Settings, pg_server: PostgresServer | None, tmp_path: Path
) -> Iterator[Settings]:
    """Settings pointing at a brand-new empty database (not the migrated template)."""
    if pg_server is None:
        yield base_settings(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tmp_path)
        return
    name = f"m_{uuid.uuid4().hex[:12]}"
    pg_server.psql(f"CREATE DATABASE {name}")
    yield base_settings(pg_server.url(name), tmp_path)
    pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_single_head(empty_settings: Settings) -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config(empty_settings))
    assert len(script.get_heads()) == 1


def test_every_revision_has_a_downgrade(empty_settings: Settings) -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config(empty_settings))
    for revision in script.walk_revisions():
        assert callable(getattr(revision.module, "downgrade", None)), revision.revision


def _tables(settings: Settings) -> set[str]:
    engine = create_engine(migrations.sync_url(settings))
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_settings: Settings) -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config(empty_settings))
    head = script.get_current_head()
    migrations.upgrade(empty_settings, "head")
    assert migrations.current(empty_settings) == head
    assert _tables(empty_settings) == set(metadata.tables)
    migrations.downgrade(empty_settings, "base")
    assert migrations.current(empty_settings) is None
    assert _tables(empty_settings) == set()
    migrations.upgrade(empty_settings, "head")
    assert migrations.current(empty_settings) == head


def test_models_match_migrations(empty_settings: Settings) -> None:
    migrations.upgrade(empty_settings, "head")
    engine = create_engine(migrations.sync_url(empty_settings))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "target_metadata": metadata}
            )
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; write a revision for: {diff}"


@pytest.mark.db
@pytest.mark.postgres_only
def test_migrations_run_as_the_database_owner_without_superuser(
    pg_server: PostgresServer | None, tmp_path: Path
) -> None:
    # A managed PostgreSQL gives quantdesk a role that owns its database and nothing more.
    assert pg_server is not None
    name = f"o_{uuid.uuid4().hex[:12]}"
    pg_server.psql(f"CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    pg_server.psql(f"CREATE DATABASE {name} OWNER {name}")
    url = pg_server.url(name).replace("postgres@", f"{name}@", 1)
    owner = base_settings(url, tmp_path)
    try:
        migrations.upgrade(owner, "head")
        head = ScriptDirectory.from_config(migrations.alembic_config(owner)).get_current_head()
        assert migrations.current(owner) == head
        migrations.downgrade(owner, "base")
        assert migrations.current(owner) is None
    finally:
        pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        pg_server.psql(f"DROP ROLE IF EXISTS {name}")


@pytest.mark.db
@pytest.mark.postgres_only
def test_a_role_that_may_not_create_tables_gets_one_line(
    pg_server: PostgresServer | None, tmp_path: Path
) -> None:
    assert pg_server is not None
    name = f"r_{uuid.uuid4().hex[:12]}"
    pg_server.psql(f"CREATE ROLE {name} LOGIN NOSUPERUSER")
    pg_server.psql(f"CREATE DATABASE {name}")  # owned by postgres: no CREATE for the role
    pg_server.psql("REVOKE CREATE ON SCHEMA public FROM PUBLIC", database=name)
    env = {
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_DATABASE_URL": pg_server.url(name).replace("postgres@", f"{name}@", 1),
        "QUANTDESK_VAR_DIR": str(tmp_path),
        "QUANTDESK_SECRET_KEY": TEST_SECRET,
    }
    try:
        result = CliRunner().invoke(cli, ["migrate", "upgrade"], env=env)
        assert result.exit_code == 3, result.output
        assert result.output.count("\n") == 1
        assert "quantdesk: migration failed: permission denied for schema public" in result.output
        current = CliRunner().invoke(cli, ["migrate", "current"], env=env)
        assert current.exit_code == 0, current.output
        assert current.output == "(empty database)\n"
    finally:
        pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        pg_server.psql(f"DROP ROLE IF EXISTS {name}")
