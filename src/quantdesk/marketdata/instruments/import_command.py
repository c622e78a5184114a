"""``quantdesk data import-instruments FILE``: the CLI side of the instrument importers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from quantdesk.marketdata.instruments.importers import (
    ImportFormat,
    ImportReport,
    import_instruments,
    read_text,
)
from quantdesk.platform.db import Database
from quantdesk.settings import Settings


def run_import(settings: Settings, path: Path, fmt: ImportFormat) -> ImportReport:
    """Import ``path`` in one transaction; ``InvalidInput`` (nothing written) on a bad row."""
    text = read_text(path)

    async def main() -> ImportReport:
        database = Database(settings)
        try:
            # immediate: take SQLite's write lock up front, so a running server's writes
            # cannot make this long transaction fail half-way with "database is locked".
            async with database.session(immediate=True) as session:
                return await import_instruments(session, text, fmt)
        finally:
            await database.dispose()

    return asyncio.run(main())


def describe(path: Path, report: ImportReport) -> str:
    return (
        f"{path.name}: {report.format.value} format; {report.inserted} inserted, "
        f"{report.updated} updated, {report.unchanged} unchanged, "
        f"{report.skipped} skipped (exchanges quantdesk does not list)"
    )
