"""Rollback of the database (issue 16): a database holding the previous release's data
(revision 0006, paper trading) upgrades to head and downgrades back to 0006 without losing
or changing a row."""

from __future__ import annotations

import asyncio
from typing import Any

from quantdesk.platform import migrations
from quantdesk.settings import Settings
from tests.ops.conftest import table_rows, trade_a_little

PREVIOUS_RELEASE = "0006"


def _columns(settings: Settings) -> dict[str, list[str]]:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(migrations.sync_url(settings))
    try:
        inspector = inspect(engine)
        return {
            name: [c["name"] for c in inspector.get_columns(name)]
            for name in inspector.get_table_names()
        }
    finally:
        engine.dispose()


def _project(
    rows: dict[str, list[tuple[Any, ...]]],
    columns: dict[str, list[str]],
    keep: dict[str, list[str]],
) -> dict[str, list[tuple[Any, ...]]]:
    """Each table of ``keep`` reduced to ``keep``'s columns (a later release may add some)."""
    projected = {}
    for name, wanted in keep.items():
        index = [columns[name].index(column) for column in wanted]
        projected[name] = [tuple(row[i] for i in index) for row in rows[name]]
    return projected


async def test_previous_release_data_survives_upgrade_and_downgrade(settings: Settings) -> None:
    await trade_a_little(settings)
    await asyncio.to_thread(migrations.downgrade, settings, PREVIOUS_RELEASE)
    assert await asyncio.to_thread(migrations.current, settings) == PREVIOUS_RELEASE
    previous = table_rows(settings)
    previous_columns = _columns(settings)
    for name in ("users", "trading_accounts", "orders", "fills", "ledger_postings"):
        assert previous[name], f"{name} holds no data at {PREVIOUS_RELEASE}"

    await asyncio.to_thread(migrations.upgrade, settings, "head")
    upgraded = table_rows(settings)
    columns = _columns(settings)
    kept = {name: cols for name, cols in previous_columns.items() if name != "alembic_version"}
    assert _project(upgraded, columns, kept) == {k: previous[k] for k in kept}

    await asyncio.to_thread(migrations.downgrade, settings, PREVIOUS_RELEASE)
    assert table_rows(settings) == previous
    assert _columns(settings) == previous_columns
