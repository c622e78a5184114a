"""GET /health/live through quantdesk's full middleware stack vs. a bare FastAPI app.

Both servers run as separate uvicorn processes (uvloop + httptools, one worker each) and
are loaded in turn by wrk, a load generator outside the server process, with the same
connections, duration and one wrk thread so that the server gets the other core.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port

DURATION_S = int(os.environ.get("QD_BENCH_HTTP_SECONDS", "5"))
ROUNDS = int(os.environ.get("QD_BENCH_HTTP_ROUNDS", "7"))
CONNECTIONS = 32


def _cpu_pins() -> tuple[list[str], list[str]]:
    """``taskset`` prefixes that give wrk and the server under load a core each.

    Unpinned, the scheduler moves both between the two cores, and a round in which they
    share one measures the scheduler, not the server.  Without two cores or ``taskset``
    nothing is pinned.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    taskset = shutil.which("taskset")
    if taskset is None or len(cpus) < 2 or os.environ.get("QD_BENCH_HTTP_PIN", "1") == "0":
        return [], []
    return [taskset, "-c", str(cpus[0])], [taskset, "-c", str(cpus[-1])]


WRK_PIN, SERVER_PIN = _cpu_pins()


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float


def _to_ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str) -> WrkResult:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed; `make bench` installs it with apt-get")
    warm_up = [*WRK_PIN, wrk, "-t1", "-c8", "-d2s", url]
    subprocess.run(warm_up, capture_output=True, check=True)
    output = subprocess.run(
        [*WRK_PIN, wrk, "-t1", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    # Anchored: "Thread Stats" lines also hold percentages (e.g. "90.50%").
    p50 = _to_ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _to_ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, p50, p99)


def _wait_for_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def serve(
    factory: str, env: dict[str, str], flags: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [
            *SERVER_PIN,
            sys.executable,
            "-m",
            "uvicorn",
            factory,
            "--factory",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            *flags,
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not _wait_for_port(port, 30):
        process.kill()
        raise RuntimeError(f"{factory} did not start")
    time.sleep(0.5)
    return process, port


Server = tuple[str, dict[str, str], tuple[str, ...]]


def measure(servers: dict[str, Server]) -> list[dict[str, WrkResult]]:
    """``ROUNDS`` rounds, each loading every server in turn: a noisy neighbour then hurts
    the servers of one round alike, and ratios are taken within a round."""
    running = {name: serve(*server) for name, server in servers.items()}
    rounds: list[dict[str, WrkResult]] = []
    try:
        for _ in range(ROUNDS):
            rounds.append(
                {
                    name: run_wrk(f"http://127.0.0.1:{port}/health/live")
                    for name, (_, port) in running.items()
                }
            )
    finally:
        for process, _ in running.values():
            process.terminate()
            process.wait(10)
    return rounds


def best(rounds: list[dict[str, WrkResult]], name: str) -> WrkResult:
    return max((r[name] for r in rounds), key=lambda result: result.requests_per_s)


def paired_ratio(rounds: list[dict[str, WrkResult]], name: str, reference: str) -> float:
    """The median over rounds of ``name``'s requests/s over ``reference``'s in that round."""
    return statistics.median(r[name].requests_per_s / r[reference].requests_per_s for r in rounds)


def run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "QUANTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            "QUANTDESK_VAR_DIR": tmp,
            "QUANTDESK_LOG_LEVEL": "INFO",
            "QUANTDESK_LOG_JSON": "true",
            "QUANTDESK_DEMO_DATA": "false",
        }
        rounds = measure(
            {
                # As `quantdesk serve` runs it: no Server header (it only advertises the
                # software to attackers).
                "ours": ("quantdesk.app:create_app", env, ("--no-server-header",)),
                "bare": ("benchmarks.bare_app:create_bare_app", {}, ()),
                "quiet": ("benchmarks.bare_app:create_bare_app_without_telemetry", {}, ()),
                "headers": ("benchmarks.bare_app:create_bare_app_with_headers", {}, ()),
            }
        )
    rows = {
        "quantdesk (full stack)": "ours",
        "bare FastAPI (the target's reference)": "bare",
        "bare FastAPI, native telemetry off": "quiet",
        "bare FastAPI, native telemetry off, the same response headers": "headers",
    }
    keeps = {name: paired_ratio(rounds, "ours", name) for name in rows.values()}
    best_ratio = best(rounds, "ours").requests_per_s / best(rounds, "bare").requests_per_s
    round_ratio = keeps["bare"]
    # The verdict takes the less favourable of the two estimates.
    verdict = "meets" if min(best_ratio, round_ratio) >= 0.75 else "misses"
    per_round = ", ".join(
        f"{r['ours'].requests_per_s / r['bare'].requests_per_s:.0%}" for r in rounds
    )
    table = []
    for label, name in rows.items():
        result = best(rounds, name)
        kept = "—" if name == "ours" else f"{keeps[name]:.0%}"
        table.append(
            f"| {label} | {result.requests_per_s:,.0f} | {result.p50_ms:.2f} "
            f"| {result.p99_ms:.2f} | {kept} |"
        )
    return "\n".join(
        [
            "## HTTP stack: `GET /health/live`",
            "",
            f"wrk, 1 thread, {CONNECTIONS} connections, {ROUNDS} rounds of {DURATION_S} s runs "
            "(each round loads every server in turn), wrk and the server under load pinned to "
            "a core each, one uvicorn worker each (uvloop + httptools); the bare apps with "
            "uvicorn's defaults, quantdesk as `quantdesk serve` runs it (`--no-server-header`, "
            "FastAPI's native OpenTelemetry off as `QUANTDESK_OTEL_ENABLED` defaults), with "
            "JSON access logs at INFO, request ids, metrics, error mapping and the security "
            "middleware.  Requests/s and latencies are each server's best round; *quantdesk "
            "keeps* is the median over rounds of quantdesk's requests/s over that server's in "
            "the same round.",
            "",
            "| server | requests/s | p50 ms | p99 ms | quantdesk keeps |",
            "| --- | ---: | ---: | ---: | ---: |",
            *table,
            "",
            f"Ratio to the bare app: **{best_ratio:.0%}** best round against best round, "
            f"**{round_ratio:.0%}** median of the rounds' own ratios ({per_round}); this "
            f"{verdict} the 75% target.  Against a bare app with FastAPI's telemetry off as "
            "quantdesk runs it, the ratio is our middleware's cost alone; against the last "
            "row it leaves out the server's cost of encoding the security headers and request "
            "id, which every response must carry.",
        ]
    )


if __name__ == "__main__":
    print(run())
