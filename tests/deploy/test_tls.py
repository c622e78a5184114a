"""TLS to PostgreSQL (sslmode verify-full with a CA file) and to Redis (rediss://), against
local servers whose certificates come from a CA made here (trustme).

Pure in the suite's sense (no ``settings`` fixture): it starts its own PostgreSQL cluster and
Redis server with TLS on, once, in the SQLite pass.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from sqlalchemy import text

from quantdesk.platform.context import AppContext
from quantdesk.platform.db import Database
from quantdesk.settings import ConfigurationError, Settings
from tests.conftest import TEST_SECRET
from tests.support.servers import PostgresServer, RedisServer, ServerStartError

# The certificates name the host "localhost" only: connecting to 127.0.0.1 is then a host
# name mismatch, which verify-full must refuse and verify-ca accept.
HOST = "localhost"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert(HOST)
    files = {
        "ca": folder / "ca.pem",
        "other_ca": folder / "other-ca.pem",
        "cert": folder / "server.pem",
        "key": folder / "server.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    trustme.CA().cert_pem.write_to_path(str(files["other_ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["cert"]))
    server.private_key_pem.write_to_path(str(files["key"]))
    return files


@pytest.fixture(scope="module")
def tls_postgres(pki: dict[str, Path]) -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        # The server reads its key as its own user, and refuses a key others may read.
        for name in ("cert", "key"):
            target = server.root / pki[name].name
            shutil.copyfile(pki[name], target)
            target.chmod(0o600)
            if server.as_root:
                shutil.chown(target, "postgres", "postgres")
        # ssl and its files are reloadable settings (PostgreSQL >= 10): no restart.
        server.psql(f"ALTER SYSTEM SET ssl_cert_file = '{server.root / 'server.pem'}'")
        server.psql(f"ALTER SYSTEM SET ssl_key_file = '{server.root / 'server.key'}'")
        server.psql("ALTER SYSTEM SET ssl = on")
        server.psql("SELECT pg_reload_conf()")
        yield server
    finally:
        server.destroy()


class TlsRedisServer(RedisServer):
    """redis-server listening with TLS only (port 0 turns the plain port off)."""

    def __init__(self, pki: dict[str, Path]) -> None:
        super().__init__()
        self.pki = pki

    def _start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--tls-cert-file",
                str(self.pki["cert"]),
                "--tls-key-file",
                str(self.pki["key"]),
                "--tls-ca-cert-file",
                str(self.pki["ca"]),
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        if not self._ready(deadline_s=15):
            self.stop()
            raise ServerStartError(f"redis-server with TLS did not start on {self.port}")


@pytest.fixture(scope="module")
def tls_redis(pki: dict[str, Path]) -> Iterator[TlsRedisServer]:
    server = TlsRedisServer(pki)
    server.start()
    yield server
    server.stop()


def tls_settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(
        profile="test", var_dir=tmp_path, secret_key=TEST_SECRET, _env_file=None, **values
    )


async def session_uses_tls(settings: Settings) -> bool:
    database = Database(settings)
    try:
        async with database.engine.connect() as connection:
            result = await connection.execute(
                text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
            return bool(result.scalar_one())
    finally:
        await database.dispose()


async def test_postgres_verify_full_with_a_ca_file(
    tls_postgres: PostgresServer, pki: dict[str, Path], tmp_path: Path
) -> None:
    def url(host: str) -> str:
        return f"postgresql+asyncpg://postgres@{host}:{tls_postgres.port}/postgres"

    full = {"db_sslmode": "verify-full", "db_ssl_root_cert": pki["ca"]}
    assert await session_uses_tls(tls_settings(tmp_path, database_url=url(HOST), **full))
    # The same certificate, reached by another name: verify-full refuses, verify-ca accepts.
    with pytest.raises(Exception, match=r"(?i)certificate|hostname"):
        await session_uses_tls(tls_settings(tmp_path, database_url=url("127.0.0.1"), **full))
    verify_ca = {"db_sslmode": "verify-ca", "db_ssl_root_cert": pki["ca"]}
    assert await session_uses_tls(
        tls_settings(tmp_path, database_url=url("127.0.0.1"), **verify_ca)
    )
    # A certificate from a CA we do not trust is refused.
    foreign = {"db_sslmode": "verify-full", "db_ssl_root_cert": pki["other_ca"]}
    with pytest.raises(Exception, match=r"(?i)certificate"):
        await session_uses_tls(tls_settings(tmp_path, database_url=url(HOST), **foreign))
    # Without TLS settings the session is plain (sslmode disable).
    plain = tls_settings(tmp_path, database_url=url(HOST), db_sslmode="disable")
    assert not await session_uses_tls(plain)


async def test_redis_over_tls_with_a_ca_file(
    tls_redis: TlsRedisServer, pki: dict[str, Path], tmp_path: Path
) -> None:
    url = f"rediss://{HOST}:{tls_redis.port}/0"
    settings = tls_settings(tmp_path, redis_url=url, redis_ssl_ca_file=pki["ca"])
    ctx = AppContext.build(settings)
    try:
        assert ctx.redis is not None
        assert await ctx.redis.ping()
        await ctx.cache.set("tls-probe", b"1", ttl_s=5)
        assert await ctx.cache.get("tls-probe") == b"1"
    finally:
        await ctx.aclose()
    foreign = tls_settings(tmp_path, redis_url=url, redis_ssl_ca_file=pki["other_ca"])
    ctx = AppContext.build(foreign)
    try:
        assert ctx.redis is not None
        with pytest.raises(Exception, match=r"(?i)certificate"):
            await ctx.redis.ping()
    finally:
        await ctx.aclose()


def test_tls_settings_that_would_be_ignored_are_refused(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigurationError, match="QUANTDESK_DB_SSL_ROOT_CERT does not name"):
        tls_settings(
            tmp_path, db_sslmode="verify-full", db_ssl_root_cert=missing
        ).check_production()
    ca = tmp_path / "ca.pem"
    ca.write_text("-")
    with pytest.raises(ConfigurationError, match="not a rediss:// URL"):
        tls_settings(
            tmp_path, redis_url="redis://127.0.0.1:1/0", redis_ssl_ca_file=ca
        ).check_production()
    with pytest.raises(ConfigurationError, match="QUANTDESK_DB_SSLMODE does not use TLS"):
        tls_settings(tmp_path, db_ssl_root_cert=ca).check_production()
