"""``make audit`` audits, or fails: it never passes having checked nothing (issue 20, item 9)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_dependency_audit_fails_rather_than_audit_nothing() -> None:
    # -o: never reinstall the virtualenv from a test, whatever the stamp's age.
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed-dev", "audit-deps"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode == 0:
        # An advisory service answered for every dependency.
        assert "could not be audited" not in output
        assert "Skip Reason" not in output
    else:
        assert "make audit:" in output
        assert "could not be audited" in output or "vulnerabilit" in output.lower()
