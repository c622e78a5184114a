"""`quantdesk ... --help`: wall time of every command's help, in a fresh process each.

Issue 19 measured 4-6.5 s per `--help` on a loaded machine (0.9 s on an idle one) while the
command tree imported NumPy, SQLAlchemy, Alembic and FastAPI up front; the commands now
import them when they run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

QUANTDESK = str(Path(sys.executable).with_name("quantdesk"))
COMMANDS = (
    "--help",
    "version",
    "serve --help",
    "warm-up --help",
    "migrate upgrade --help",
    "demo load --help",
    "data backfill --help",
    "data import-instruments --help",
    "calendar import --help",
    "admin create-user --help",
    "admin generate-keys --help",
)
RUNS = 5


def best_of(command: str) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([QUANTDESK, *command.split()], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


def run() -> str:
    rows = [f"| `quantdesk {command}` | {best_of(command):.2f} |" for command in COMMANDS]
    return "\n".join(
        [
            "## The `quantdesk` command: `--help`",
            "",
            f"`.venv/bin/python -m benchmarks bench_cli`: wall time from spawn to exit, best of "
            f"{RUNS}, each a fresh process.",
            "",
            "| command | seconds |",
            "| --- | ---: |",
            *rows,
        ]
    )


if __name__ == "__main__":
    print(run())
