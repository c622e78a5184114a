"""`make bench`: run every benchmarks/bench_*.py and write docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}"


def main(argv: list[str]) -> int:
    only = set(argv)
    names = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))
    sections: list[str] = []
    failed = False
    for name in names:
        if only and name not in only and name.removeprefix("bench_") not in only:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            section = module.run()
        except Exception:
            failed = True
            section = f"## {name}\n\nFAILED:\n\n```\n{traceback.format_exc()}```"
        print(section + "\n", flush=True)
        sections.append(section)
    header = [
        "# Benchmarks",
        "",
        f"Produced by `make bench` (`.venv/bin/python -m benchmarks`) on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Machine: {machine()}.",
        "",
        "Each section measures quantdesk and the reference library side by side in the same run.",
        "",
    ]
    # Recorded by `make load` and `make chaos` (minutes each, so not rerun here).
    for recorded in ("load", "chaos"):
        path = ROOT / "benchmarks" / "load" / f"{recorded}.md"
        if not only and path.exists():
            text = path.read_text().rstrip()
            sections.append(
                f"<!-- make {recorded}: begin -->\n{text}\n<!-- make {recorded}: end -->"
            )
    if not only:
        (ROOT / "docs" / "benchmarks.md").write_text(
            "\n".join([*header, "\n\n".join(sections)]) + "\n"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
