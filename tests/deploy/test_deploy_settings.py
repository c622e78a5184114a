"""The settings the deploy kit passes are real settings, and the secrets that
deploy/make-secrets.sh makes pass the prod checks when read through QUANTDESK_<NAME>_FILE."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from quantdesk.settings import Settings, secret_setting_names
from tests.deploy.tools import DEPLOY, run

KNOWN = {f"QUANTDESK_{name.upper()}" for name in Settings.model_fields} | {
    f"QUANTDESK_{name.upper()}_FILE" for name in secret_setting_names()
}


def compose_environment() -> dict[str, str]:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    return {str(k): str(v) for k, v in services["quantdesk"]["environment"].items()}


def k8s_settings() -> dict[str, str]:
    lines = (DEPLOY / "k8s" / "base" / "settings.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.parametrize("where", ["compose", "kubernetes"])
def test_every_variable_is_a_setting(where: str) -> None:
    variables = compose_environment() if where == "compose" else k8s_settings()
    unknown = {v for v in variables if v.startswith("QUANTDESK_")} - KNOWN
    assert unknown == set()


def test_made_secrets_pass_the_prod_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(DEPLOY / "make-secrets.sh", tmp_path)
    made = run("bash", str(tmp_path / "make-secrets.sh"))
    assert made.returncode == 0, made.stderr
    secrets = tmp_path / "secrets"
    assert oct(secrets.stat().st_mode & 0o777) == "0o700"
    for name, value in compose_environment().items():
        if value.startswith("${"):  # ${VAR:-default}: the default
            value = value.split(":-", 1)[1].rstrip("}")
        monkeypatch.setenv(name, value.replace("/run/secrets", str(secrets)))
    settings = Settings(_env_file=None)
    settings.check_production()
    assert settings.database_url.startswith("postgresql+asyncpg://quantdesk:")
    assert settings.redis_url is not None
    assert settings.redis_url.startswith("redis://quantdesk:")
    # A second run keeps every secret as it was.
    before = {path.name: path.read_text() for path in secrets.iterdir()}
    assert run("bash", str(tmp_path / "make-secrets.sh")).stdout == ""
    assert {path.name: path.read_text() for path in secrets.iterdir()} == before
