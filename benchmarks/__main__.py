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


def cpu_times() -> list[int] | None:
    """The machine's CPU time so far, in ticks: user, nice, system, idle, iowait, irq,
    softirq, steal (``/proc/stat``); None where there is none."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return None
    return [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:9]]


def host_line(before: list[int] | None, after: list[int] | None) -> str:
    """How much of the machine the section had: on a shared virtual machine the hypervisor
    takes CPU from it (steal), and every latency and rate above moves with that."""
    if before is None or after is None:
        return ""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(spent) or 1
    return (
        f"Host while this ran: {spent[7] / total:.0%} of the CPU stolen by the hypervisor, "
        f"{spent[3] / total:.0%} idle, load average {os.getloadavg()[0]:.1f}."
    )


def main(argv: list[str]) -> int:
    only = set(argv)
    names = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))
    sections: list[str] = []
    failed = False
    for name in names:
        if only and name not in only and name.removeprefix("bench_") not in only:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        started = cpu_times()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            section = module.run()
        except Exception:
            failed = True
            section = f"## {name}\n\nFAILED:\n\n```\n{traceback.format_exc()}```"
        host = host_line(started, cpu_times())
        if host:
            section = f"{section.rstrip()}\n\n{host}"
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
        "Each section measures quantdesk and the reference library side by side in the same run, "
        "and ends with how much of the machine it had: on a shared virtual machine the "
        "hypervisor's steal moves every latency and rate.",
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
