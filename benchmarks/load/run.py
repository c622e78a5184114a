"""``make load`` and ``make chaos``: Locust against ``quantdesk serve`` (2 workers) on
PostgreSQL + Redis, on loopback, bounded in time.

``python -m benchmarks.load.run load``: PostgreSQL and Redis are started (throwaway, as the
test suite starts them), the database migrated and loaded with the demo market, ``quantdesk
serve --workers 2`` started with production-like settings (JSON access logs at INFO, OWASP
argon2 cost, demo ticker on), ``USERS`` traders registered, then two stages:

- *population*: ``POPULATION`` traders with a think time of 0.5-1.5 s between actions and
  ``STREAMS`` WebSocket subscribers: a real user population, for latency at a modest rate;
- *saturation*: ``CLOSED_LOOP`` traders without think time: the most the machine serves,
  with py-spy sampling one worker meanwhile (where the time goes).

``python -m benchmarks.load.run chaos``: the population stage while PostgreSQL is killed
(``pg_ctl stop -m immediate``) for 10 s and Redis is restarted; an auditor places orders
and deposits throughout and afterwards every acknowledged one is looked for in the
database, and ``quantdesk admin verify-ledger`` must pass.

Every rate limit is lifted: every simulated user comes from 127.0.0.1, and the limits are
per address and per user (they are measured in ``bench_security``).  The results are written
to ``benchmarks/load/{load,chaos}.md`` and into ``docs/benchmarks.md`` between markers.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
from tests.support.servers import PostgresServer, RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
SECRET = "load-secret-key-that-is-long-enough-0123456789abcdef"  # noqa: S105 - benchmark
PASSWORD = "a load test passphrase that is long"  # noqa: S105 - benchmark data
USERS = 100
POPULATION = 150
STREAMS = 20
CLOSED_LOOP = 48
# QD_LOAD_QUICK=1: every stage 12 s (a smoke run of the kit itself, not a measurement).
QUICK = os.environ.get("QD_LOAD_QUICK") == "1"
POPULATION_S = 12 if QUICK else 45
SATURATION_S = 12 if QUICK else 60
PROFILE_S = 5 if QUICK else 20
CHAOS_S = 80
# Issue 16 asks for "the same load" as `make load`: its population stage's traders.
# QD_CHAOS_TRADERS lowers it (a busy machine, where the queue would be the outage's cause).
CHAOS_TRADERS = int(os.environ.get("QD_CHAOS_TRADERS", str(POPULATION)))
PG_DOWN_AT_S, PG_DOWN_FOR_S, REDIS_RESTART_AT_S = 20.0, 10.0, 50.0
HANG_S = 10.0
# The goal of issue 16 on this 2-core machine, and the reviews' floor.
GOAL_RPS, GOAL_P99_MS = 2000, 100
FLOOR_RPS, FLOOR_P95_MS, FLOOR_P99_MS = 100, 500, 1000


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- the system under test -------------------------------------------------------------------
@dataclass
class System:
    root: Path
    pg: PostgresServer
    redis: RedisServer
    env: dict[str, str]
    base: str = ""
    server: subprocess.Popen[bytes] | None = None

    @property
    def database_url(self) -> str:
        return self.env["QUANTDESK_DATABASE_URL"]

    def workers(self) -> list[psutil.Process]:
        assert self.server is not None
        children: list[psutil.Process] = psutil.Process(self.server.pid).children(True)
        return children


def server_env(database_url: str, redis_url: str, root: Path) -> dict[str, str]:
    lifted = "1000000/second"
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")},
        "QUANTDESK_PROFILE": "dev",
        "QUANTDESK_DATABASE_URL": database_url,
        "QUANTDESK_REDIS_URL": redis_url,
        "QUANTDESK_VAR_DIR": str(root / "var"),
        "QUANTDESK_SECRET_KEY": SECRET,
        "QUANTDESK_LOG_LEVEL": "INFO",
        "QUANTDESK_LOG_JSON": "true",
        "QUANTDESK_DEMO_DATA": "true",
        "QUANTDESK_RATE_LIMIT_API": lifted,
        "QUANTDESK_RATE_LIMIT_ORDERS": lifted,
        "QUANTDESK_RATE_LIMIT_LOGIN_ACCOUNT": lifted,
        "QUANTDESK_RATE_LIMIT_LOGIN_IP": lifted,
        "QUANTDESK_RATE_LIMIT_AUTH_IP": lifted,
        "QUANTDESK_RATE_LIMIT_REGISTER_IP": lifted,
        "QUANTDESK_RATE_LIMIT_UNAUTHENTICATED_IP": lifted,
        "QUANTDESK_STREAM_MAX_CONNECTIONS_PER_USER": "100",
    }


def quantdesk(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [str(BIN / "quantdesk"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"quantdesk {' '.join(args)}: {result.stderr[-2000:]}")
    return result.stdout


@contextlib.contextmanager
def system() -> Iterator[System]:
    with tempfile.TemporaryDirectory(prefix="qd-load-") as directory:
        root = Path(directory)
        pg, redis = PostgresServer(), RedisServer()
        pg.start()
        redis.start()
        try:
            pg.psql("CREATE DATABASE quantdesk")
            # The suite's servers run with synchronous_commit off (their data is thrown
            # away); a chaos run must not lose a commit to a crash, so this database
            # commits durably to the WAL, as production does.
            pg.psql("ALTER DATABASE quantdesk SET synchronous_commit = on")
            env = server_env(pg.url("quantdesk"), redis.url(0), root)
            sut = System(root, pg, redis, env)
            log("migrating and loading the demo market")
            quantdesk(env, "migrate", "upgrade", "head")
            quantdesk(env, "demo", "load")
            # The dev profile makes its signing and PII keys on first use; once, here, so
            # the two workers do not race to write them.
            subprocess.run(
                [sys.executable, "-c", "from quantdesk.app import create_app; "
                 "from quantdesk.settings import Settings; create_app(Settings())"],
                env=env, check=True, timeout=120,
            )  # fmt: skip
            start_server(sut)
            yield sut
        finally:
            if "sut" in locals() and sut.server is not None:
                stop_server(sut)
            keep = ROOT / "var" / "load"
            keep.mkdir(parents=True, exist_ok=True)
            for artefact in [*root.glob("locust-*.csv"), *root.glob("*.log"), *root.glob("*.txt")]:
                with contextlib.suppress(OSError):
                    (keep / artefact.name).write_bytes(artefact.read_bytes())
            pg.destroy()
            redis.stop()


def stop_server(sut: System) -> None:
    """SIGTERM to the supervisor and its workers, SIGKILL to whatever is left after 15 s:
    a worker must never outlive the run (it would keep its demo ticker going)."""
    assert sut.server is not None
    processes = [psutil.Process(sut.server.pid)]
    with contextlib.suppress(psutil.Error):
        processes += sut.workers()
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=15)
    for process in alive:
        # Where a process that would not stop is stuck, for the report.
        dump = subprocess.run(
            [str(BIN / "py-spy"), "dump", "--pid", str(process.pid)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        (sut.root / f"stuck-{process.pid}.txt").write_text(dump.stdout + dump.stderr)
        log(f"process {process.pid} ignored SIGTERM for 15 s; stack in var/load/stuck-*.txt")
        with contextlib.suppress(psutil.Error):
            process.kill()
    sut.server.wait(5)


def start_server(sut: System) -> None:
    port = free_port()
    sut.base = f"http://127.0.0.1:{port}"
    log_file = (sut.root / "server.log").open("wb")
    sut.server = subprocess.Popen(
        [str(BIN / "quantdesk"), "serve", "--no-migrate", "--workers", "2", "--port", str(port)],
        env=sut.env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{sut.base}/health/ready", timeout=2).status_code == 200:
                log(f"serving on {sut.base} (2 workers)")
                return
        time.sleep(0.5)
    raise RuntimeError("quantdesk serve never became ready; see server.log")


def register(base: str, count: int, prefix: str) -> list[dict[str, str]]:
    """``count`` traders through the public API, each signed in with an account."""
    from concurrent.futures import ThreadPoolExecutor

    def one(index: int) -> dict[str, str]:
        person = {"email": f"{prefix}{index}@example.com", "password": f"{PASSWORD} {index}"}
        with httpx.Client(base_url=base, timeout=60) as client:
            client.post("/api/v1/auth/register", json=person).raise_for_status()
            token = client.post("/api/v1/auth/login", json=person).raise_for_status().json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            account = client.post("/api/v1/accounts", json={"name": "load"}, headers=headers)
            account.raise_for_status()
            return {**person, "access_token": token["access_token"],
                    "account_id": account.json()["id"]}  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def portfolios_served(base: str) -> bool:
    paths = httpx.get(f"{base}/openapi.json", timeout=10).json().get("paths", {})
    return "/api/v1/portfolios" in paths


def streams_served(base: str) -> bool:
    paths = httpx.get(f"{base}/openapi.json", timeout=10).json().get("paths", {})
    return "/api/v1/stream/tickets" in paths


# --- Locust ----------------------------------------------------------------------------------
@dataclass
class ClassStats:
    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float


@dataclass
class Stage:
    name: str
    seconds: int
    users: int
    think: str
    rows: list[ClassStats] = field(default_factory=list)
    total: ClassStats | None = None
    failures: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    load_average: float = 0.0


def locust(
    sut: System,
    stage: Stage,
    people_file: Path,
    *,
    streams: int,
    portfolios: bool,
    during: Any = None,
) -> Stage:
    prefix = sut.root / f"locust-{stage.name}"
    command, env = locust_command(
        sut.base, stage, people_file, prefix, streams=streams, portfolios=portfolios
    )
    log(f"stage {stage.name}: {stage.users} traders (think {stage.think} s), "
        f"{streams} stream subscribers, {stage.seconds} s")  # fmt: skip
    before = cpu_seconds(sut)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    locust_cpu = 0.0
    if during is not None:
        during(process)
    with contextlib.suppress(psutil.Error):
        while process.poll() is None:
            times = psutil.Process(process.pid).cpu_times()
            locust_cpu = times.user + times.system
            time.sleep(0.5)
    _, stderr = process.communicate(timeout=60)
    after = cpu_seconds(sut)
    stage.cpu = {k: (after.get(k, 0.0) - before.get(k, 0.0)) / stage.seconds for k in after}
    stage.cpu["locust"] = locust_cpu / stage.seconds
    stage.load_average = os.getloadavg()[0]
    stage.rows, stage.total = read_stats(Path(f"{prefix}_stats.csv"))
    stage.failures = read_failures(Path(f"{prefix}_failures.csv"))
    if stage.total is None:
        raise RuntimeError(f"locust wrote no statistics: {stderr.decode()[-2000:]}")
    return stage


def locust_command(
    base: str, stage: Stage, people_file: Path, prefix: Path, *, streams: int, portfolios: bool
) -> tuple[list[str], dict[str, str]]:
    """The headless Locust run of one stage (command, environment); its statistics go to
    ``<prefix>_stats.csv`` and ``<prefix>_failures.csv``.  Also what the kit's smoke test
    (tests/ops/test_load_kit.py) runs."""
    env = {
        **os.environ,
        "QD_LOAD_USERS": str(people_file),
        "QD_LOAD_THINK_S": stage.think,
        "QD_LOAD_STREAMS": str(streams),
        "QD_LOAD_PORTFOLIOS": "1" if portfolios else "0",
    }
    classes = ["Trader", *(["StreamSubscriber"] if streams else [])]
    command = [
        str(BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "--host", base,
        "-u", str(stage.users + streams), "-r", str(max(50, stage.users)),
        "-t", f"{stage.seconds}s", "--csv", str(prefix), "--only-summary",
        "--stop-timeout", "5", "--loglevel", "WARNING", *classes,
    ]  # fmt: skip
    return command, env


def read_stats(path: Path) -> tuple[list[ClassStats], ClassStats | None]:
    rows, total = [], None
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            stats = ClassStats(
                row["Name"],
                int(row["Request Count"]),
                int(row["Failure Count"]),
                float(row["Requests/s"]),
                _ms(row["50%"]),
                _ms(row["95%"]),
                _ms(row["99%"]),
            )
            if row["Name"] == "Aggregated":
                total = stats
            else:
                rows.append(stats)
    return sorted(rows, key=lambda r: -r.requests), total


def _ms(value: str) -> float:
    return float(value) if value not in {"", "N/A"} else 0.0


def read_failures(path: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    if not path.exists():
        return found
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            error = re.sub(r"\d{3,}\.\d+", "", row["Error"])[:90]
            found[f"{row['Name']}: {error}"] += int(row["Occurrences"])
    return found


def cpu_seconds(sut: System) -> dict[str, float]:
    """CPU seconds used so far by the servers' processes, by role."""
    used: dict[str, float] = defaultdict(float)
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            name = process.info["name"] or ""
            times = process.cpu_times()
        except psutil.Error:
            continue
        if name.startswith("postgres"):
            role = "postgres"
        elif name.startswith("redis-server"):
            role = "redis"
        else:
            continue
        used[role] += times.user + times.system
    with contextlib.suppress(psutil.Error):
        for worker in sut.workers():
            times = worker.cpu_times()
            used["quantdesk"] += times.user + times.system
    return dict(used)


# --- profile ---------------------------------------------------------------------------------
AREAS = [
    ("quantdesk", re.compile(r"(^|/)quantdesk/")),
    ("SQLAlchemy", re.compile(r"(^|/)sqlalchemy/")),
    ("asyncpg", re.compile(r"(^|/)asyncpg/")),
    ("pydantic", re.compile(r"(^|/)pydantic(_core)?/")),
    ("FastAPI/Starlette", re.compile(r"(^|/)(fastapi|starlette)/")),
    ("uvicorn/httptools", re.compile(r"(^|/)(uvicorn|httptools)/")),
    ("structlog/logging", re.compile(r"(^|/)(structlog|logging)/")),
    ("argon2 (password hashing)", re.compile(r"(^|/)argon2/")),
    ("redis", re.compile(r"(^|/)redis/")),
    ("orjson/json", re.compile(r"(^|/)(orjson|json)/")),
    ("asyncio/uvloop", re.compile(r"(^|/)(asyncio|uvloop)/")),
    ("numpy/numba", re.compile(r"(^|/)(numpy|numba)/")),
]


def profile(pid: int, seconds: int, out: Path) -> None:
    subprocess.run(
        [str(BIN / "py-spy"), "record", "--pid", str(pid), "--duration", str(seconds),
         "--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking"],
        capture_output=True, timeout=seconds + 60, check=False,
    )  # fmt: skip


Shares = list[tuple[str, float]]


def summarise_profile(path: Path) -> tuple[Shares, Shares, Shares]:
    """(share of samples by library of the innermost frame, top leaf functions, by the
    outermost quantdesk frame: the endpoint or background task the time was spent for)."""
    areas: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    entries: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return [], [], []
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        ours = [_short(f) for f in frames if "quantdesk/" in f]
        endpoint = [f for f in ours if "router.py" in f]
        if endpoint:
            entries[endpoint[0]] += count
        elif ours:
            # Before (or after) the endpoint: authentication, rate limits, the response.
            inner = [f for f in ours if ".__call__ (" not in f]
            entries[
                inner[0] if inner else "HTTP middleware (request guard, context, access log)"
            ] += count
        else:
            entries["(no quantdesk frame: event loop, HTTP parsing, driver I/O)"] += count
        leaf = _short(frames[-1])
        leaves[leaf] += count
        file = leaf.rpartition("(")[2]
        area = next((a for a, pattern in AREAS if pattern.search(file)), "other (stdlib)")
        areas[area] += count
    if total == 0:
        return [], [], []
    return (
        [(a, n / total) for a, n in areas.most_common()],
        [(f, n / total) for f, n in leaves.most_common(12)],
        [(f, n / total) for f, n in entries.most_common(12)],
    )


def _short(frame: str) -> str:
    match = re.match(r"(?P<fn>.*?) \((?P<file>[^:)]*)(:\d+)?\)", frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match['fn']} ({file})"


# --- chaos -----------------------------------------------------------------------------------
@dataclass
class Call:
    at: float
    kind: str
    status: int  # 0: no answer (a timeout or a refused connection)
    seconds: float
    key: str = ""
    # For an error answer: whether it was an RFC 7807 problem of its own status (None: 2xx).
    problem: bool | None = None


def is_problem(response: httpx.Response) -> bool:
    """An ``application/problem+json`` body naming the response's own status."""
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == response.status_code and "title" in body


@dataclass
class Auditor:
    """Places orders and deposits at a steady rate through the outage, remembering each
    acknowledged one; probes readiness."""

    base: str
    people: list[dict[str, str]]
    started: float = field(default_factory=time.monotonic)
    calls: list[Call] = field(default_factory=list)
    ready: list[Call] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._trade, args=(p,), daemon=True)
                   for p in self.people]  # fmt: skip
        threads.append(threading.Thread(target=self._probe, daemon=True))
        for thread in threads:
            thread.start()
        return threads

    def _call(self, client: httpx.Client, kind: str, key: str, **request: Any) -> Call:
        at = time.monotonic() - self.started
        started = time.perf_counter()
        problem = None
        try:
            response = client.request(**request)
            status = response.status_code
            if status == 201 and kind == "order":
                key = response.json()["id"]
            if status >= 400:
                problem = is_problem(response)
        except httpx.HTTPError:
            status = 0
        return Call(at, kind, status, time.perf_counter() - started, key, problem)

    def _trade(self, person: dict[str, str]) -> None:
        headers = {"Authorization": f"Bearer {person['access_token']}"}
        account = f"/api/v1/accounts/{person['account_id']}"
        with httpx.Client(base_url=self.base, timeout=HANG_S * 2, headers=headers) as client:
            price = resting_price(client)
            turn = 0
            while not self.stop.is_set():
                turn += 1
                if turn % 4:
                    body = {"instrument": "SIM:ALPHA", "side": "buy", "quantity": "1",
                            "type": "limit", "limit_price": price, "time_in_force": "gtc",
                            "client_order_id": uuid.uuid4().hex}  # fmt: skip
                    call = self._call(client, "order", "", method="POST",
                                      url=f"{account}/orders", json=body)  # fmt: skip
                else:
                    memo = f"chaos-{uuid.uuid4().hex}"
                    call = self._call(
                        client, "deposit", memo, method="POST", url=f"{account}/deposits",
                        json={"amount": "1.25", "memo": memo},
                        headers={"Idempotency-Key": memo},
                    )  # fmt: skip
                self.calls.append(call)
                time.sleep(0.05)

    def _probe(self) -> None:
        with httpx.Client(base_url=self.base, timeout=HANG_S * 2) as client:
            while not self.stop.is_set():
                self.ready.append(
                    self._call(client, "ready", "", method="GET", url="/health/ready")
                )
                time.sleep(0.1)


def resting_price(client: httpx.Client) -> str:
    """A buy limit 5% under SIM:ALPHA's last price: inside the price band, never filled."""
    from decimal import ROUND_DOWN, Decimal

    quotes = client.get("/api/v1/market/quotes", params={"keys": "SIM:ALPHA"}).json()["quotes"]
    last = Decimal(str(quotes[0]["last"]))
    tick = Decimal("0.05")
    return str((last * Decimal("0.95") / tick).to_integral_value(ROUND_DOWN) * tick)


def chaos_faults(sut: System, marks: dict[str, float], started: float) -> threading.Thread:
    def run() -> None:
        time.sleep(PG_DOWN_AT_S)
        marks["pg_stop"] = time.monotonic() - started
        log("chaos: PostgreSQL killed (pg_ctl stop -m immediate)")
        sut.pg.stop()
        time.sleep(PG_DOWN_FOR_S)
        sut.pg.start()
        marks["pg_start"] = time.monotonic() - started
        log("chaos: PostgreSQL started again")
        time.sleep(max(0.0, REDIS_RESTART_AT_S - (time.monotonic() - started)))
        marks["redis_stop"] = time.monotonic() - started
        log("chaos: Redis restarted")
        sut.redis.stop()
        sut.redis.start()
        marks["redis_start"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def database_rows(sut: System, query: str, values: list[str]) -> set[str]:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=sut.pg.port, user="postgres", dbname="quantdesk"
    ) as connection:
        rows = connection.execute(query, (values,)).fetchall()
    return {str(row[0]) for row in rows}


def first_after(calls: list[Call], moment: float, ok: set[int]) -> float | None:
    later = [c.at + c.seconds for c in calls if c.at >= moment and c.status in ok]
    return min(later) - moment if later else None


# --- reports ---------------------------------------------------------------------------------
def stage_table(stage: Stage) -> list[str]:
    lines = [
        "| endpoint class | requests | failures | req/s | p50 ms | p95 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in [*stage.rows, *([stage.total] if stage.total else [])]:
        name = "**all HTTP + WS**" if row.name == "Aggregated" else row.name
        lines.append(
            f"| {name} | {row.requests:,} | {row.failures:,} | {row.rps:,.1f} | "
            f"{row.p50:,.0f} | {row.p95:,.0f} | {row.p99:,.0f} |"
        )
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in sorted(stage.cpu.items(), key=lambda kv: -kv[1]))
    lines += [
        "",
        f"CPU used (cores, of 2): {cpu}; the machine's 1-minute load average at the end of "
        f"the stage: {stage.load_average:.1f} (other work on the machine counts there too).",
    ]
    if stage.failures:
        lines += ["", "Failures: " + "; ".join(f"{k} x{n}" for k, n in stage.failures.items())]
    return lines


def http_total(stage: Stage) -> tuple[float, float, float]:
    """(requests/s, p95, p99) of the HTTP classes (the stream's frames left out)."""
    http = [r for r in stage.rows if r.name not in {"tick", "stream connect"}]
    rps = sum(r.rps for r in http)
    weight = sum(r.requests for r in http) or 1
    # Per-class percentiles, weighted by requests: an approximation of the mix's; the
    # worst class is listed in the table above.
    p95 = sum(r.p95 * r.requests for r in http) / weight
    p99 = max((r.p99 for r in http), default=0.0)
    return rps, p95, p99


def write_section(name: str, lines: list[str]) -> None:
    text = "\n".join(lines).rstrip() + "\n"
    (Path(__file__).with_name(f"{name}.md")).write_text(text)
    docs = ROOT / "docs" / "benchmarks.md"
    begin, end = f"<!-- make {name}: begin -->", f"<!-- make {name}: end -->"
    current = docs.read_text()
    block = f"{begin}\n{text}{end}"
    if begin in current and end in current:
        current = current[: current.index(begin)] + block + current[current.index(end) + len(end) :]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    docs.write_text(current)
    log(f"written to benchmarks/load/{name}.md and docs/benchmarks.md")


def tree() -> str:
    """The commit measured, and whether the working tree differed from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    ).stdout.strip()  # fmt: skip
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return f"`{head or 'unknown'}`" + (" with uncommitted changes" if dirty else "")


def _counts(statuses: Counter[int]) -> str:
    return ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(statuses.items()))


def run_load() -> None:
    started = time.monotonic()
    with system() as sut:
        people = register(sut.base, USERS, "load")
        people_file = sut.root / "people.json"
        people_file.write_text(json.dumps(people))
        portfolios, streams = portfolios_served(sut.base), streams_served(sut.base)
        population = locust(
            sut, Stage("population", POPULATION_S, POPULATION, "0.5,1.5"), people_file,
            streams=STREAMS if streams else 0, portfolios=portfolios,
        )  # fmt: skip
        worker = max(sut.workers(), key=lambda p: sum(p.cpu_times()[:2])).pid
        profile_file = sut.root / "profile.txt"

        def sample(_process: subprocess.Popen[bytes]) -> None:
            def later() -> None:
                time.sleep((SATURATION_S - PROFILE_S) / 2)
                profile(worker, PROFILE_S, profile_file)

            threading.Thread(target=later, daemon=True).start()

        saturation = locust(
            sut, Stage("saturation", SATURATION_S, CLOSED_LOOP, "0,0"), people_file,
            streams=0, portfolios=portfolios, during=sample,
        )  # fmt: skip
        time.sleep(2)
        areas, leaves, entries = summarise_profile(profile_file)
    elapsed = time.monotonic() - started
    rps, _, p99 = http_total(saturation)
    pop_rps, pop_p95, pop_p99 = http_total(population)
    lines = [
        "## Load: `make load` (Locust, mixed traffic, PostgreSQL + Redis)",
        "",
        f"`make load` (`.venv/bin/python -m benchmarks.load.run load`, {elapsed:.0f} s in all) "
        f"on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, tree {tree()}: "
        "`quantdesk serve --workers 2` "
        "(dev profile: OWASP argon2, JSON access logs at INFO, demo ticker on) on PostgreSQL "
        "+ Redis, Locust on the same 2 cores over loopback. The mix per trader: quotes 30, "
        "bars 10, account 10, place + cancel a resting limit order 10, chain 5, orders 5, "
        f"portfolios 5{'' if portfolios else ' (not served by this build: skipped)'}, login 1; "
        f"{USERS} registered traders; rate limits lifted (one client address). Latencies are "
        "Locust's, client side, including its own queueing on the shared cores.",
        "",
        f"### Population: {POPULATION} traders, 0.5-1.5 s think time, "
        f"{STREAMS if streams else 0} stream subscribers, {POPULATION_S} s",
        "",
        *stage_table(population),
        "",
        f"### Saturation: {CLOSED_LOOP} traders in a closed loop, {SATURATION_S} s",
        "",
        *stage_table(saturation),
        "",
        "### Against the goal",
        "",
        "| | requests/s | p95 ms | p99 ms (worst class) |",
        "| --- | ---: | ---: | ---: |",
        f"| reviews' floor | {FLOOR_RPS} | < {FLOOR_P95_MS} | < {FLOOR_P99_MS} |",
        f"| issue 16's goal | {GOAL_RPS:,} | | < {GOAL_P99_MS} |",
        f"| population stage | {pop_rps:,.0f} | {pop_p95:,.0f} | {pop_p99:,.0f} |",
        f"| saturation stage | {rps:,.0f} | | {p99:,.0f} |",
        "",
    ]
    ours = saturation.cpu.get("quantdesk", 0.0) + saturation.cpu.get("postgres", 0.0)
    # The run itself keeps ~3 processes runnable; only a higher load that left the run short
    # of the two cores means other work shared them.
    if saturation.load_average > 4.0 and sum(saturation.cpu.values()) < 1.6:
        lines += [
            f"**The machine was shared during this run** (1-minute load average "
            f"{saturation.load_average:.1f} on 2 cores: other sessions' test suites): "
            f"quantdesk's workers and PostgreSQL got {ours:.2f} of the 2 cores at saturation, "
            "so these figures are bounded by the contention, not by quantdesk; run "
            "`make load` on an idle machine for quantdesk's own.",
            "",
        ]
    met = rps >= GOAL_RPS and p99 <= GOAL_P99_MS
    lines.append(
        "The goal is met." if met else
        f"The goal is not met on this machine: {rps:,.0f} requests/s at saturation against "
        f"{GOAL_RPS:,}. Where one worker's time went during {PROFILE_S} s of the saturation "
        "stage (py-spy, 200 samples/s, the innermost frame of each sample):"
    )  # fmt: skip
    if areas:
        lines += ["", "| innermost frame in | share of samples |", "| --- | ---: |"]
        lines += [f"| {area} | {share:.0%} |" for area, share in areas]
        lines += ["", "| hottest functions (self time) | share |", "| --- | ---: |"]
        lines += [f"| `{fn}` | {share:.1%} |" for fn, share in leaves]
        lines += ["", "| spent for (outermost quantdesk frame) | share |", "| --- | ---: |"]
        lines += [f"| `{fn}` | {share:.1%} |" for fn, share in entries]
    write_section("load", lines)


def run_chaos() -> None:
    started_all = time.monotonic()
    with system() as sut:
        people = register(sut.base, USERS, "load")
        auditors = register(sut.base, 4, "auditor")
        people_file = sut.root / "people.json"
        people_file.write_text(json.dumps(people))
        auditor = Auditor(sut.base, auditors)
        marks: dict[str, float] = {}
        threads: list[threading.Thread] = []

        def faults(_process: subprocess.Popen[bytes]) -> None:
            auditor.started = time.monotonic()
            threads.extend(auditor.run())
            threads.append(chaos_faults(sut, marks, auditor.started))

        stage = locust(
            sut, Stage("chaos", CHAOS_S, CHAOS_TRADERS, "0.5,1.5"), people_file,
            streams=STREAMS if streams_served(sut.base) else 0,
            portfolios=portfolios_served(sut.base), during=faults,
        )  # fmt: skip
        auditor.stop.set()
        for thread in threads:
            thread.join(HANG_S * 3)
        time.sleep(3)  # the matcher settles
        acknowledged_orders = [
            c.key for c in auditor.calls if c.kind == "order" and c.status == 201
        ]
        acknowledged_deposits = [
            c.key for c in auditor.calls if c.kind == "deposit" and c.status == 201
        ]
        found_orders = database_rows(
            sut, "SELECT id::text FROM orders WHERE id::text = ANY(%s)", acknowledged_orders
        )
        found_deposits = database_rows(
            sut, "SELECT memo FROM ledger_entries WHERE memo = ANY(%s)", acknowledged_deposits
        )
        verify = subprocess.run(
            [str(BIN / "quantdesk"), "admin", "verify-ledger"], env=sut.env,
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    elapsed = time.monotonic() - started_all
    pg_stop, pg_start = marks.get("pg_stop", PG_DOWN_AT_S), marks.get("pg_start", 0.0)
    redis_start = marks.get("redis_start", 0.0)
    outage = [c for c in auditor.calls if pg_stop <= c.at < pg_start]
    statuses = Counter(c.status for c in outage)
    all_statuses = Counter(c.status for c in auditor.calls)
    slowest = max((c.seconds for c in auditor.calls), default=0.0)
    hangs = sum(1 for c in auditor.calls + auditor.ready if c.seconds >= HANG_S)
    other_5xx = sum(n for s, n in all_statuses.items() if s >= 500 and s != 503)
    unavailable = [c for c in auditor.calls + auditor.ready if c.status == 503]
    # The auditor's 503s, and every error answer Locust's population met (the locustfile
    # counts those that are not problem+json as failures of their own).
    not_problems = sum(1 for c in unavailable if not c.problem)
    locust_not_problems = sum(
        n for k, n in stage.failures.items() if k.startswith("not problem+json")
    )
    pg_recovery = first_after(auditor.calls, pg_start, {201})
    pg_ready = first_after(auditor.ready, pg_start, {200})
    redis_recovery = first_after(auditor.calls, redis_start, {201})
    redis_ready = first_after(auditor.ready, marks.get("redis_stop", 0.0), {200})
    lost_orders = len(set(acknowledged_orders) - found_orders)
    lost_deposits = len(set(acknowledged_deposits) - found_deposits)

    def secs(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f} s"

    lines = [
        "## Chaos: `make chaos` (PostgreSQL killed for 10 s, Redis restarted, under load)",
        "",
        f"`make chaos` (`.venv/bin/python -m benchmarks.load.run chaos`, {elapsed:.0f} s in "
        f"all) on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, tree {tree()}: the population "
        "stage of "
        f"`make load` ({CHAOS_TRADERS} traders, 0.5-1.5 s think time) for {CHAOS_S} s against "
        "`quantdesk serve --workers 2`; PostgreSQL killed with `pg_ctl stop -m immediate` at "
        f"{pg_stop:.0f} s and started again {PG_DOWN_FOR_S:.0f} s later (same port), Redis "
        f"stopped and started at {marks.get('redis_stop', 0):.0f} s. Nothing restarted "
        "quantdesk. Four auditor clients placed orders and deposits (with Idempotency-Key) "
        "every 50 ms throughout and remembered each acknowledged one (201).",
        "",
        "| | result |",
        "| --- | --- |",
        f"| auditor calls | {len(auditor.calls):,} ({_counts(all_statuses)}) |",
        f"| during the PostgreSQL outage | {_counts(statuses) or 'none'} |",
        f"| other 5xx (not 503) | {other_5xx} |",
        f"| 503s (orders, deposits, readiness) that were not problem+json | {not_problems} of {len(unavailable):,} |",  # noqa: E501
        f"| the population's error answers that were not problem+json | {locust_not_problems} of {sum(r.failures for r in stage.rows):,} |",  # noqa: E501
        f"| slowest answer; answers slower than {HANG_S:.0f} s (hangs) | {slowest:.2f} s; {hangs} |",  # noqa: E501
        f"| PostgreSQL back to the first acknowledged order | {secs(pg_recovery)} |",
        f"| PostgreSQL back to `/health/ready` 200 | {secs(pg_ready)} |",
        f"| Redis back to the first acknowledged order | {secs(redis_recovery)} |",
        f"| Redis restart to `/health/ready` 200 | {secs(redis_ready)} |",
        f"| acknowledged orders / found in the database afterwards | {len(acknowledged_orders):,} / {len(set(acknowledged_orders) & found_orders):,} (lost: {lost_orders}) |",  # noqa: E501
        f"| acknowledged deposits / their ledger entries found | {len(acknowledged_deposits):,} / {len(set(acknowledged_deposits) & found_deposits):,} (lost: {lost_deposits}) |",  # noqa: E501
        f"| `quantdesk admin verify-ledger` afterwards | exit {verify.returncode}: {(verify.stdout or verify.stderr).strip().splitlines()[-1] if (verify.stdout or verify.stderr).strip() else ''} |",  # noqa: E501
        "",
        "The Locust population meanwhile (503s during the outage count as failures):",
        "",
        *stage_table(stage),
    ]
    write_section("chaos", lines)
    wrong_errors = not_problems + locust_not_problems
    if lost_orders or lost_deposits or verify.returncode or hangs or other_5xx or wrong_errors:
        log("chaos: FAILED (see the table)")
        sys.exit(1)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "load"
    {"load": run_load, "chaos": run_chaos}[mode]()
