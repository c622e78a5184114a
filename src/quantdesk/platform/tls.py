"""TLS to PostgreSQL and Redis, from settings (docs/operations.md, "TLS to PostgreSQL and Redis").

PostgreSQL: asyncpg takes an ``ssl.SSLContext``; the modes are libpq's, built the way libpq
treats them: ``require`` encrypts without checking the certificate, ``verify-ca`` checks it
against the CA bundle, ``verify-full`` checks the host name as well.  Redis: a ``rediss://``
URL selects redis-py's TLS connection; these options give it the CA bundle (and a client
certificate for servers with ``tls-auth-clients yes``), with the certificate and host name
always verified.
"""

from __future__ import annotations

import ssl
from typing import Any

from quantdesk.settings import DatabaseSslMode, Settings


def postgres_ssl(settings: Settings) -> ssl.SSLContext | bool | None:
    """The ``ssl`` argument of ``asyncpg.connect``; None leaves the driver's default."""
    mode = settings.db_sslmode
    if mode is None:
        return None
    if mode is DatabaseSslMode.DISABLE:
        return False
    root = str(settings.db_ssl_root_cert) if settings.db_ssl_root_cert else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=root)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if mode is DatabaseSslMode.REQUIRE:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif mode is DatabaseSslMode.VERIFY_CA:
        context.check_hostname = False
    if settings.db_ssl_cert is not None and settings.db_ssl_key is not None:
        context.load_cert_chain(settings.db_ssl_cert, settings.db_ssl_key)
    return context


def redis_tls_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``Redis.from_url``: empty unless the URL is ``rediss://``."""
    if not (settings.redis_url or "").startswith("rediss://"):
        return {}
    options: dict[str, Any] = {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_min_version": ssl.TLSVersion.TLSv1_2,
    }
    if settings.redis_ssl_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.redis_ssl_ca_file)
    if settings.redis_ssl_cert is not None and settings.redis_ssl_key is not None:
        options["ssl_certfile"] = str(settings.redis_ssl_cert)
        options["ssl_keyfile"] = str(settings.redis_ssl_key)
    return options
