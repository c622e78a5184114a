"""The demo-loaded SQLite database of a test run, loaded once and copied by every test that
serves the demo market from a real ``quantdesk serve`` (the dashboard's browser tests, the
schema fuzzer).

The first xdist worker to need it runs ``quantdesk demo load`` into a template file (about
12 s); every other user copies that file (a fraction of a second).  Tests of the loader itself
load their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET


def copy_demo_database(tmp_path_factory: pytest.TempPathFactory, target: Path) -> Path:
    """``target``, a copy of the run's demo-loaded database (migrated, every demo series)."""
    shutil.copyfile(_template(tmp_path_factory), target)
    return target


def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every xdist worker of a run has its basetemp under the same directory; a single process
    has its own.  The flock makes the others wait for the one loading.  The load goes to
    another name and is renamed into place when complete, in rollback-journal mode (no -wal
    file beside it), so a file under the template's name is always a whole database that a
    plain file copy reproduces."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    template = shared / "demo-template.db"
    with (shared / "demo-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if template.exists():
            return template
        build = Path(tempfile.mkdtemp(prefix="demo-", dir=shared))
        loaded = build / "demo.db"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")},
            "QUANTDESK_PROFILE": "test",
            "QUANTDESK_SECRET_KEY": TEST_SECRET,
            "QUANTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{loaded}",
            "QUANTDESK_VAR_DIR": str(build),
            "QUANTDESK_LOG_LEVEL": "WARNING",
        }
        quantdesk = str(Path(sys.executable).with_name("quantdesk"))
        subprocess.run(
            [quantdesk, "demo", "load"], env=env, cwd=build, check=True, capture_output=True
        )
        with contextlib.closing(sqlite3.connect(loaded)) as db:
            db.execute("PRAGMA journal_mode=DELETE")  # checkpoints and removes the -wal
        os.replace(loaded, template)
        shutil.rmtree(build, ignore_errors=True)
    return template
