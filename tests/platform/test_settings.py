"""Prod start-up refuses unsafe settings, naming the variable; the CLI never dumps tracebacks."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quantdesk.cli import app as cli
from quantdesk.settings import ConfigurationError, Settings
from tests.support.servers import free_port

# Fixed random values (secrets.token_urlsafe, os.urandom, a fresh Ed25519 key): test-only.
STRONG = "Vq3xN8pL2mRt7YwK9zBc4HdJ6fGs1AeU0oIiPy5ThWn"
INDEX_KEY = "m2K9qLx7Vb4Nz8Tc1Rw6Yp3Hd5Gf0Js-Ua_EiOkPlQ"
AES_KEY = bytes.fromhex("8f3a1c5e9b7d2f4a6c8e0b1d3f5a7c9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a")
JWT_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIFSiINo0GFXox2Gvo3UL9ZEfPnaqjNqOffnO/jdjDPtr\n"
    "-----END PRIVATE KEY-----\n"
)


def prod(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "profile": "prod",
        "secret_key": STRONG,
        "database_url": "postgresql+asyncpg://qd@db.internal/quantdesk",
        "redis_url": "redis://cache.internal:6379/0",
        "cors_origins": "https://app.example.com",
        "trusted_hosts": "api.example.com",
        "jwt_private_key": JWT_PEM,
        "pii_encryption_keys": "k1:" + base64.urlsafe_b64encode(AES_KEY).decode(),
        "pii_index_key": INDEX_KEY,
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


ZERO_KEY = base64.urlsafe_b64encode(bytes(32)).decode()


@pytest.fixture(autouse=True)
def _serve_cannot_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a start-up check regress, ``serve`` fails to bind at once instead of serving."""
    monkeypatch.setenv("QUANTDESK_HOST", "192.0.2.1")  # TEST-NET-1: never a local address


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"secret_key": "a" * 32}, "QUANTDESK_SECRET_KEY is not random enough"),
        ({"secret_key": "ab" * 24}, "QUANTDESK_SECRET_KEY is not random enough"),
        (
            {"secret_key": "please-change-me-to-a-long-random-value!"},
            "QUANTDESK_SECRET_KEY is a known placeholder",
        ),
        (
            {"secret_key": "please-change-me-to-a-long-random-valuex"},
            "QUANTDESK_SECRET_KEY is a known placeholder",
        ),
        ({"pii_index_key": "0" * 44}, "QUANTDESK_PII_INDEX_KEY is not random enough"),
        ({"pii_index_key": ZERO_KEY}, "QUANTDESK_PII_INDEX_KEY is not random enough"),
        ({"pii_encryption_keys": "k1:" + ZERO_KEY}, "QUANTDESK_PII_ENCRYPTION_KEYS: key 'k1'"),
    ],
)
def test_low_entropy_and_placeholder_secrets_are_refused(
    overrides: dict[str, object], named: str
) -> None:
    """Issue 20 item 8: 32 x 'a', a placeholder plus a character, all-zero keys."""
    with pytest.raises(ConfigurationError, match=named):
        prod(**overrides).check_production()


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("QUANTDESK_JWT_PRIVATE_KEY", "not a pem", "QUANTDESK_JWT_PRIVATE_KEY"),
        (
            "QUANTDESK_JWT_PRIVATE_KEY",
            "-----BEGIN PRIVATE KEY-----\nplaceholder\n-----END PRIVATE KEY-----",
            "QUANTDESK_JWT_PRIVATE_KEY",
        ),
        ("QUANTDESK_PII_ENCRYPTION_KEYS", "k1:not-base64-!!", "QUANTDESK_PII_ENCRYPTION_KEYS"),
        ("QUANTDESK_PII_ENCRYPTION_KEYS", "k1:" + ZERO_KEY[:20], "QUANTDESK_PII_ENCRYPTION_KEYS"),
        ("QUANTDESK_PII_ENCRYPTION_KEYS", "no-colon", "QUANTDESK_PII_ENCRYPTION_KEYS"),
        (
            "QUANTDESK_JWT_RETIRED_PUBLIC_KEYS_FILE",
            "retired.pem",
            "QUANTDESK_JWT_RETIRED_PUBLIC_KEYS_FILE",
        ),
    ],
)
def test_malformed_keys_are_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, named: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "retired.pem").write_text(
        "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----\n"
    )
    for name, default in {
        "QUANTDESK_PROFILE": "prod",
        "QUANTDESK_SECRET_KEY": STRONG,
        "QUANTDESK_DATABASE_URL": "postgresql+asyncpg://qd@127.0.0.1:1/quantdesk",
        "QUANTDESK_REDIS_URL": "redis://127.0.0.1:1/0",
        "QUANTDESK_CORS_ORIGINS": "https://app.example.com",
        "QUANTDESK_TRUSTED_HOSTS": "api.example.com",
        "QUANTDESK_JWT_PRIVATE_KEY": JWT_PEM,
        "QUANTDESK_PII_ENCRYPTION_KEYS": "k1:" + base64.urlsafe_b64encode(AES_KEY).decode(),
        "QUANTDESK_PII_INDEX_KEY": INDEX_KEY,
    }.items():
        monkeypatch.setenv(name, default)
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("quantdesk: refusing to start:")
    assert named in lines[0]


def test_several_workers_without_redis_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Revocation caches, rate limits and quotes are per process without Redis."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUANTDESK_REDIS_URL", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--workers", "2", "--no-migrate"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "QUANTDESK_REDIS_URL" in lines[0]
    assert "workers" in lines[0]
    with pytest.raises(ConfigurationError, match="QUANTDESK_WORKERS"):
        Settings(workers=2, _env_file=None).check_production()


def test_unreachable_redis_at_start_up_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUANTDESK_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'q.db'}")
    monkeypatch.setenv("QUANTDESK_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    result = CliRunner().invoke(cli, ["serve", "--no-migrate"])
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("quantdesk: cannot reach Redis")


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
