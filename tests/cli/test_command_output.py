"""What a command prints: its answer on stdout, log events on stderr at QUANTDESK_LOG_LEVEL,
and one clear line for a database that was never migrated."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from quantdesk.cli import app as cli
from tests.conftest import TEST_SECRET

PASSWORD = "a long enough passphrase\n"


def _env(tmp_path: Path, database: str, level: str) -> dict[str, str]:
    return {
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / database}",
        "QUANTDESK_REDIS_URL": "",
        "QUANTDESK_VAR_DIR": str(tmp_path),
        "QUANTDESK_SECRET_KEY": TEST_SECRET,
        "QUANTDESK_LOG_LEVEL": level,
        "QUANTDESK_LOG_JSON": "false",
    }


def test_create_user_prints_its_answer_and_logs_only_at_the_level_asked(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    quiet = _env(tmp_path, "cli.db", "WARNING")
    migrated = runner.invoke(cli, ["migrate", "upgrade"], env=quiet)
    assert migrated.exit_code == 0, migrated.output
    args = ["admin", "create-user", "--password-stdin", "--email"]
    made = runner.invoke(cli, [*args, "quiet@example.com"], input=PASSWORD, env=quiet)
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("created trader ")
    assert len(made.stdout.splitlines()) == 1
    assert made.stderr == ""
    # At INFO the security event is logged, to stderr; stdout is still only the answer.
    loud = _env(tmp_path, "cli.db", "INFO")
    made = runner.invoke(cli, [*args, "loud@example.com"], input=PASSWORD, env=loud)
    assert made.exit_code == 0, made.output
    assert len(made.stdout.splitlines()) == 1
    assert "security_event" in made.stderr
    assert "user_created" in made.stderr
    assert "loud@example.com" not in made.stderr  # e-mail addresses are never logged


def test_a_database_never_migrated_is_named_as_such(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["admin", "create-user", "--password-stdin", "--email", "a@example.com"],
        input=PASSWORD,
        env=_env(tmp_path, "empty.db", "WARNING"),
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "quantdesk: the database is not migrated to this release: run `quantdesk migrate upgrade`\n"
    )
