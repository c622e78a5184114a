"""The OpenAPI document is complete enough to generate a client from, without warnings, and
every operation documents its errors as the shared ``Problem``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from quantdesk.app import create_app
from tests.conftest import base_settings

GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("openapi")
    app = create_app(base_settings(f"sqlite+aiosqlite:///{root / 'db.sqlite'}", root / "var"))
    return app.openapi()


def test_every_operation_documents_problem_as_its_default(document: dict[str, Any]) -> None:
    assert set(document["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
    }
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) > 40
    for path, method, operation in operations:
        default = operation["responses"].get("default")
        assert default is not None, f"{method.upper()} {path} documents no error response"
        schema = default["content"]["application/problem+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Problem"}


def test_schema_names_are_unique_and_plain(document: dict[str, Any]) -> None:
    # FastAPI falls back to module-qualified names when two models share a name.
    names = list(document["components"]["schemas"])
    assert not [n for n in names if "__" in n]


def test_a_client_generates_without_warnings(document: dict[str, Any], tmp_path: Path) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))
    config = tmp_path / "config.yaml"
    # The payoff diagram is an SVG picture: bytes to a client.
    config.write_text("content_type_overrides:\n  image/svg+xml: application/octet-stream\n")
    out = tmp_path / "client"
    env = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(GENERATOR), "generate", "--path", str(spec), "--config", str(config)]
    command += ["--meta", "none", "--output-path", str(out)]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    assert (out / "models" / "problem.py").exists()
    # The generated package imports: every model and endpoint module is valid Python.
    check = subprocess.run(
        [sys.executable, "-c", "import client, client.api, client.models"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    shutil.rmtree(out)
