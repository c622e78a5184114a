"""Database plumbing: engine, unit of work, declarative base and exact column types.

One ``Database`` per app (built by the app factory, never at import time).  A request gets
one unit of work: ``Database.session()`` commits when the block ends cleanly and rolls back
otherwise, so services only ``flush``.  Connection failures surface as ``ServiceUnavailable``
(503) rather than 500s, and the pool heals by itself once the database is back: a
connection idle for ``QUANTDESK_DB_PING_AFTER_IDLE_S`` is pinged before use (a dead one is
replaced), and a statement that finds its connection dead makes the pool replace every older
one.  SQLAlchemy's ``pool_pre_ping`` pings before every use; on a busy pool that was a round
trip per transaction for connections used a millisecond earlier.

SQLite has one writer at a time.  A unit of work that will write asks for ``immediate=True``
and takes the write lock with ``BEGIN IMMEDIATE`` at its first statement: a deferred
transaction that reads and then writes cannot wait for the lock once another writer has
committed since its read (SQLite answers "database is locked" at once, busy timeout or not).
Within a process the writers queue on an ``asyncio.Lock`` (first come, first served)
before ``BEGIN IMMEDIATE``: SQLite's own busy handler polls with growing sleeps (up to 100
ms), so under contention a writer that arrived first could keep losing the lock to later
ones and wait for seconds.  SQLite's busy timeout still orders writers of other processes
(the CLI, a second worker).  Both waits are bounded by
``QUANTDESK_DB_SQLITE_BUSY_TIMEOUT_MS``; past it the request is a 503 with ``Retry-After``,
never a 500 and never a long hang.  A request never opens a second writer while its own
holds the lock (it would wait for itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import DateTime, MetaData, Numeric, String, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    InterfaceError,
    InvalidatePoolError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, QueuePool
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlalchemy.util import await_only

from quantdesk.platform.exceptions import InvalidInput, ServiceUnavailable
from quantdesk.platform.metrics import PoolNumbers
from quantdesk.platform.tls import postgres_ssl
from quantdesk.settings import Settings

# Deterministic constraint names so Alembic autogenerate and downgrades stay stable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ExactDecimal(TypeDecorator[Decimal]):
    """A ``Decimal`` that comes back exactly as it went in, on both databases.

    PostgreSQL: unconstrained ``NUMERIC`` keeps every digit and the scale.  SQLite has no exact
    numeric type (its NUMERIC affinity converts to REAL), so the canonical decimal string is
    stored as TEXT.  Floats are refused at bind time: money never passes through float.
    """

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float | bool) or not isinstance(value, Decimal | int | str):
            raise TypeError(f"ExactDecimal needs Decimal, int or str, got {type(value).__name__}")
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
        if not number.is_finite():
            raise ValueError(f"decimal must be finite, got {number}")
        return str(number) if dialect.name == "sqlite" else number

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both databases; naive datetimes are refused."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(DateTime(timezone=dialect.name != "sqlite"))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError("UTCDateTime needs a timezone-aware datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)  # noqa: S101 - driver contract
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def build_engine(settings: Settings) -> AsyncEngine:
    """Create the engine for ``settings.database_url`` with per-database tuning."""
    if settings.is_sqlite:
        _ensure_sqlite_dir(settings.database_url)
        busy_timeout_ms = settings.db_sqlite_busy_timeout_ms
        engine = create_async_engine(
            settings.database_url,
            echo=settings.db_echo,
            # sqlite3's own busy wait, matched to the PRAGMA below.
            connect_args={"timeout": busy_timeout_ms / 1000},
            pool_pre_ping=False,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_s,
        )

        def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
            _sqlite_on_connect(dbapi_connection, busy_timeout_ms)

        event.listen(engine.sync_engine, "connect", on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout_s,
        "command_timeout": settings.db_statement_timeout_ms / 1000 or None,
        "server_settings": {"application_name": "quantdesk"},
    }
    # QUANTDESK_DB_SSLMODE (platform/tls.py); unset keeps asyncpg's default.
    ssl = postgres_ssl(settings)
    if ssl is not None:
        connect_args["ssl"] = ssl
    engine = create_async_engine(
        settings.database_url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=False,
        pool_recycle=1800,
        poolclass=MeteredQueuePool,
        connect_args=connect_args,
    )
    _ping_when_idle(engine, settings.db_ping_after_idle_s)
    return engine


_IDLE_SINCE = "quantdesk_idle_since"


def _ping_when_idle(engine: AsyncEngine, after_s: float) -> None:
    """Ping a pooled connection before use once it has been idle ``after_s`` (a fresh one is
    never pinged, as with ``pool_pre_ping``); a failed ping replaces every pooled connection."""
    dialect = engine.sync_engine.dialect

    def on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < after_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool takes this as "reconnect": it replaces this connection and every
            # older one, then checks out a new connection (or raises if it cannot connect).
            raise InvalidatePoolError(str(exc)) from exc

    event.listen(engine.sync_engine, "checkin", on_checkin)
    event.listen(engine.sync_engine, "checkout", on_checkout)


class MeteredQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, counting the checkouts that wait for a connection.

    A checkout waits when every connection the pool may open is checked out and none is
    idle; it then queues for up to ``QUANTDESK_DB_POOL_TIMEOUT_S`` before a ``TimeoutError``
    (a 503).  ``quantdesk_db_pool_waiters`` and ``quantdesk_db_pool_timeouts_total`` come
    from here; SQLAlchemy keeps neither number.  Checkouts run on the event loop's thread
    (in SQLAlchemy's greenlets), so plain integers are enough.
    """

    # Log under SQLAlchemy's namespace (WARNING unless asked), not under ours at INFO: a
    # CLI command would otherwise print "Pool disposed" ahead of its one-line answer.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.MeteredQueuePool"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiters = 0
        self.timeouts = 0

    def _do_get(self) -> ConnectionPoolEntry:
        exhausted = -1 < self._max_overflow <= self._overflow and self._pool.empty()
        if not exhausted:
            return super()._do_get()
        self.waiters += 1
        try:
            return super()._do_get()
        except PoolTimeoutError:
            self.timeouts += 1
            raise
        finally:
            self.waiters -= 1


def _ensure_sqlite_dir(url: str) -> None:
    from pathlib import Path

    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_on_connect(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    # The driver's implicit BEGIN is switched off so that ``_sqlite_on_begin`` decides how a
    # transaction starts (SQLAlchemy's documented recipe for correct SQLite transactions).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    # Writes that must not race (orders, cash, positions) ask for an IMMEDIATE transaction:
    # SQLite's equivalent of SELECT ... FOR UPDATE, taking the write lock up front so two
    # read-modify-write transactions cannot interleave.
    options = conn.get_execution_options()
    if not options.get("sqlite_immediate"):
        conn.exec_driver_sql("BEGIN")
        return
    ticket = options.get("sqlite_write_ticket")
    if isinstance(ticket, WriteTicket):
        # We run inside SQLAlchemy's greenlet: await_only suspends this unit of work on the
        # event loop until the process's write turn comes.
        await_only(ticket.take())
    conn.exec_driver_sql("BEGIN IMMEDIATE")


class WriteTicket:
    """One unit of work's place in its process's queue of SQLite writers.

    Taken when a transaction of the unit of work begins, given back when that transaction
    has committed or rolled back (or, at the latest, when the unit of work closes); a unit
    of work that never touches the database never queues.
    """

    __slots__ = ("_gate", "_held", "_timeout_s")

    def __init__(self, gate: asyncio.Lock, timeout_s: float) -> None:
        self._gate = gate
        self._timeout_s = timeout_s
        self._held = False

    async def take(self) -> None:
        if self._held:
            return
        try:
            await asyncio.wait_for(self._gate.acquire(), self._timeout_s)
        except TimeoutError:
            raise _busy() from None
        self._held = True

    def give_back(self, *_session: object) -> None:
        if self._held:
            self._held = False
            self._gate.release()


def _busy() -> ServiceUnavailable:
    # The database is healthy but another writer held it for longer than the busy timeout:
    # the client should simply retry soon.
    return ServiceUnavailable(
        "the database is busy; retry shortly", dependency="database", retry_after=1
    )


def _sqlstate(exc: BaseException) -> str | None:
    if not isinstance(exc, DBAPIError):
        return None
    code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
    return code if isinstance(code, str) else None


def is_bad_value_error(exc: BaseException) -> bool:
    """True when the database refused a value (SQLSTATE class 22, "data exception")."""
    if isinstance(exc, DataError):
        return True
    code = _sqlstate(exc)
    return code is not None and code.startswith("22")


# A server going away or coming back: class 08 (connection exception) and the shutdown and
# start-up states (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now).
# asyncpg raises them as plain errors that SQLAlchemy wraps as a bare DBAPIError.
_UNREACHABLE_STATES = ("57P01", "57P02", "57P03")


def is_busy_error(exc: BaseException) -> bool:
    """True when SQLite gave up waiting for its write lock (contention, not an outage)."""
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)


# PostgreSQL's undefined_table / undefined_column; SQLite says it in words.
_MISSING_SCHEMA_STATES = ("42P01", "42703")
_MISSING_SCHEMA_WORDS = ("no such table", "no such column")


def is_missing_schema(exc: BaseException) -> bool:
    """True when a table or column this release uses is not in the database: it was never
    migrated, or to an older revision (an operator's fix, not an outage)."""
    if _sqlstate(exc) in _MISSING_SCHEMA_STATES:
        return True
    return isinstance(exc, OperationalError) and any(w in str(exc) for w in _MISSING_SCHEMA_WORDS)


NOT_MIGRATED = "the database is not migrated to this release: run `quantdesk migrate upgrade`"


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be reached (as opposed to a bad query)."""
    if is_missing_schema(exc):
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, PoolTimeoutError):
        return True
    code = _sqlstate(exc)
    if code is not None and (code.startswith("08") or code in _UNREACHABLE_STATES):
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        # SQLite's "database is locked" is contention on a healthy database, not an outage.
        return "database is locked" not in str(exc)
    return isinstance(exc, ConnectionError | OSError)


_AFTER_COMMIT = "quantdesk_after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run ``callback`` once ``session``'s unit of work has committed, never on a rollback.

    For what others must not see early: dropping a cached credential before the revocation
    commits lets a concurrent request cache the old, still-valid row again.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


class Database:
    """Engine + session factory for one app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = build_engine(settings)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # This process's SQLite writers, in arrival order (see the module docstring).
        self._write_gate = asyncio.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self, *, immediate: bool = False) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on error, 503 when the DB is down.

        ``immediate=True`` takes the write lock at BEGIN on SQLite (PostgreSQL callers lock
        the rows they change with ``SELECT ... FOR UPDATE`` instead).  The transaction, and
        so the lock, begins with the block's first statement.
        """
        ticket: WriteTicket | None = None
        if immediate and self.dialect == "sqlite":
            ticket = WriteTicket(self._write_gate, self.settings.db_sqlite_busy_timeout_ms / 1000)
            # Bound to this unit of work only: its transactions begin IMMEDIATE, after its
            # turn in the queue, when its first statement runs (not when it is opened).
            bind = self.engine.execution_options(sqlite_immediate=True, sqlite_write_ticket=ticket)
            session = AsyncSession(bind=bind, expire_on_commit=False)
            # SQLite's lock ends with the transaction; so does this unit of work's turn.
            event.listen(session.sync_session, "after_commit", ticket.give_back)
            event.listen(session.sync_session, "after_rollback", ticket.give_back)
        else:
            session = self.sessionmaker()
        try:
            yield session
            await session.commit()
        except BaseException as exc:
            await _rollback_quietly(session)
            if is_bad_value_error(exc):
                # The database refused a value the request carried (a NUL character in text,
                # a number out of range): bad input, not a server fault.
                raise InvalidInput("the request holds a value the database cannot store") from exc
            if is_busy_error(exc):
                raise _busy() from exc
            if is_missing_schema(exc):
                raise ServiceUnavailable(NOT_MIGRATED, dependency="database") from exc
            if is_connection_error(exc) and not isinstance(exc, ServiceUnavailable):
                raise ServiceUnavailable(
                    "the database is unreachable", dependency="database", retry_after=2
                ) from exc
            raise
        finally:
            await session.close()
            if ticket is not None:
                ticket.give_back()
        for callback in session.info.pop(_AFTER_COMMIT, ()):
            await callback()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def pool_checked_out(self) -> int:
        pool: Any = self.engine.pool
        checked = getattr(pool, "checkedout", None)
        return int(checked()) if callable(checked) else 0

    def pool_numbers(self) -> PoolNumbers:
        """Connections in use, waiting checkouts, capacity and timeouts (``/metrics``)."""
        pool: Any = self.engine.pool
        capacity = 0
        if isinstance(pool, QueuePool):
            capacity = pool.size() + max(pool._max_overflow, 0)
        return PoolNumbers(
            in_use=self.pool_checked_out(),
            waiters=getattr(pool, "waiters", 0),
            capacity=capacity,
            timeouts=getattr(pool, "timeouts", 0),
        )

    async def dispose(self) -> None:
        await self.engine.dispose()


async def _rollback_quietly(session: AsyncSession) -> None:
    # The original error is the one worth raising; a failed rollback adds nothing.
    with contextlib.suppress(Exception):
        await session.rollback()
