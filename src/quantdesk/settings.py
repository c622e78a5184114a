"""One settings object, built once and injected (``create_app(settings)``).

Every variable is read from the environment with the ``QUANTDESK_`` prefix (or a ``.env`` file);
``.env.example`` documents each one.  ``Settings.check_production()`` is what makes a ``prod``
start refuse to run with a missing or weak secret, a wildcard CORS origin or an unintended
SQLite database: each problem names the variable so the operator knows what to fix.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
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


class Profile(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class ConfigurationError(Exception):
    """Settings that must not be used to start the service; the message names the variable."""


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
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    db_echo: bool = False

    # Redis is optional: without it, cache, bus and rate limits run in-process.
    redis_url: str | None = None

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_hosts: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    public_base_url: str = "http://127.0.0.1:8000"

    # Logging and observability
    log_level: str = "INFO"
    log_json: bool | None = None
    metrics_enabled: bool = True
    otel_endpoint: str | None = None

    # Secrets (required in prod)
    secret_key: SecretStr | None = None

    # Market data
    demo_data: bool = True

    _normalise_lists = field_validator("cors_origins", "trusted_hosts", mode="before")(_split_csv)

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

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def json_logs(self) -> bool:
        return self.log_json if self.log_json is not None else self.profile is Profile.PROD

    def check_production(self) -> None:
        """Raise ``ConfigurationError`` naming the variable for every unsafe prod setting."""
        if self.profile is not Profile.PROD:
            return
        problems: list[str] = []
        problems.extend(_secret_problems("QUANTDESK_SECRET_KEY", self.secret_key))
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


def _secret_problems(name: str, value: SecretStr | None) -> list[str]:
    if value is None or not value.get_secret_value():
        return [f"{name} is required in prod"]
    raw = value.get_secret_value()
    if raw.strip().lower() in KNOWN_PLACEHOLDERS:
        return [f"{name} is a known placeholder value"]
    if len(raw) < MIN_SECRET_LENGTH:
        return [f"{name} must be at least {MIN_SECRET_LENGTH} characters"]
    return []
