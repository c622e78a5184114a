"""Real PostgreSQL and Redis servers for the test suite, started and stopped by the harness.

pytest-postgresql cannot be used as is: CI runs as root and PostgreSQL refuses to run as
root, so the cluster is initialised and run as the ``postgres`` system user (``runuser``)
when we are root.  Both servers listen on loopback only, on free ports, with durability off
(the data is thrown away) so the suite stays fast.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


class ServerStartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bindir() -> Path:
    override = os.environ.get("QUANTDESK_TEST_PG_BINDIR")
    if override:
        return Path(override)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise ServerStartError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found under "
        "/usr/lib/postgresql/*/bin or on PATH; install the postgresql package or set "
        "QUANTDESK_TEST_PG_BINDIR"
    )


class PostgresServer:
    def __init__(self, options: str = "") -> None:
        """``options``: more ``-c name=value`` server settings."""
        self.options = options
        self.bindir = postgres_bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="qd-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.as_root = os.geteuid() == 0
        self.started = False

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)

    def start(self) -> None:
        # Parallel test workers each start a cluster: two may draw the same free port
        # between free_port() and the bind, so a first start that lost that race is retried
        # on another port.  A restart (the outage tests) keeps its port, as a real one does.
        retries = 0 if self.started else 2
        while True:
            try:
                self._start()
            except ServerStartError as exc:
                if retries == 0 or "could not bind" not in str(exc):
                    raise
                retries -= 1
                self.port = free_port()
            else:
                self.started = True
                return

    def _start(self) -> None:
        if not self.data.exists():
            if self.as_root:
                shutil.chown(self.root, "postgres", "postgres")
            init = self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            )
            if init.returncode != 0:
                raise ServerStartError(f"initdb failed: {init.stderr.strip() or init.stdout}")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=400 "
            f"-c shared_buffers=128MB {self.options}"
        )
        started = self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
        )
        # A run cut short (Ctrl-C, timeout) must not leave a cluster behind.
        atexit.register(self.destroy)
        # ``pg_ctl -w`` returns once the server accepts connections (or has failed).
        if started.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise ServerStartError(f"PostgreSQL did not start: {started.stderr.strip()}\n{log}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        if self.data.exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAt",
            "-c",
            sql,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()


def redis_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if not found:
        raise ServerStartError(
            "redis-server was not found; `make test` installs it with apt-get when run as root"
        )
    return found


class RedisServer:
    def __init__(self) -> None:
        self.binary = redis_binary()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.started = False

    def start(self) -> None:
        # As for PostgreSQL: on a first start another worker may have taken the port.
        retries = 0 if self.started else 2
        while True:
            try:
                self._start()
            except ServerStartError:
                if retries == 0:
                    raise
                retries -= 1
                self.port = free_port()
            else:
                self.started = True
                return

    def _start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--databases",
                "64",
                "--loglevel",
                "notice",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        atexit.register(self.stop)
        if not self._ready(deadline_s=15):
            self.stop()
            raise ServerStartError(f"redis-server did not start on port {self.port}")

    def _ready(self, deadline_s: float) -> bool:
        """Wait for redis-server to log that it accepts connections, then keep draining its
        output in a thread so a full pipe can never block it."""
        assert self.process is not None
        assert self.process.stdout is not None
        stdout = self.process.stdout
        found = threading.Event()

        def read() -> None:
            for line in stdout:
                if b"Ready to accept connections" in line:
                    found.set()
            found.set()  # the process ended: stop waiting either way

        threading.Thread(target=read, daemon=True).start()
        return found.wait(deadline_s) and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@contextlib.contextmanager
def serve_quantdesk(
    env: dict[str, str], cwd: Path, *args: str, ready_within_s: float = 120
) -> Iterator[str]:
    """A real ``quantdesk serve`` on a free loopback port, until it answers /health/ready;
    yields its base URL and stops it afterwards.  A server that exits or never becomes
    ready fails the test with the end of its stderr."""
    quantdesk = str(Path(sys.executable).with_name("quantdesk"))
    port = free_port()
    server = subprocess.Popen(
        [quantdesk, "serve", *args, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_within_s
        while True:
            try:
                if httpx.get(base + "/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                _, err = server.communicate(timeout=5)
                raise ServerStartError(f"quantdesk serve did not become ready: {err[-4000:]!r}")
            time.sleep(0.2)  # polling another process's readiness: there is no event to await
        yield base
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
