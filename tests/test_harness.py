"""The test harness itself: what `make test` relies on when the suite runs in parallel."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import settings as hypothesis_settings

from quantdesk.settings import Settings


def test_hypothesis_replays_fixed_examples_when_asked() -> None:
    # make test sets QD_HYPOTHESIS_DERANDOMIZE=1; every xdist worker imports tests/conftest.py
    # with the variable inherited, so each loads the derandomised profile on its own.
    asked = bool(os.environ.get("CI") or os.environ.get("QD_HYPOTHESIS_DERANDOMIZE"))
    assert hypothesis_settings().derandomize is asked  # a fresh one inherits the profile


def test_each_test_has_its_own_database_under_its_worker(settings: Settings) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if settings.database_url.startswith("sqlite"):
        path = Path(settings.database_url.removeprefix("sqlite+aiosqlite:///"))
        # pytest gives each xdist worker its own base temporary directory (popen-gw0, ...),
        # so two workers never copy the template to, or write, the same file.
        assert path.exists()
        if worker is not None:
            assert any(part.endswith(worker) for part in path.parts), path
    else:
        # PostgreSQL: a database of its own on the worker's own cluster (tests/conftest.py).
        assert settings.database_url.rsplit("/", 1)[-1].startswith("t_")
