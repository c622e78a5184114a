"""The GitHub Actions workflow is valid (the github-workflows schema shipped with
check-jsonschema) and runs the same `make test` as everyone else."""

from __future__ import annotations

from typing import Any

import yaml

from tests.deploy.tools import ROOT, schema_errors, vendored_schema

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def test_the_workflow_is_valid_and_runs_make_test() -> None:
    document: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    document["on"] = document.pop(True)
    assert schema_errors(document, vendored_schema("github-workflows")) == []
    steps = document["jobs"]["test"]["steps"]
    commands = [step.get("run", "") for step in steps]
    assert "scripts/ensure-services.sh" in commands
    assert commands[-1] == "make test"
