"""deploy/compose.yaml: two replicas, health-gated start-up, secrets from files, no
capability kept, read-only root filesystems, a scheduled backup whose age Prometheus sees.
`docker compose config` where Docker has the compose plugin, and always the compose-spec
schema (shipped with check-jsonschema)."""

from __future__ import annotations

import re
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
    assert set(services) == {
        "migrate",
        "quantdesk",
        "backup",
        "node-exporter",
        "postgres",
        "redis",
        "prometheus",
        "grafana",
    }
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


def test_a_scheduled_backup_reports_its_age_to_prometheus() -> None:
    """The backup service loops `quantdesk backup --metrics-file` on the interval, into a
    volume node-exporter's textfile collector reads, and Prometheus scrapes node-exporter:
    the chain that feeds quantdesk_backup_last_success_timestamp_seconds to the alert."""
    services = load(COMPOSE)["services"]
    backup, exporter = services["backup"], services["node-exporter"]
    script = backup["command"][0]
    assert backup["entrypoint"] == ["/bin/sh", "-c"]
    (metrics_file,) = re.findall(r"quantdesk backup --metrics-file ([^\s;]+)", script)
    assert metrics_file.endswith(".prom")  # the only files the textfile collector reads
    # Shell variables are escaped from Compose's interpolation ($$), the interval is one.
    assert 'sleep "$$wait_s"' in script
    assert 'wait_s="$$QUANTDESK_BACKUP_INTERVAL_SECONDS"' in script
    assert "$QUANTDESK" not in script.replace("$$QUANTDESK", "")
    interval = backup["environment"]["QUANTDESK_BACKUP_INTERVAL_SECONDS"]
    assert interval == "${QUANTDESK_BACKUP_INTERVAL_SECONDS:-86400}"  # daily unless told
    # The replicas' settings and secrets (a prod configuration is checked whole), as them.
    replica = services["quantdesk"]
    assert {k: v for k, v in backup["environment"].items() if "BACKUP" not in k} == replica[
        "environment"
    ]
    assert backup["secrets"] == replica["secrets"]
    assert backup["user"] == "10001:10001"
    assert backup["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "quantdesk_backup.prom" in " ".join(backup["healthcheck"]["test"])
    # The same volume: written in the backup service, read-only in node-exporter.
    mounts = dict(volume.split(":", 1) for volume in backup["volumes"])
    (textfile_volume,) = [v for v, path in mounts.items() if metrics_file.startswith(path + "/")]
    assert f"{textfile_volume}:/textfile:ro" in exporter["volumes"]
    assert "--collector.textfile.directory=/textfile" in exporter["command"]
    assert mounts.get("backups") == "/var/lib/quantdesk/backups"
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "backup"]
    assert job["static_configs"][0]["targets"] == ["node-exporter:9100"]
    assert "--web.listen-address=:9100" in exporter["command"]
    assert services["prometheus"]["depends_on"]["node-exporter"]["condition"] == "service_healthy"
