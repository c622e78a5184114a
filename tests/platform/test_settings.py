"""Prod start-up refuses unsafe settings, naming the variable; the CLI never dumps tracebacks."""

from __future__ import annotations

import base64

import pytest
from typer.testing import CliRunner

from quantdesk.cli import app as cli
from quantdesk.settings import ConfigurationError, Settings

STRONG = "k" * 16 + "Zq9-x81!LmPq0aVb" + "r" * 8


def prod(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "profile": "prod",
        "secret_key": STRONG,
        "database_url": "postgresql+asyncpg://qd@db.internal/quantdesk",
        "cors_origins": "https://app.example.com",
        "trusted_hosts": "api.example.com",
        "jwt_private_key": "-----BEGIN PRIVATE KEY-----\nplaceholder\n-----END PRIVATE KEY-----",
        "pii_encryption_keys": "k1:" + base64.urlsafe_b64encode(b"k" * 32).decode(),
        "pii_index_key": STRONG,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_safe_production_settings_pass() -> None:
    settings = prod()
    settings.check_production()
    assert settings.cors_origins == ["https://app.example.com"]
    assert settings.json_logs is True


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"secret_key": None}, "QUANTDESK_SECRET_KEY is required"),
        ({"secret_key": "changeme"}, "QUANTDESK_SECRET_KEY is a known placeholder"),
        ({"secret_key": "short-but-not-placeholder"}, "QUANTDESK_SECRET_KEY must be at least"),
        ({"cors_origins": "*"}, "QUANTDESK_CORS_ORIGINS"),
        ({"trusted_hosts": "*"}, "QUANTDESK_TRUSTED_HOSTS"),
        (
            {"database_url": "sqlite+aiosqlite:///var/q.db"},
            "QUANTDESK_DATABASE_URL points at SQLite",
        ),
    ],
)
def test_unsafe_production_settings_are_refused(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        prod(**overrides).check_production()


def test_sqlite_in_prod_with_explicit_opt_in() -> None:
    prod(database_url="sqlite+aiosqlite:///var/q.db", allow_sqlite_in_prod=True).check_production()


def test_dev_is_permissive_and_defaults_to_sqlite() -> None:
    settings = Settings(_env_file=None)
    settings.check_production()
    assert settings.is_sqlite
    assert settings.redis_url is None


def test_malformed_database_url_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTDESK_DATABASE_URL", "mysql://whatever")
    result = CliRunner().invoke(cli, ["migrate", "current"])
    assert result.exit_code == 2
    assert "invalid configuration: database_url" in result.output
    assert "sqlite+aiosqlite" in result.output
    assert "Traceback" not in result.output


def test_unreachable_database_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTDESK_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1:1/none")
    result = CliRunner().invoke(cli, ["migrate", "current"])
    assert result.exit_code == 3
    assert result.output.startswith("quantdesk: cannot reach the database:")
    assert len(result.output.strip().splitlines()) == 1


def test_prod_refusal_exits_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTDESK_PROFILE", "prod")
    monkeypatch.delenv("QUANTDESK_SECRET_KEY", raising=False)
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2
    assert "QUANTDESK_SECRET_KEY is required in prod" in result.output


def test_version_and_help() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["version"]).output.strip() == "0.1.0"
    help_text = runner.invoke(cli, ["--help"]).output
    for command in ("serve", "migrate", "version"):
        assert command in help_text


def test_env_example_documents_every_setting() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in text.splitlines()
        if line.lstrip("# ").startswith("QUANTDESK_")
    }
    expected = {f"QUANTDESK_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set(), "add these to .env.example"
    assert documented - expected == set(), "these are not settings any more"
