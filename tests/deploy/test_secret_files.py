"""Every secret setting can be read from a file (``QUANTDESK_<NAME>_FILE``), as Docker and
Kubernetes mount secrets; prod refuses a secret given both ways."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from quantdesk.settings import ConfigurationError, Settings, secret_setting_names
from tests.platform.test_settings import AES_KEY, JWT_PEM, STRONG, prod


def prod_without_index_key() -> Settings:
    return Settings(
        profile="prod",
        secret_key=STRONG,
        database_url="postgresql+asyncpg://qd@db.internal/quantdesk",
        redis_url="redis://cache.internal:6379/0",
        cors_origins="https://app.example.com",
        trusted_hosts="api.example.com",
        jwt_private_key=JWT_PEM,
        pii_encryption_keys="k1:" + base64.urlsafe_b64encode(AES_KEY).decode(),
        _env_file=None,
    )


def test_every_secret_setting_reads_from_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    names = secret_setting_names()
    # The secrets the product names, and the URLs that carry passwords, are among them.
    assert {"secret_key", "pii_encryption_keys", "pii_index_key", "metrics_token"} <= set(names)
    assert {"sentry_dsn", "database_url", "redis_url", "finnhub_api_key"} <= set(names)
    values = {name: f"{name}-value-{index}-{STRONG}" for index, name in enumerate(names)}
    values["database_url"] = "postgresql+asyncpg://qd:pa%40ss@db.internal:5432/quantdesk"
    values["redis_url"] = "rediss://:pw@cache.internal:6380/0"
    for name, value in values.items():
        path = tmp_path / name
        path.write_text(value + "\n")  # as `echo value > file` writes it
        monkeypatch.setenv(f"QUANTDESK_{name.upper()}_FILE", str(path))
    settings = Settings(_env_file=None)
    for name, value in values.items():
        read = getattr(settings, name)
        assert (read if isinstance(read, str) else read.get_secret_value()) == value, name


def test_a_secret_file_in_the_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(STRONG)
    env = tmp_path / ".env"
    env.write_text(f"QUANTDESK_SECRET_KEY_FILE={tmp_path / 'key'}\n")
    settings = Settings(_env_file=env)
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == STRONG


def test_prod_refuses_a_secret_given_both_ways(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "index").write_text(STRONG)
    monkeypatch.setenv("QUANTDESK_PII_INDEX_KEY_FILE", str(tmp_path / "index"))
    prod_without_index_key().check_production()  # from the file only: fine
    with pytest.raises(
        ConfigurationError,
        match="QUANTDESK_PII_INDEX_KEY and QUANTDESK_PII_INDEX_KEY_FILE are both set",
    ):
        prod().check_production()
    monkeypatch.setenv("QUANTDESK_PII_INDEX_KEY", STRONG)
    with pytest.raises(ConfigurationError, match="QUANTDESK_PII_INDEX_KEY_FILE are both set"):
        prod_without_index_key().check_production()
    # Outside prod the value given directly wins.
    dev = Settings(_env_file=None, pii_index_key="direct")
    assert dev.pii_index_key is not None
    assert dev.pii_index_key.get_secret_value() == "direct"
    # The signing key has had its own _FILE setting all along: the same rule.
    (tmp_path / "jwt.pem").write_text(JWT_PEM)
    with pytest.raises(ConfigurationError, match="QUANTDESK_JWT_PRIVATE_KEY_FILE are both set"):
        prod(jwt_private_key_file=tmp_path / "jwt.pem").check_production()


def test_an_unreadable_secret_file_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTDESK_SECRET_KEY_FILE", "/nonexistent/secret")
    with pytest.raises(ConfigurationError, match="QUANTDESK_SECRET_KEY_FILE: cannot read"):
        Settings(_env_file=None)
