"""A database that is going away or coming back is an outage (503), never a bug (500).

Found by ``make chaos`` (docs/benchmarks.md): while PostgreSQL restarted, asyncpg raised
"the database system is not yet accepting connections" (SQLSTATE 57P03) and "connection was
closed in the middle of operation" (08003); SQLAlchemy wraps both as a plain ``DBAPIError``
(neither ``OperationalError`` nor ``connection_invalidated``), so
``platform.db.is_connection_error`` missed them and six requests of the chaos run were 500s.
"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from quantdesk.platform.db import is_connection_error


class DriverError(Exception):
    """What SQLAlchemy's asyncpg adaptor raises: the SQLSTATE on ``sqlstate``/``pgcode``."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = self.pgcode = sqlstate


@pytest.mark.parametrize(
    ("message", "sqlstate"),
    [
        ("the database system is not yet accepting connections", "57P03"),
        ("the database system is starting up", "57P03"),
        ("connection was closed in the middle of operation", "08003"),
        ("terminating connection due to administrator command", "57P01"),
    ],
)
def test_a_restarting_database_is_a_connection_error(message: str, sqlstate: str) -> None:
    assert is_connection_error(DBAPIError("SELECT 1", None, DriverError(message, sqlstate)))


def test_a_bad_query_is_not_a_connection_error() -> None:
    undefined_table = DriverError('relation "nope" does not exist', "42P01")
    assert not is_connection_error(DBAPIError("SELECT 1", None, undefined_table))
