"""`quantdesk ... --help` stays fast (issue 19: it took 4-6.5 s): importing the command
tree must not import the numeric stack, the web framework or the database layers; the
commands import them when they run.  The times are in docs/benchmarks.md
(`benchmarks/bench_cli.py`), not asserted here."""

from __future__ import annotations

import json
import subprocess
import sys

import quantdesk.cli  # noqa: F401  (first: the command groups import quantdesk.cli.common)
from quantdesk.marketdata.providers.demo import cli as demo_cli
from quantdesk.marketdata.providers.demo import universe

HEAVY = ("numba", "pandas", "numpy", "scipy", "sqlalchemy", "alembic", "fastapi", "rich")


def test_importing_the_cli_leaves_the_heavy_modules_out() -> None:
    code = (
        "import json, sys, quantdesk.cli; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(found) == []


def test_demo_load_defaults_are_the_universe_sizes() -> None:
    assert demo_cli.DAILY_YEARS == universe.DAILY_YEARS
    assert demo_cli.MINUTE_SESSIONS == universe.MINUTE_SESSIONS
