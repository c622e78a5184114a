"""Fixtures for the market-data service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from quantdesk.platform.db import Database
from quantdesk.settings import Settings


@pytest.fixture
async def md_database(settings: Settings) -> AsyncIterator[Database]:
    """A freshly migrated database (SQLite, or PostgreSQL with ``--db=postgres``)."""
    database = Database(settings)
    yield database
    await database.dispose()
