"""deploy/compose.yaml: two replicas, health-gated start-up, secrets from files, no
capability kept, read-only root filesystems.  `docker compose config` where Docker has
the compose plugin, and always the compose-spec schema (shipped with check-jsonschema)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.tools import DEPLOY, run, schema_errors, vendored_schema

COMPOSE = DEPLOY / "compose.yaml"
TIMESCALE = DEPLOY / "compose.timescaledb.yaml"


def load(path: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def docker_compose_available() -> bool:
    try:
        return run("docker", "compose", "version").returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.parametrize("path", [COMPOSE, TIMESCALE], ids=lambda p: p.name)
def test_compose_files_match_the_compose_spec(path: Any) -> None:
    """`docker compose config` where Docker has the compose plugin; the compose-spec JSON
    schema (the one Compose itself validates against) always."""
    assert schema_errors(load(path), vendored_schema("compose-spec")) == []
    if docker_compose_available():
        files = ["-f", str(COMPOSE)] + (["-f", str(path)] if path != COMPOSE else [])
        result = run("docker", "compose", *files, "config", "-q")
        assert result.returncode == 0, result.stderr


def test_the_stack_is_hardened_and_health_gated() -> None:
    services = load(COMPOSE)["services"]
    assert set(services) == {"migrate", "quantdesk", "postgres", "redis", "prometheus", "grafana"}
    assert services["quantdesk"]["deploy"]["replicas"] == 2
    limits = services["quantdesk"]["deploy"]["resources"]["limits"]
    assert (limits["cpus"], limits["memory"]) == ("2", "4g")
    for name, service in services.items():
        assert service["cap_drop"] == ["ALL"], name
        assert service["read_only"] is True, name
        assert "no-new-privileges:true" in service["security_opt"], name
        if name not in {"migrate"}:
            assert "healthcheck" in service or name == "quantdesk", name
    # PostgreSQL's entry point alone gets a few capabilities back, to own its data directory.
    assert set(services["postgres"]["cap_add"]) <= {
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "SETGID",
        "SETUID",
    }
    # Start-up order: databases healthy -> migrations done -> replicas.
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    gates = services["quantdesk"]["depends_on"]
    assert gates["migrate"]["condition"] == "service_completed_successfully"
    assert gates["postgres"]["condition"] == gates["redis"]["condition"] == "service_healthy"
    assert "/health/ready" in " ".join(services["quantdesk"]["healthcheck"]["test"])


def test_secrets_come_from_files_only() -> None:
    document = load(COMPOSE)
    assert all("file" in secret for secret in document["secrets"].values())
    for name, service in document["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            secretive = any(word in variable for word in ("KEY", "PASSWORD", "TOKEN", "URL", "DSN"))
            if secretive and variable != "QUANTDESK_PUBLIC_BASE_URL":
                assert variable.endswith("_FILE"), f"{name}: {variable} must be a secret file"
                assert str(value).startswith("/run/secrets/"), f"{name}: {variable}"


def test_prometheus_scrapes_with_a_trusted_host_and_the_token() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "quantdesk"]
    assert job["authorization"]["credentials_file"] == "/run/secrets/metrics-token"
    environment = load(COMPOSE)["services"]["quantdesk"]["environment"]
    trusted = environment["QUANTDESK_TRUSTED_HOSTS"].split(":-", 1)[1].rstrip("}").split(",")
    for target in job["static_configs"][0]["targets"]:
        assert target.rsplit(":", 1)[0] in trusted, target
    assert "metrics-token" in load(COMPOSE)["services"]["prometheus"]["secrets"]
