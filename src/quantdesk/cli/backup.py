"""``quantdesk backup`` and ``quantdesk restore``: the whole database to one file and back.

PostgreSQL goes through ``pg_dump`` / ``pg_restore`` in their custom format (compressed,
restorable table by table, and the format PostgreSQL's own tooling reads); SQLite through
its online backup API (``sqlite3.Connection.backup``), which copies a consistent snapshot
while the servers keep running.  Both are the databases' own tools: a hand-written dump
would have to know every type, constraint and sequence.

The archive records its migration revision: it holds the ``alembic_version`` table, which
``restore`` reads back from the archive alone (``pg_restore --data-only --table``, or the
SQLite file) before touching the database.  A restore into a database at another revision
is refused with both revisions named, unless ``--migrate`` asks to replace that database and
upgrade the restored data to this release's head.  An archive from a newer release (a
revision this code does not know) is always refused.

``pg_dump`` must be at least the server's major version: the PostgreSQL binaries are found
in ``--pg-bindir`` (``QUANTDESK_PG_BINDIR``), else the newest ``/usr/lib/postgresql/*/bin``
(Debian and Ubuntu), else on ``PATH``.  Connection details, the password and TLS settings
are passed in libpq's environment variables, never on the command line (where ``ps`` shows
them).  A backup is written to ``<name>.partial`` and renamed when complete, so a file with
the final name is always a whole archive.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import shutil
import sqlite3
import subprocess  # nosec B404 - pg_dump and pg_restore, our own arguments
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from quantdesk.cli.common import database_step, ensure_database_reachable, load_settings

if TYPE_CHECKING:
    from rich.progress import Progress

    from quantdesk.settings import Settings

# Exit codes beyond common.py's (2: configuration or usage, 3: database unreachable).
EXIT_FAILED = 1
EXIT_REVISION = 4

PgBindir = Annotated[
    Path | None,
    typer.Option(
        envvar="QUANTDESK_PG_BINDIR",
        help="Directory of pg_dump/pg_restore (default: newest /usr/lib/postgresql/*/bin, "
        "then PATH).",
        file_okay=False,
    ),
]


class BackupError(Exception):
    """A backup or restore that could not be done; the message is the one line to show."""


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    path: Path
    dialect: str  # "postgresql" or "sqlite"
    revision: str | None


# --- PostgreSQL tools ------------------------------------------------------------------------
def postgres_tool(name: str, bindir: Path | None = None) -> Path:
    """The path of ``pg_dump`` or ``pg_restore`` (see the module docstring for the order)."""
    if bindir is not None:
        candidate = bindir / name
        if not candidate.is_file():
            raise BackupError(f"{name} not found in {bindir} (QUANTDESK_PG_BINDIR)")
        return candidate
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_major_version)
    if versions:
        return Path(versions[-1])
    found = shutil.which(name)
    if found:
        return Path(found)
    raise BackupError(
        f"{name} was not found (install PostgreSQL's client tools, e.g. the "
        "postgresql-client package, or set QUANTDESK_PG_BINDIR)"
    )


def _major_version(path: str) -> int:
    name = Path(path).parent.parent.name
    return int(name) if name.isdigit() else 0


def libpq_environment(settings: Settings) -> dict[str, str]:
    """The process environment plus libpq's variables for the configured database."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    values = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password if isinstance(url.password, str) else None,
        "PGDATABASE": url.database,
        "PGAPPNAME": "quantdesk-backup",
        "PGCONNECT_TIMEOUT": "10",
    }
    # TLS settings (docs/operations.md), when this release has them.
    sslmode = getattr(settings, "db_sslmode", None)
    if sslmode is not None:
        values["PGSSLMODE"] = str(getattr(sslmode, "value", sslmode))
    for variable, field in (
        ("PGSSLROOTCERT", "db_ssl_root_cert"),
        ("PGSSLCERT", "db_ssl_cert"),
        ("PGSSLKEY", "db_ssl_key"),
    ):
        path = getattr(settings, field, None)
        if path is not None:
            values[variable] = str(path)
    env.update({k: v for k, v in values.items() if v})
    return env


def _run_with_progress(
    command: list[str],
    env: dict[str, str],
    progress: Progress,
    what: str,
    total: int,
    marker: re.Pattern[str],
) -> None:
    """Run a pg tool with ``--verbose``; each stderr line matching ``marker`` is one step."""
    task = progress.add_task(what, total=max(total, 1))
    process = subprocess.Popen(  # noqa: S603  # nosec B603 - our own arguments, no shell
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None  # noqa: S101 - requested above
    errors: list[str] = []
    for line in process.stderr:
        match = marker.search(line)
        if match:
            progress.update(task, advance=1, description=f"{what} {match['table']}")
        elif "error" in line.lower() or "fatal" in line.lower():
            errors.append(line.strip())
    code = process.wait()
    progress.update(task, completed=max(total, 1), description=what)
    if code != 0:
        reason = errors[0] if errors else f"exit code {code}"
        raise BackupError(f"{Path(command[0]).name} failed: {reason}")


_DUMPED = re.compile(r'dumping contents of table "?(?P<table>[^"\s]+)"?')
_RESTORED = re.compile(r'processing data for table "?(?P<table>[^"\s]+)"?')


def pg_backup(settings: Settings, target: Path, bindir: Path | None, progress: Progress) -> None:
    tables = len(_tables(settings))
    command = [
        str(postgres_tool("pg_dump", bindir)),
        "--format=custom",
        "--verbose",
        "--no-owner",
        "--no-privileges",
        f"--file={target}",
    ]
    _run_with_progress(command, libpq_environment(settings), progress, "dumping", tables, _DUMPED)


def pg_archive_revision(archive: Path, bindir: Path | None) -> str | None:
    """The ``alembic_version`` row stored in a custom-format archive (None: none stored)."""
    result = subprocess.run(  # noqa: S603  # nosec B603 - our own arguments, no shell
        [
            str(postgres_tool("pg_restore", bindir)),
            "--data-only",
            "--table=alembic_version",
            "--file=-",
            str(archive),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        first = result.stderr.strip().splitlines()[:1]
        raise BackupError(
            f"{archive} is not a pg_dump custom-format archive ({first[0] if first else ''})"
        )
    lines = iter(result.stdout.splitlines())
    for line in lines:
        if line.startswith("COPY ") and "alembic_version" in line:
            value = next(lines, "\\.")
            return None if value == "\\." else value.strip()
    return None


def pg_restore(settings: Settings, archive: Path, bindir: Path | None, progress: Progress) -> None:
    tool = str(postgres_tool("pg_restore", bindir))
    listing = subprocess.run(  # noqa: S603  # nosec B603 - our own arguments, no shell
        [tool, "--list", str(archive)], capture_output=True, text=True, check=True, timeout=120
    )
    tables = sum(1 for line in listing.stdout.splitlines() if " TABLE DATA " in line)
    _wipe_postgres(settings)
    command = [
        tool,
        "--verbose",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={libpq_environment(settings)['PGDATABASE']}",
        str(archive),
    ]
    _run_with_progress(
        command, libpq_environment(settings), progress, "restoring", tables, _RESTORED
    )


def _tables(settings: Settings) -> list[str]:
    from sqlalchemy import inspect

    def names(connection: Any) -> list[str]:
        return list(inspect(connection).get_table_names())

    return list(_with_connection(settings, names))


def _wipe_postgres(settings: Settings) -> None:
    """Drop every table of the database's schema: restore starts from an empty database."""
    from sqlalchemy import text

    def drop(connection: Any) -> None:
        from sqlalchemy import inspect

        preparer = connection.dialect.identifier_preparer
        names = [preparer.quote(name) for name in inspect(connection).get_table_names()]
        if names:
            connection.execute(text(f"DROP TABLE IF EXISTS {', '.join(names)} CASCADE"))

    _with_connection(settings, drop, begin=True)


def _with_connection(settings: Settings, work: Callable[[Any], Any], *, begin: bool = False) -> Any:
    import asyncio

    from quantdesk.platform.db import build_engine

    async def run() -> Any:
        engine = build_engine(settings)
        try:
            if begin:
                async with engine.begin() as connection:
                    return await connection.run_sync(work)
            async with engine.connect() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


# --- SQLite ----------------------------------------------------------------------------------
def sqlite_path(settings: Settings) -> Path:
    from sqlalchemy.engine import make_url

    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def sqlite_copy(source: Path, target: Path, progress: Progress, what: str) -> None:
    """Copy ``source`` into ``target`` page by page with SQLite's online backup API.

    Steps of 1,024 pages (4 MiB) keep the source readable and writable between steps; a
    write by another connection makes SQLite restart the copy, so what lands is always one
    consistent snapshot.
    """
    task = progress.add_task(what, total=None)

    def step(_status: int, remaining: int, total: int) -> None:
        progress.update(task, total=total, completed=total - remaining)

    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib_closing(sqlite3.connect(source)) as src,
        contextlib_closing(sqlite3.connect(target)) as dst,
    ):
        src.execute("PRAGMA busy_timeout=10000")
        dst.execute("PRAGMA busy_timeout=10000")
        src.backup(dst, pages=1024, progress=step, sleep=0)
    progress.update(task, description=what)


@contextmanager
def contextlib_closing(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        yield connection
    finally:
        connection.close()


def sqlite_archive_revision(archive: Path) -> str | None:
    try:
        with contextlib_closing(sqlite3.connect(archive)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        if "no such table" in str(exc):
            return None
        raise BackupError(f"{archive} is not a SQLite database ({exc})") from None
    return None if row is None else str(row[0])


# --- revisions -------------------------------------------------------------------------------
def archive_info(settings: Settings, archive: Path, bindir: Path | None) -> ArchiveInfo:
    with archive.open("rb") as file:
        magic = file.read(5)
    if magic == b"PGDMP":
        return ArchiveInfo(archive, "postgresql", pg_archive_revision(archive, bindir))
    return ArchiveInfo(archive, "sqlite", sqlite_archive_revision(archive))


def known_revision(settings: Settings, revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from quantdesk.platform.migrations import alembic_config

    script = ScriptDirectory.from_config(alembic_config(settings))
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def restore_refusal(
    archive_revision: str | None, database_revision: str | None, *, migrate: bool
) -> str | None:
    """Why the archive must not be restored over this database (None: go ahead)."""
    if database_revision is None or database_revision == archive_revision:
        return None
    if migrate:
        return None
    return (
        f"the backup is at migration revision {archive_revision or '(none)'}, this database "
        f"at {database_revision}: restore into an empty database, or pass --migrate to "
        "replace this database and upgrade the restored data to this release's head"
    )


def write_backup_metrics(path: Path, finished_at: float, size: int) -> None:
    """The last successful backup for Prometheus, replaced atomically (a scrape never reads
    half a file)."""
    text = (
        "# HELP quantdesk_backup_last_success_timestamp_seconds When the last backup finished.\n"
        "# TYPE quantdesk_backup_last_success_timestamp_seconds gauge\n"
        f"quantdesk_backup_last_success_timestamp_seconds {finished_at:.3f}\n"
        "# HELP quantdesk_backup_size_bytes Size of the last backup archive.\n"
        "# TYPE quantdesk_backup_size_bytes gauge\n"
        f"quantdesk_backup_size_bytes {size}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


# --- the commands ----------------------------------------------------------------------------
def _progress() -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def backup(
    output: Annotated[
        Path | None,
        typer.Argument(
            help="Archive to write (default: VAR_DIR/backups/quantdesk-<time>-<revision>"
            ".dump, or .sqlite3 for SQLite); never overwritten.",
            dir_okay=False,
        ),
    ] = None,
    pg_bindir: PgBindir = None,
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            envvar="QUANTDESK_BACKUP_METRICS_FILE",
            help="After a successful backup, write its time and size here in Prometheus' "
            "text format (node_exporter's textfile collector: the QuantdeskBackupTooOld "
            "alert).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Back the database up to one file (pg_dump custom format, or SQLite's online backup)."""
    from quantdesk.platform import migrations

    settings = load_settings()
    ensure_database_reachable(settings)
    revision = database_step("reading the revision", lambda: migrations.current(settings))
    if revision is None:
        typer.echo("quantdesk: the database is empty (not migrated): nothing to back up", err=True)
        raise typer.Exit(EXIT_FAILED)
    suffix = ".sqlite3" if settings.is_sqlite else ".dump"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = output or settings.var_dir / "backups" / f"quantdesk-{stamp}-{revision}{suffix}"
    if target.exists():
        typer.echo(f"quantdesk: {target} exists; a backup never overwrites a file", err=True)
        raise typer.Exit(2)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        with _progress() as progress:
            if settings.is_sqlite:
                sqlite_copy(sqlite_path(settings), partial, progress, "copying")
                # One self-contained file: the copy leaves WAL mode (no -wal/-shm beside it).
                with contextlib_closing(sqlite3.connect(partial)) as copy:
                    copy.execute("PRAGMA journal_mode=DELETE")
            else:
                pg_backup(settings, partial, pg_bindir, progress)
        stored = archive_info(settings, partial, pg_bindir).revision
        if stored != revision:
            raise BackupError(
                f"the archive holds revision {stored}, the database was at {revision} "
                "(migrated during the backup?); run it again"
            )
    except (BackupError, sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        typer.echo(f"quantdesk: backup failed: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    partial.rename(target)
    size = target.stat().st_size
    if metrics_file is not None:
        write_backup_metrics(metrics_file, time.time(), size)
    typer.echo(
        f"backup written: {target} (revision {revision}, {size / 1e6:.1f} MB, "
        f"{time.perf_counter() - started:.1f}s)"
    )


def restore(
    archive: Annotated[
        Path,
        typer.Argument(
            help="An archive written by `quantdesk backup`.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    migrate: Annotated[
        bool,
        typer.Option(
            help="Restore over a database at another revision, then upgrade to this release's head."
        ),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Replace a database that holds data without asking.")
    ] = False,
    pg_bindir: PgBindir = None,
) -> None:
    """Replace the database with an archive's contents (stop the servers first)."""
    from quantdesk.platform import migrations

    settings = load_settings()
    ensure_database_reachable(settings)
    dialect = "sqlite" if settings.is_sqlite else "postgresql"
    try:
        info = archive_info(settings, archive, pg_bindir)
    except BackupError as exc:
        typer.echo(f"quantdesk: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    if info.dialect != dialect:
        typer.echo(
            f"quantdesk: {archive} is a {info.dialect} backup; the database is {dialect}",
            err=True,
        )
        raise typer.Exit(EXIT_FAILED)
    if info.revision is None:
        typer.echo(f"quantdesk: {archive} holds no migration revision (alembic_version)", err=True)
        raise typer.Exit(EXIT_REVISION)
    if not known_revision(settings, info.revision):
        typer.echo(
            f"quantdesk: the backup is at migration revision {info.revision}, which this "
            "release does not know (made by a newer quantdesk?): restore it with that release",
            err=True,
        )
        raise typer.Exit(EXIT_REVISION)
    current = database_step("reading the revision", lambda: migrations.current(settings))
    refusal = restore_refusal(info.revision, current, migrate=migrate)
    if refusal is not None:
        typer.echo(f"quantdesk: refusing to restore: {refusal}", err=True)
        raise typer.Exit(EXIT_REVISION)
    if (
        current is not None
        and not yes
        and not typer.confirm(
            f"This replaces everything in the database (revision {current}). Continue?"
        )
    ):
        raise typer.Exit(EXIT_FAILED)
    started = time.perf_counter()
    try:
        with _progress() as progress:
            if settings.is_sqlite:
                sqlite_copy(archive, sqlite_path(settings), progress, "restoring")
            else:
                pg_restore(settings, archive, pg_bindir, progress)
    except (BackupError, sqlite3.Error, OSError, subprocess.CalledProcessError) as exc:
        typer.echo(f"quantdesk: restore failed: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    upgraded = ""
    if migrate:
        database_step("migration", lambda: migrations.upgrade(settings, "head"))
        head = migrations.current(settings)
        if head != info.revision:
            upgraded = f", upgraded to {head}"
    typer.echo(
        f"restored {archive} (revision {info.revision}{upgraded}) in "
        f"{time.perf_counter() - started:.1f}s; check it with `quantdesk admin verify-ledger`"
    )
