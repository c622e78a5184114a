"""Backup and restore (issue 16): a database with users, sessions, accounts, orders,
fills, journal entries, portfolio transactions and a kill-switch halt is backed up, wiped
and restored: every table is identical, the ledger verifies and the restored sessions
still sign requests; restoring over a database at another migration revision is refused,
or migrated with --migrate."""

from __future__ import annotations

import asyncio
import sqlite3
import warnings
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from quantdesk.app import create_app
from quantdesk.cli import app as cli
from quantdesk.cli.backup import restore_refusal
from quantdesk.platform import migrations
from quantdesk.settings import Settings
from tests.ops.conftest import cli_env, table_rows, trade_a_little
from tests.support.servers import PostgresServer


def test_restore_refusal_names_both_revisions() -> None:
    assert restore_refusal("0006", None, migrate=False) is None  # an empty database
    assert restore_refusal("0010", "0010", migrate=False) is None
    refusal = restore_refusal("0006", "0010", migrate=False)
    assert refusal is not None
    assert "backup is at migration revision 0006, this database at 0010" in refusal
    assert "--migrate" in refusal
    assert restore_refusal("0006", "0010", migrate=True) is None


async def _invoke(settings: Settings, *args: str) -> Result:
    # The commands run their own event loop (asyncio.run): a thread of their own.
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=cli_env(settings))


def _no_connection_left(settings: Settings, pg_server: PostgresServer | None) -> None:
    """The servers are stopped before a restore (docs/operations.md).  A connection that
    outlived its app (a background task's, idle in a transaction) would make the wipe wait
    on its locks forever: it is ended, and reported, instead."""
    if pg_server is None:
        return
    name = make_url(settings.database_url).database
    left = pg_server.psql(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended",
        database=str(name),
    )
    if left != "0":
        warnings.warn(f"{left} connection(s) outlived the app; ended", stacklevel=2)


async def test_backup_wipe_restore_gives_back_every_row(
    settings: Settings, pg_server: PostgresServer | None, tmp_path: Path
) -> None:
    trader, account_id = await trade_a_little(settings)
    _no_connection_left(settings, pg_server)
    before = table_rows(settings)
    for name in ("users", "trading_accounts", "orders", "fills", "ledger_entries",
                 "ledger_postings", "security_events", "trading_halts",
                 "portfolio_transactions"):  # fmt: skip
        assert before[name], f"{name} holds nothing to back up"
    head = before["alembic_version"]

    archive = tmp_path / "backups" / "quantdesk.backup"
    metrics = tmp_path / "textfile" / "quantdesk_backup.prom"
    made = await _invoke(settings, "backup", str(archive), "--metrics-file", str(metrics))
    assert made.exit_code == 0, made.output
    assert f"backup written: {archive} (revision {head[0][0]}" in made.output
    exposition = metrics.read_text()
    assert "quantdesk_backup_last_success_timestamp_seconds " in exposition
    assert f"quantdesk_backup_size_bytes {archive.stat().st_size}\n" in exposition
    assert archive.is_file()
    assert not archive.with_name(archive.name + ".partial").exists()
    again = await _invoke(settings, "backup", str(archive))
    assert again.exit_code == 2  # never overwritten

    # Wipe: every table dropped, the schema's revision gone.
    await asyncio.to_thread(migrations.downgrade, settings, "base")
    assert set(table_rows(settings)) <= {"alembic_version"}

    restored = await _invoke(settings, "restore", str(archive))
    assert restored.exit_code == 0, restored.output
    assert table_rows(settings) == before
    verified = await _invoke(settings, "admin", "verify-ledger")
    assert verified.exit_code == 0, verified.output
    assert "ledger ok" in verified.output

    # The restored database serves: the trader's session from before the backup still works.
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            r = await http.get(f"/api/v1/accounts/{account_id}/fills", headers=trader.headers)
            assert r.status_code == 200, r.text
            assert [(f["quantity"], f["price"]) for f in r.json()["items"]] == [("10", "100.05")]


async def test_restore_over_another_revision_is_refused_unless_migrating(
    settings: Settings, empty_settings: Settings, tmp_path: Path
) -> None:
    # An archive of the previous release's schema (0006: paper trading).
    await asyncio.to_thread(migrations.upgrade, empty_settings, "0006")
    old = tmp_path / "old.backup"
    made = await _invoke(empty_settings, "backup", str(old))
    assert made.exit_code == 0, made.output
    head = await asyncio.to_thread(migrations.current, settings)
    assert head is not None
    assert head != "0006"

    refused = await _invoke(settings, "restore", "--yes", str(old))
    assert refused.exit_code == 4, refused.output
    assert (
        f"refusing to restore: the backup is at migration revision 0006, this database at {head}"
        in refused.output
    )
    assert await asyncio.to_thread(migrations.current, settings) == head  # untouched

    migrated = await _invoke(settings, "restore", "--yes", "--migrate", str(old))
    assert migrated.exit_code == 0, migrated.output
    assert f"(revision 0006, upgraded to {head})" in migrated.output
    assert await asyncio.to_thread(migrations.current, settings) == head

    if settings.is_sqlite:
        # An archive from a newer release: a revision this one does not know.
        newer = tmp_path / "newer.backup"
        newer.write_bytes(old.read_bytes())
        with sqlite3.connect(newer) as db:
            db.execute("UPDATE alembic_version SET version_num = '9999'")
        db.close()
        unknown = await _invoke(settings, "restore", "--yes", str(newer))
        assert unknown.exit_code == 4
        assert "revision 9999, which this release does not know" in unknown.output
