"""One settings object, built once and injected (``create_app(settings)``).

Every variable is read from the environment with the ``QUANTDESK_`` prefix (or a ``.env`` file);
``.env.example`` documents each one.  ``Settings.check_production()`` is what makes a ``prod``
start refuse to run with a missing or weak secret, a wildcard CORS origin or an unintended
SQLite database: each problem names the variable so the operator knows what to fix.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections import Counter
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# Values shipped in .env.example or seen in tutorials; a production secret equal to one of
# these is as good as none.
KNOWN_PLACEHOLDERS = frozenset(
    {
        "changeme",
        "change-me",
        "changethis",
        "secret",
        "password",
        "dev",
        "test",
        "example",
        "replace-me",
        "please-change-me-to-a-long-random-value",
    }
)
MIN_SECRET_LENGTH = 32
# Placeholders this long are refused anywhere in a value ("changeme1", "my-secret-key..."):
# a human-made variant of a placeholder is no more secret than the placeholder.  Shorter
# ones ("dev", "test") only as the whole value, or random values would trip over them.
PLACEHOLDER_SUBSTRING_MIN = 6
# Shannon entropy of the value's own character distribution, times its length: 32 random
# hex digits score about 115 bits, 43 url-safe base64 characters about 220; 32 x "a" scores
# 0 and "ab" x 24 scores 48.  A cheap screen against patterned values, not a proof of
# randomness, which is why repetitions of a shorter unit are refused on their own too.
MIN_SECRET_ENTROPY_BITS = 96
# 32 random bytes hold about 30 distinct values; an all-zero or patterned key a handful.
MIN_DISTINCT_KEY_BYTES = 16
PII_KEY_BYTES = 32  # AES-256
OWASP_ARGON2_TIME_COST = 2
OWASP_ARGON2_MEMORY_KIB = 19 * 1024


class Profile(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class ConfigurationError(Exception):
    """Settings that must not be used to start the service; the message names the variable."""


class DatabaseSslMode(StrEnum):
    """libpq's sslmode values that mean something to a client that must not leak data."""

    DISABLE = "disable"
    REQUIRE = "require"  # encrypted, certificate not checked
    VERIFY_CA = "verify-ca"  # signed by the CA
    VERIFY_FULL = "verify-full"  # signed by the CA, for the host name connected to


# Where SecretFilesSource tells the model which secrets were given both ways.
GIVEN_TWICE_KEY = "__quantdesk_given_twice__"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="QUANTDESK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    profile: Profile = Profile.DEV
    var_dir: Path = Path("var")

    # Database: SQLite file by default; postgresql+asyncpg://... selects PostgreSQL.
    database_url: str = "sqlite+aiosqlite:///var/quantdesk.db"
    allow_sqlite_in_prod: bool = False
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_max_overflow: int = Field(default=80, ge=0, le=1000)
    db_pool_timeout_s: float = Field(default=5.0, gt=0)
    # PostgreSQL: how long opening a connection may take before the unit of work is a 503.
    db_connect_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # PostgreSQL: a pooled connection idle this long is pinged before use (0: every use).
    db_ping_after_idle_s: float = Field(default=1.0, ge=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    # SQLite: how long a writer waits for the write lock before the request is a 503.
    db_sqlite_busy_timeout_ms: int = Field(default=2_000, ge=0, le=30_000)
    db_echo: bool = False

    # Redis is optional: without it, cache, bus and rate limits run in-process.
    redis_url: str | None = None

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # How long `quantdesk serve` keeps an idle keep-alive connection open.  Longer than the
    # idle timeouts of the proxies and clients in front (nginx 60-75 s, cloud load balancers
    # 60 s), so that the server is never the side that closes a connection a client is
    # about to reuse (the client would then see a reset).
    http_keep_alive_s: int = Field(default=75, ge=1, le=3600)
    # Once started, the heap built so far (modules, schemas, the instrument master) is moved
    # out of the garbage collector's sight (gc.freeze): a full collection then walks only
    # what was made since, milliseconds instead of the ~200 ms pauses that stalled every
    # stream client and request.  Off in tests, which build hundreds of apps in one process.
    gc_freeze: bool = True
    # With the heap frozen, the oldest generation is collected after this many collections
    # of the middle one (Python's default: 10), and still only once it has grown by a
    # quarter.  What it then walks is the live connections' state, about 1 us an object on
    # this machine: some 200 objects per WebSocket connection, so ~250 ms with the loop
    # stopped at 1,000 connections, every time their count grows by a quarter.  At 100 a
    # burst of 1,000 connections triggers none; the price is that cyclic garbage which
    # reached the oldest generation (a closed connection leaves ~130 objects) waits longer.
    # Applied only where the heap is frozen.
    gc_full_every: int = Field(default=100, ge=1, le=10_000)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_hosts: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    public_base_url: str = "http://127.0.0.1:8000"
    # Addresses (or CIDR networks) of the reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed.  Empty: nobody's, so a client cannot pick the address
    # that rate limits and the security log see (docs/security.md, "Client addresses").
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # /docs, /redoc and /openapi.json; None = served outside prod only.
    docs_enabled: bool | None = None

    # Logging and observability
    log_level: str = "INFO"
    log_json: bool | None = None
    metrics_enabled: bool = True
    # /metrics reveals per-route traffic and failure counts.  With a token, scrapes must send
    # "Authorization: Bearer <token>"; without one it is public outside prod and not served
    # in prod, unless metrics_public says otherwise.
    metrics_token: SecretStr | None = None
    metrics_public: bool | None = None
    # Seconds /health/ready reuses its last answer: probes and load balancers may call it
    # many times a second, and each fresh answer pings the database and Redis.
    health_cache_s: float = Field(default=1.0, ge=0.0, le=30.0)
    # FastAPI's native OpenTelemetry, through the globally configured providers.  Off, FastAPI
    # is told so up front instead of looking for providers on every request.
    otel_enabled: bool = False

    # Secrets (required in prod)
    secret_key: SecretStr | None = None

    # Identity and API security (docs/security.md).  In dev/test the JWT signing key and the
    # PII keys are generated once under var_dir/keys/; in prod they must be configured.
    jwt_private_key: SecretStr | None = None  # PEM, Ed25519 (EdDSA) or RSA >= 2048 (RS256)
    jwt_private_key_file: Path | None = None
    jwt_retired_public_keys_file: Path | None = None  # PEM bundle still accepted while rotating
    jwt_issuer: str | None = None  # default: public_base_url
    jwt_audience: str = "quantdesk-api"
    access_token_ttl_s: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_s: int = Field(default=30 * 86400, ge=3600, le=90 * 86400)
    refresh_token_idle_ttl_s: int = Field(default=7 * 86400, ge=300, le=90 * 86400)
    mfa_challenge_ttl_s: int = Field(default=300, ge=30, le=900)
    # "key_id:base64(32 bytes),...": the first key encrypts, all of them decrypt (rotation).
    pii_encryption_keys: SecretStr | None = None
    pii_index_key: SecretStr | None = None  # HMAC key of the e-mail blind index
    # Argon2id cost; None = OWASP (t=2, m=19 MiB, p=1), or a cheap setting in the test profile.
    argon2_time_cost: int | None = Field(default=None, ge=1, le=20)
    argon2_memory_kib: int | None = Field(default=None, ge=8, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(default=1, ge=1, le=16)
    registration_enabled: bool = True
    registration_role: str = Field(default="trader", pattern="^(viewer|trader)$")
    lockout_threshold: int = Field(default=5, ge=1, le=100)
    lockout_base_s: int = Field(default=900, ge=1)
    lockout_max_s: int = Field(default=86400, ge=1)
    # Rate limits in the `limits` notation ("10/second;200/minute").
    rate_limit_login_account: str = "5/minute"
    rate_limit_login_ip: str = "20/minute"
    rate_limit_auth_ip: str = "60/minute"  # refresh, MFA step per client address
    # Registration per client address: it is the one endpoint that tells whether an address
    # has an account (409), so it gets a budget far below what enumeration needs.
    rate_limit_register_ip: str = "10/hour"
    # Failed authentications (missing, invalid or expired credentials) per client address;
    # past it, requests are refused before any token is verified.
    rate_limit_unauthenticated_ip: str = "30/minute"
    rate_limit_api: str = "20/second"
    rate_limit_orders: str = "10/second;200/minute"
    max_json_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_upload_body_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # Columnar analytics batches (up to 100,000 options per request).
    max_batch_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    hsts: bool | None = None  # default: on in prod
    secure_cookies: bool | None = None  # default: on in prod

    # Market data
    demo_data: bool = True
    # The demo market: same seed + same day = the same data, byte for byte.
    # External market-data providers (docs/providers.md): a provider is enabled by its key.
    # The base URLs point a provider at a proxy, a sandbox or a test server.
    finnhub_api_key: SecretStr | None = None
    finnhub_base_url: str = "https://finnhub.io/api/v1"
    alphavantage_api_key: SecretStr | None = None
    alphavantage_base_url: str = "https://www.alphavantage.co"
    polygon_api_key: SecretStr | None = None
    polygon_base_url: str = "https://api.polygon.io"
    demo_seed: int = Field(default=20_240_601, ge=0)
    # Seconds between simulated quote updates while demo_data is on; 0 stops the simulator.
    demo_tick_interval_s: float = Field(default=1.0, ge=0.0, le=3600.0)
    # Kite Connect (docs/providers.md, "Kite Connect"): enabled by the API key; the daily
    # access token comes from `quantdesk kite login` and is stored encrypted.  The ticker
    # runs in one app process at a time (a Redis lease) and subscribes to open paper orders'
    # instruments, the stream's and this watch list (keys, comma-separated).
    kite_api_key: SecretStr | None = None
    kite_api_secret: SecretStr | None = None
    kite_base_url: str = "https://api.kite.trade"
    kite_login_url: str = "https://kite.zerodha.com/connect/login"
    kite_ticker_url: str = "wss://ws.kite.trade"
    kite_ticker: bool = True
    kite_ticker_mode: str = Field(default="full", pattern="^(ltp|quote|full)$")
    kite_ticker_instruments: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Import Kite's instruments dump into the master every morning (after 08:30 IST).
    kite_instruments_daily: bool = True

    # Paper trading (docs/trading.md).  Margin blocked, as a percentage of notional, by
    # futures, by short options (of strike x quantity) and by intraday (MIS) equity shorts.
    trading_margin_futures_pct: Decimal = Field(default=Decimal(12), gt=0, le=100)
    trading_margin_short_options_pct: Decimal = Field(default=Decimal(15), gt=0, le=100)
    trading_margin_intraday_pct: Decimal = Field(default=Decimal(20), gt=0, le=100)
    # Auto-slicing of F&O orders above the freeze quantity (docs/trading.md): units per
    # order by underlying, over NSE's index limits (engine.slicing.NSE_INDEX_FREEZE_LIMITS).
    trading_freeze_limits: dict[str, Decimal] = Field(default_factory=dict)
    # Limit and stop prices further than this from the last price are refused; market
    # orders reserve cash at the last price plus this band.
    trading_price_band_pct: Decimal = Field(default=Decimal(10), gt=0, le=100)
    # The largest notional one order may have, in the account's currency.
    trading_max_order_value: Decimal = Field(default=Decimal(50_000_000), gt=0)
    # A quote older than this is stale: market orders wait for a fresh one.
    trading_max_quote_age_s: float = Field(default=30.0, gt=0)
    # Charges per fill: the exchange's schedule (brokerage and statutory charges,
    # trading/engine/charges.py), a flat schedule of basis points with a minimum (also for
    # exchanges without a schedule), or none.
    trading_charges: Literal["exchange", "flat", "none"] = "exchange"
    trading_fee_bps: Decimal = Field(default=Decimal(0), ge=0, le=1000)
    trading_fee_minimum: Decimal = Field(default=Decimal(0), ge=0)
    # Intraday (MIS) positions on the Indian exchanges are squared off this many minutes
    # before the session close (15:15 IST on a normal NSE/BSE day); 0 turns it off.
    trading_square_off_before_close_min: int = Field(default=15, ge=0, le=120)
    # Delivery (CNC) buys settle into holdings T+1; whether they may be sold before that
    # (BTST, "buy today, sell tomorrow") or only once settled.
    trading_btst: bool = True
    # The matcher runs in the API process; off for processes that should only serve.
    trading_matcher: bool = True
    # Placements written in one transaction at most (trading/placement.py: group commit).
    trading_placement_batch: int = Field(default=64, ge=1, le=1000)
    # Writer tasks placing batches at once on PostgreSQL (SQLite: one).  One by default: on a
    # CPU-bound server its batches grow and each order costs fewer statements (docs/trading.md);
    # more overlap round trips, so one slow batch (an account lock held by a fill) holds up
    # fewer placements.
    trading_placement_writers: int = Field(default=1, ge=1, le=64)

    # Portfolios (docs/portfolios.md): a realised gain is long term when its lot was held
    # more than this many months (India's listed equity: 12; the US: one year).
    portfolio_long_term_months_in: int = Field(default=12, ge=1, le=120)
    portfolio_long_term_months_us: int = Field(default=12, ge=1, le=120)

    # Real-time stream (docs/stream.md): tickets, limits (Kite's by default), timings.
    stream_ticket_ttl_s: float = Field(default=30.0, gt=0, le=300)
    stream_auth_timeout_s: float = Field(default=5.0, gt=0, le=60)
    stream_max_connections_per_user: int = Field(default=3, ge=1, le=100_000)
    stream_max_instruments: int = Field(default=3000, ge=1, le=100_000)
    stream_max_frame_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # subscribe/unsubscribe/resume operations per connection ("limits" notation).
    stream_subscribe_rate: str = "10/second;200/minute"
    stream_heartbeat_s: float = Field(default=15.0, gt=0)
    # How often each process re-checks its connections' sessions and API keys.
    stream_revalidate_s: float = Field(default=2.0, gt=0)
    # The outbox tail: how often it looks for new events, and how often it compares each
    # subscribed account's last sequence number with what its clients have seen.
    stream_outbox_poll_s: float = Field(default=0.02, gt=0)
    # How long an outbox id the tail passed unseen (a transaction not committed yet) is
    # looked up again on each poll; later, the reconcile alone catches it.
    stream_outbox_gap_s: float = Field(default=2.0, gt=0)
    stream_reconcile_s: float = Field(default=1.0, gt=0)
    # Private frames queued for one client before it is closed with 4008 (it resumes).
    stream_max_pending: int = Field(default=2000, ge=10)
    stream_outbox_retention_days: float = Field(default=7.0, gt=0)

    # Signals and backtests (docs/signals.md).  Where batch jobs run: "" = a thread pool of
    # compute_workers in the app process, "processes" = that many spawned processes;
    # tcp://host:8786 = that Dask scheduler.  A job covers at most signals_max_instruments
    # instruments of at most signals_max_bars bars.
    compute_scheduler: str = ""
    compute_workers: int = Field(default=2, ge=1, le=64)
    signals_max_instruments: int = Field(default=100, ge=1, le=10_000)
    signals_max_bars: int = Field(default=100_000, ge=100, le=1_000_000)
    # Run queued jobs in this process (off for processes that should only serve).
    signals_jobs: bool = True

    # Transport security (docs/operations.md, "TLS to PostgreSQL and Redis").  PostgreSQL:
    # libpq's sslmode names; verify-ca and verify-full check the server's certificate against
    # db_ssl_root_cert (the system trust store when unset), verify-full its host name too.
    # None leaves the driver's default (asyncpg: "prefer", no verification).
    db_sslmode: DatabaseSslMode | None = None
    db_ssl_root_cert: Path | None = None  # PEM bundle of the CA(s) that signed the server
    db_ssl_cert: Path | None = None  # client certificate (PEM), when the server asks for one
    db_ssl_key: Path | None = None  # its private key (PEM, no passphrase)
    # Redis over TLS: a rediss:// URL; the server's certificate and host name are verified
    # against this CA bundle (the system trust store when unset).
    redis_ssl_ca_file: Path | None = None
    redis_ssl_cert: Path | None = None  # client certificate, for tls-auth-clients yes
    redis_ssl_key: Path | None = None

    # Error tracking (optional): unhandled errors go to Sentry when a DSN is set, with
    # request bodies, cookies, credentials and addresses scrubbed (platform/errortracking.py).
    sentry_dsn: SecretStr | None = None
    sentry_environment: str | None = None  # default: the profile
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)

    # Every secret setting may be read from a file instead (QUANTDESK_<NAME>_FILE), as Docker
    # and Kubernetes mount secrets; prod refuses a secret given both ways.
    _given_twice: tuple[str, ...] = PrivateAttr(default=())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = SecretFilesSource(settings_cls, init_settings, env_settings, dotenv_settings)
        return init_settings, env_settings, dotenv_settings, file_secret_settings, files

    @model_validator(mode="wrap")
    @classmethod
    def _remember_secrets_given_twice(
        cls, data: Any, handler: ModelWrapValidatorHandler[Any]
    ) -> Any:
        given_twice: tuple[str, ...] = ()
        if isinstance(data, dict) and GIVEN_TWICE_KEY in data:
            data = dict(data)
            given_twice = tuple(data.pop(GIVEN_TWICE_KEY))
        settings = handler(data)
        if given_twice and isinstance(settings, Settings):
            settings._given_twice = given_twice
        return settings

    _normalise_lists = field_validator(
        "cors_origins", "trusted_hosts", "trusted_proxies", mode="before"
    )(_split_csv)
    _normalise_kite_lists = field_validator("kite_ticker_instruments", mode="before")(_split_csv)

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"QUANTDESK_DATABASE_URL is not a valid database URL: {exc}") from None
        if url.drivername not in {"sqlite+aiosqlite", "postgresql+asyncpg"}:
            raise ValueError(
                "QUANTDESK_DATABASE_URL must use sqlite+aiosqlite:// or postgresql+asyncpg://, "
                f"not {url.drivername}://"
            )
        return value

    @model_validator(mode="after")
    def _argon2_floor_outside_tests(self) -> Settings:
        # OWASP Password Storage Cheat Sheet: argon2id with m >= 19 MiB, t >= 2, p = 1.  Only
        # the test profile may go below it (the suite hashes thousands of passwords).
        if self.profile is not Profile.TEST:
            time_cost, memory_kib, _ = self.argon2_parameters
            if time_cost < OWASP_ARGON2_TIME_COST or memory_kib < OWASP_ARGON2_MEMORY_KIB:
                raise ValueError(
                    "QUANTDESK_ARGON2_TIME_COST/QUANTDESK_ARGON2_MEMORY_KIB are below the OWASP "
                    f"minimum (t >= {OWASP_ARGON2_TIME_COST}, m >= {OWASP_ARGON2_MEMORY_KIB} KiB)"
                )
        return self

    @property
    def argon2_parameters(self) -> tuple[int, int, int]:
        """(time cost, memory in KiB, parallelism) for argon2id."""
        cheap = self.profile is Profile.TEST
        time_cost = self.argon2_time_cost or (1 if cheap else OWASP_ARGON2_TIME_COST)
        memory = self.argon2_memory_kib or (64 if cheap else OWASP_ARGON2_MEMORY_KIB)
        return time_cost, memory, self.argon2_parallelism

    @property
    def token_issuer(self) -> str:
        return self.jwt_issuer or self.public_base_url

    @property
    def hsts_enabled(self) -> bool:
        return self.hsts if self.hsts is not None else self.profile is Profile.PROD

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.profile is Profile.PROD

    @property
    def docs_open(self) -> bool:
        return (
            self.docs_enabled if self.docs_enabled is not None else self.profile is not Profile.PROD
        )

    @property
    def metrics_open(self) -> bool:
        """Whether /metrics answers without a token (when no token is configured)."""
        if self.metrics_public is not None:
            return self.metrics_public
        return self.profile is not Profile.PROD

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def json_logs(self) -> bool:
        return self.log_json if self.log_json is not None else self.profile is Profile.PROD

    def multiprocess_problem(self, workers: int) -> str | None:
        """Why ``workers`` processes cannot serve with these settings, or None.

        Without Redis, session revocation, API-key caches, rate limits and quotes live in
        each process: a revoked token would still work in the other worker.
        """
        if workers > 1 and not self.redis_url:
            return (
                f"QUANTDESK_WORKERS={workers} (or --workers) needs QUANTDESK_REDIS_URL: without "
                "Redis, revocation, rate limits and quotes are per process"
            )
        return None

    def check_production(self) -> None:
        """Raise ``ConfigurationError`` naming the variable for every unsafe setting.

        In every profile: malformed keys (so a start fails with one line, not a traceback
        from deep in the key loading) and several workers without Redis.  In prod also
        missing, placeholder or low-entropy secrets, wildcards and SQLite.
        """
        problems: list[str] = _key_format_problems(self)
        problems.extend(_transport_problems(self))
        multiprocess = self.multiprocess_problem(self.workers)
        if multiprocess is not None:
            problems.append(multiprocess)
        if self.profile is not Profile.PROD:
            if problems:
                raise ConfigurationError("; ".join(problems))
            return
        problems.extend(
            f"{variable} and {variable}_FILE are both set; give the secret one way only"
            for variable in self._given_twice
        )
        if self.jwt_private_key is not None and self.jwt_private_key_file is not None:
            problems.append(
                "QUANTDESK_JWT_PRIVATE_KEY and QUANTDESK_JWT_PRIVATE_KEY_FILE are both set; "
                "give the signing key one way only"
            )
        problems.extend(_secret_problems("QUANTDESK_SECRET_KEY", self.secret_key))
        problems.extend(_identity_secret_problems(self))
        if "*" in self.cors_origins:
            problems.append("QUANTDESK_CORS_ORIGINS must list origins explicitly, not '*'")
        if "*" in self.trusted_hosts:
            problems.append("QUANTDESK_TRUSTED_HOSTS must list host names, not '*'")
        if self.is_sqlite and not self.allow_sqlite_in_prod:
            problems.append(
                "QUANTDESK_DATABASE_URL points at SQLite; use PostgreSQL in prod or set "
                "QUANTDESK_ALLOW_SQLITE_IN_PROD=true to accept a single-node database"
            )
        if problems:
            raise ConfigurationError("; ".join(problems))


def _transport_problems(settings: Settings) -> list[str]:
    """TLS files that are configured but missing, and TLS settings that would be ignored."""
    problems: list[str] = []
    for variable, path in (
        ("QUANTDESK_DB_SSL_ROOT_CERT", settings.db_ssl_root_cert),
        ("QUANTDESK_DB_SSL_CERT", settings.db_ssl_cert),
        ("QUANTDESK_DB_SSL_KEY", settings.db_ssl_key),
        ("QUANTDESK_REDIS_SSL_CA_FILE", settings.redis_ssl_ca_file),
        ("QUANTDESK_REDIS_SSL_CERT", settings.redis_ssl_cert),
        ("QUANTDESK_REDIS_SSL_KEY", settings.redis_ssl_key),
    ):
        if path is not None and not path.is_file():
            problems.append(f"{variable} does not name a readable file")
    redis_tls_files = (settings.redis_ssl_ca_file, settings.redis_ssl_cert, settings.redis_ssl_key)
    if any(redis_tls_files) and not (settings.redis_url or "").startswith("rediss://"):
        problems.append(
            "QUANTDESK_REDIS_SSL_* are set but QUANTDESK_REDIS_URL is not a rediss:// URL"
        )
    db_tls_files = (settings.db_ssl_root_cert, settings.db_ssl_cert, settings.db_ssl_key)
    if any(db_tls_files) and settings.db_sslmode in {None, DatabaseSslMode.DISABLE}:
        problems.append(
            "QUANTDESK_DB_SSL_* files are set but QUANTDESK_DB_SSLMODE does not use TLS "
            "(set verify-full)"
        )
    if (settings.db_ssl_cert is None) != (settings.db_ssl_key is None):
        problems.append("QUANTDESK_DB_SSL_CERT and QUANTDESK_DB_SSL_KEY go together")
    if (settings.redis_ssl_cert is None) != (settings.redis_ssl_key is None):
        problems.append("QUANTDESK_REDIS_SSL_CERT and QUANTDESK_REDIS_SSL_KEY go together")
    return problems


def secret_setting_names() -> tuple[str, ...]:
    """The settings that ``QUANTDESK_<NAME>_FILE`` may give: every ``SecretStr`` field and
    the two URLs that carry passwords.  A secret with a ``<name>_file`` setting of its own
    (the JWT signing key) keeps that one, which already has the same variable name."""
    names = [
        name
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation) and f"{name}_file" not in Settings.model_fields
    ]
    return (*names, "database_url", "redis_url")


class SecretFilesSource(PydanticBaseSettingsSource):
    """``QUANTDESK_<NAME>_FILE=/run/secrets/name``: the secret setting ``<name>`` read from
    that file (Docker and Kubernetes mount secrets as files; the convention of the official
    PostgreSQL image's ``POSTGRES_PASSWORD_FILE``).  Trailing newlines are dropped.

    Looked up in the environment and the ``.env`` file like every other variable, after the
    value given directly, which wins outside prod; a secret given both ways is remembered so
    that ``check_production`` refuses it.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        *direct: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._direct = direct

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ reads every secret at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        variables: dict[str, str] = {}
        given: set[str] = set()
        for source in reversed(self._direct):  # lowest precedence first: later ones win
            if isinstance(source, InitSettingsSource):
                given.update(k for k, v in source.init_kwargs.items() if v is not None)
                continue
            found = getattr(source, "env_vars", None) or {}
            for key, value in found.items():
                if value is not None:
                    variables[key.upper()] = value
        values: dict[str, Any] = {}
        twice: list[str] = []
        for name in secret_setting_names():
            variable = f"QUANTDESK_{name.upper()}"
            path = variables.get(f"{variable}_FILE")
            if not path:
                continue
            try:
                values[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise ConfigurationError(f"{variable}_FILE: cannot read {path}: {reason}") from None
            if name in given or variables.get(variable):
                twice.append(variable)
        if twice:
            values[GIVEN_TWICE_KEY] = twice
        return values


def _secret_problems(name: str, value: SecretStr | None) -> list[str]:
    if value is None or not value.get_secret_value():
        return [f"{name} is required in prod"]
    raw = value.get_secret_value()
    lowered = raw.strip().lower()
    if lowered in KNOWN_PLACEHOLDERS or any(
        placeholder in lowered
        for placeholder in KNOWN_PLACEHOLDERS
        if len(placeholder) >= PLACEHOLDER_SUBSTRING_MIN
    ):
        return [f"{name} is a known placeholder value"]
    if len(raw) < MIN_SECRET_LENGTH:
        return [f"{name} must be at least {MIN_SECRET_LENGTH} characters"]
    if _entropy_bits(raw) < MIN_SECRET_ENTROPY_BITS or _is_repetition(raw):
        return [
            f"{name} is not random enough (repeated or patterned characters); generate one "
            "with `quantdesk admin generate-keys`"
        ]
    return []


def _entropy_bits(text: str) -> float:
    counts = Counter(text)
    total = len(text)
    return -total * sum(n / total * math.log2(n / total) for n in counts.values())


def _is_repetition(text: str) -> bool:
    """True for "abcabc..."-like values: the text is found inside itself shifted by one unit."""
    return len(text) > 1 and text in (text + text)[1:-1]


def _key_format_problems(settings: Settings) -> list[str]:
    """Keys that are configured but cannot be used, named by variable.

    The parsing here mirrors ``security.tokens`` and ``security.pii`` (which settings must
    not import): it exists so that a bad key is one line at start-up, not a traceback from
    inside the app factory.
    """
    problems: list[str] = []
    pem: bytes | None = None
    pem_variable = "QUANTDESK_JWT_PRIVATE_KEY"
    if settings.jwt_private_key is not None:
        pem = settings.jwt_private_key.get_secret_value().encode()
    elif settings.jwt_private_key_file is not None and settings.jwt_private_key_file.is_file():
        pem_variable = "QUANTDESK_JWT_PRIVATE_KEY_FILE"
        pem = settings.jwt_private_key_file.read_bytes()
    if pem is not None and not _usable_signing_key(pem):
        problems.append(
            f"{pem_variable} is not a PEM Ed25519 or RSA (>= 2048 bits) private key without "
            "a passphrase"
        )
    retired = settings.jwt_retired_public_keys_file
    if retired is not None and not _usable_public_key_bundle(retired):
        problems.append(
            "QUANTDESK_JWT_RETIRED_PUBLIC_KEYS_FILE does not name a readable bundle of PEM "
            "public keys"
        )
    if settings.pii_encryption_keys is not None:
        problems.extend(_pii_key_problems(settings.pii_encryption_keys.get_secret_value()))
    return problems


def _usable_signing_key(pem: bytes) -> bool:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    if isinstance(key, rsa.RSAPrivateKey):
        return key.key_size >= 2048
    return isinstance(key, ed25519.Ed25519PrivateKey)


def _usable_public_key_bundle(path: Path) -> bool:
    try:
        text = path.read_bytes()
    except OSError:
        return False
    end = b"-----END PUBLIC KEY-----"
    blocks = [block.strip() + b"\n" + end for block in text.split(end) if block.strip()]
    if not blocks:
        return False
    try:
        for block in blocks:
            serialization.load_pem_public_key(block)
    except (ValueError, UnsupportedAlgorithm):
        return False
    return True


def _pii_key_problems(value: str) -> list[str]:
    name = "QUANTDESK_PII_ENCRYPTION_KEYS"
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if not entries:
        return [f"{name} must name at least one key"]
    problems: list[str] = []
    for entry in entries:
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id:
            problems.append(f"{name} entries must be key_id:base64(32 bytes)")
            continue
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (ValueError, binascii.Error):
            key = b""
        if len(key) != PII_KEY_BYTES:
            problems.append(f"{name}: key {key_id!r} must be 32 bytes, base64")
        elif len(set(key)) < MIN_DISTINCT_KEY_BYTES:
            problems.append(
                f"{name}: key {key_id!r} is not random (all-zero or repeated bytes); generate "
                "one with `quantdesk admin generate-keys`"
            )
    return problems


def _identity_secret_problems(settings: Settings) -> list[str]:
    """The signing key and the PII keys must be configured in prod (dev generates them)."""
    problems: list[str] = []
    if settings.jwt_private_key is None and settings.jwt_private_key_file is None:
        problems.append(
            "QUANTDESK_JWT_PRIVATE_KEY or QUANTDESK_JWT_PRIVATE_KEY_FILE is required in prod"
        )
    elif settings.jwt_private_key_file is not None and not settings.jwt_private_key_file.is_file():
        problems.append("QUANTDESK_JWT_PRIVATE_KEY_FILE does not name a readable file")
    if settings.pii_encryption_keys is None or not settings.pii_encryption_keys.get_secret_value():
        problems.append("QUANTDESK_PII_ENCRYPTION_KEYS is required in prod")
    problems.extend(_secret_problems("QUANTDESK_PII_INDEX_KEY", settings.pii_index_key))
    return problems
