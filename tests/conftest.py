"""Shared fixtures: a fresh migrated database per test, real Redis, the app and an HTTP client.

The suite runs twice (``make test``): ``--db=sqlite`` runs every test on the embedded default;
``--db=postgres`` starts a throwaway PostgreSQL cluster and Redis server and runs again every
test that touches them (they are marked ``db`` automatically, by using the ``settings``
fixture).  A server that cannot start fails the run; it never skips.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis as redis_sync
from fastapi import FastAPI
from hypothesis import settings as settings_profiles

from quantdesk.app import create_app
from quantdesk.platform import migrations
from quantdesk.settings import Settings
from tests.support.factories import TestUser, UserFactory, Users
from tests.support.servers import PostgresServer, RedisServer, ServerStartError

# Re-exported: tests import the user types from here.
__all__ = ["TestUser", "UserFactory", "Users", "base_settings"]

# `make test` (and so CI) replays the same examples every run: a red build must be
# reproducible, and must not depend on the seed.  A bare `pytest` explores new ones each run.
settings_profiles.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") or os.environ.get("QD_HYPOTHESIS_DERANDOMIZE"):
    settings_profiles.load_profile("ci")

# SIGTERM (a CI timeout, `kill`) becomes SystemExit, so fixtures and atexit hooks still stop
# the PostgreSQL and Redis servers the session started.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        action="store",
        default="sqlite",
        choices=("sqlite", "postgres"),
        help="database backend for tests that use one (postgres also starts Redis)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = config.getoption("--db") == "postgres"
    selected, deselected = [], []
    for item in items:
        if "settings" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)
        # Tests about server outages need a server to stop; they run in the PostgreSQL pass.
        if item.get_closest_marker("postgres_only") and not on_postgres:
            deselected.append(item)
        else:
            selected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--db"))


@pytest.fixture(scope="session")
def pg_server(backend: str) -> Iterator[PostgresServer | None]:
    if backend != "postgres":
        yield None
        return
    try:
        server = PostgresServer()
        server.start()
    except ServerStartError as exc:
        pytest.exit(f"cannot start PostgreSQL for the test suite: {exc}", returncode=3)
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def redis_server(backend: str) -> Iterator[RedisServer | None]:
    if backend != "postgres":
        yield None
        return
    try:
        server = RedisServer()
        server.start()
    except ServerStartError as exc:
        pytest.exit(f"cannot start Redis for the test suite: {exc}", returncode=3)
    yield server
    server.stop()


def base_settings(database_url: str, var_dir: Path, redis_url: str | None = None) -> Settings:
    return Settings(
        profile="test",
        database_url=database_url,
        redis_url=redis_url,
        var_dir=var_dir,
        secret_key=TEST_SECRET,
        demo_data=False,
        # Generous per-client budgets so suites that drive many requests from one test
        # client are not throttled; tests/security checks the real defaults.
        rate_limit_login_ip="100000/minute",
        rate_limit_auth_ip="100000/minute",
        rate_limit_register_ip="100000/minute",
        rate_limit_unauthenticated_ip="100000/minute",
        rate_limit_api="100000/second",
        # Hand-worked P&L and margin cases are about P&L and margin; the charges schedule
        # has cases of its own (tests/trading/test_charges_api.py), which turn it on.
        trading_charges="none",
        # A queue of SQLite writers on a loaded 2-core machine can wait past the default 2 s
        # and get 503; tests about that wait set a short one (test_sqlite_concurrency.py).
        db_sqlite_busy_timeout_ms=10_000,
        log_level="WARNING",
        gc_freeze=False,
        _env_file=None,
    )


@pytest.fixture(scope="session")
def template_database(
    backend: str, pg_server: PostgresServer | None, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A database migrated to head once per session; each test gets a copy of it."""
    if pg_server is not None:
        pg_server.psql("CREATE DATABASE qd_template")
        url = pg_server.url("qd_template")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('template') / 'template.db'}"
    migrations.upgrade(base_settings(url, tmp_path_factory.mktemp("var")), "head")
    return url


class DatabasesAhead:
    """Copies of the template database made on a thread while tests run.

    A copy takes PostgreSQL ~0.3 s, against ~0.7 s for a typical test, and the test spends
    much of its time waiting on the database or the event loop: copying the next one
    meanwhile takes that out of every test's set-up.  A copy that fails (a test has stopped
    the server to test an outage) is tried again once the server is back.
    """

    def __init__(self, server: PostgresServer, ahead: int = 2) -> None:
        self._server = server
        self._ready: queue.Queue[str] = queue.Queue(maxsize=ahead)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="databases-ahead", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        while not self._stopping.is_set():
            name = f"t_{uuid.uuid4().hex[:12]}"
            try:
                self._server.psql(f"CREATE DATABASE {name} TEMPLATE qd_template")
            except RuntimeError:
                self._stopping.wait(0.2)
                continue
            while not self._stopping.is_set():
                try:
                    self._ready.put(name, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def take(self) -> str:
        while True:
            try:
                return self._ready.get(timeout=1)
            except queue.Empty:
                if not self._thread.is_alive():
                    raise RuntimeError("the database copier stopped") from None

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)


@pytest.fixture(scope="session")
def databases_ahead(
    template_database: str, pg_server: PostgresServer | None
) -> Iterator[DatabasesAhead | None]:
    if pg_server is None:
        yield None
        return
    ahead = DatabasesAhead(pg_server)
    yield ahead
    ahead.close()


@pytest.fixture
def database_url(
    template_database: str,
    databases_ahead: DatabasesAhead | None,
    pg_server: PostgresServer | None,
    tmp_path: Path,
) -> Iterator[str]:
    if pg_server is not None and databases_ahead is not None:
        name = databases_ahead.take()
        yield pg_server.url(name)
        pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    source = Path(template_database.removeprefix("sqlite+aiosqlite:///"))
    target = tmp_path / "quantdesk.db"
    shutil.copyfile(source, target)
    yield f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def redis_url(redis_server: RedisServer | None) -> str | None:
    if redis_server is None:
        return None
    url = redis_server.url(0)
    client = redis_sync.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    return base_settings(database_url, tmp_path / "var", redis_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def users(app: FastAPI, client: httpx.AsyncClient) -> Users:
    """Builders of registered, signed-in, admin and API-key users (``tests/support/factories``)."""
    return Users(app, client)


@pytest.fixture
def make_user(users: Users) -> UserFactory:
    """``await make_user(role="viewer" | "trader" | "admin")``: a new, signed-in user."""
    return users.logged_in
