"""``quantdesk data import-instruments FILE``: the CLI side of the instrument importers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from quantdesk.marketdata.instruments.importers import (
    ImportFormat,
    ImportProgress,
    ImportReport,
    import_instruments,
    read_text,
)
from quantdesk.platform.db import Database
from quantdesk.settings import Settings


def run_import(
    settings: Settings, path: Path, fmt: ImportFormat, progress: ImportProgress | None = None
) -> ImportReport:
    """Import ``path`` in one transaction; ``InvalidInput`` (nothing written) on a bad row."""
    text = read_text(path)

    async def main() -> ImportReport:
        database = Database(settings)
        try:
            # immediate: take SQLite's write lock up front, so a running server's writes
            # cannot make this long transaction fail half-way with "database is locked".
            async with database.session(immediate=True) as session:
                return await import_instruments(session, text, fmt, progress)
        finally:
            await database.dispose()

    return asyncio.run(main())


def import_with_progress(settings: Settings, path: Path, fmt: ImportFormat) -> ImportReport:
    """``run_import`` with a progress bar on stderr, like ``demo load``'s."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    labels = {"parse": "Checking lines", "write": "Writing"}
    with Progress(
        TextColumn("{task.description:<15}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        # Gone once done: the one-line summary says what happened.
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def show(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels[stage], total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return run_import(settings, path, fmt, show)


def describe(path: Path, report: ImportReport) -> str:
    return (
        f"{path.name}: {report.format.value} format; {report.inserted} inserted, "
        f"{report.updated} updated, {report.unchanged} unchanged, "
        f"{report.skipped} skipped (exchanges quantdesk does not list)"
    )
