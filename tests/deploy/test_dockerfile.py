"""The image: multi-stage, non-root, HEALTHCHECK on /health/live, `quantdesk` as the entry
point with `serve` by default, pg_dump for `quantdesk backup`; and hadolint finds nothing."""

from __future__ import annotations

import re

import yaml

from tests.deploy.tools import DEPLOY, run, tool

DOCKERFILE = DEPLOY / "Dockerfile"


def test_hadolint_finds_nothing() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_non_root_with_a_health_check() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", text, re.MULTILINE)
    assert stages == ["assets", "build", "runtime"]
    # The dashboard's charting library comes from the npm lockfile, into the package.
    assert "npm ci" in text.split("AS assets", 1)[1].split("AS build", 1)[0]
    assert "lightweight-charts.mjs" in text.split("AS build", 1)[1].split("AS runtime", 1)[0]
    runtime = text.split("AS runtime", 1)[1]
    # Only what the build stage made is copied over: no compilers, no source tree.
    assert "COPY --from=build /opt/quantdesk/venv" in runtime
    assert "pip install" not in runtime
    # One package installed, PostgreSQL's client tools (for `quantdesk backup`), of the
    # major version the compose stack's PostgreSQL runs; the apt lists removed with them.
    installed = re.findall(r"apt-get install -y --no-install-recommends (.+?) \\$", runtime, re.M)
    assert installed == ['"postgresql-client-${PG_MAJOR}"']
    assert "rm -rf /var/lib/apt/lists/*" in runtime
    (pg_major,) = re.findall(r"^ARG PG_MAJOR=(\d+)$", runtime, re.MULTILINE)
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    image = compose["services"]["postgres"]["image"]  # ${POSTGRES_IMAGE:-postgres:16-...}
    assert re.search(rf"postgres:{pg_major}\b", image), image
    # The backup and textfile directories exist, the user's, for volumes mounted on them.
    assert "mkdir -p /var/lib/quantdesk/backups /var/lib/quantdesk/metrics" in runtime
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert "/health/live" in runtime.split("HEALTHCHECK", 1)[1]
    assert 'ENTRYPOINT ["quantdesk"]' in runtime
    assert 'CMD ["serve", "--no-migrate"]' in runtime
    assert "quantdesk warm-up" in text  # the kernels are compiled into the image
