"""The image: multi-stage, non-root, HEALTHCHECK on /health/live, `quantdesk` as the entry
point with `serve` by default; and hadolint finds nothing."""

from __future__ import annotations

import re

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
    assert "apt-get" not in runtime
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert "/health/live" in runtime.split("HEALTHCHECK", 1)[1]
    assert 'ENTRYPOINT ["quantdesk"]' in runtime
    assert 'CMD ["serve", "--no-migrate"]' in runtime
    assert "quantdesk warm-up" in text  # the kernels are compiled into the image
