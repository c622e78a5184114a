"""Cold path: what a user waits for after ``make run``, with an empty and a warm numba cache.

Each scenario starts from a fresh database loaded with ``quantdesk demo load``, then times a
real ``quantdesk serve`` from the process's spawn: until ``/health/ready`` answers 200, the
README's first chain call (``GET /api/v1/analytics/chain/NIFTY``), a second one, and the
first call of a few indicators.  *Cold cache* points ``NUMBA_CACHE_DIR`` at an empty
directory (a fresh install); *warm cache* runs the same again on the cache the first run
wrote (every later ``make run``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUANTDESK = str(Path(sys.executable).with_name("quantdesk"))
INDICATORS = ("rsi", "macd", "bbands", "atr", "adx", "supertrend")
READY_TIMEOUT_S = 240.0


@dataclass(slots=True)
class ColdPath:
    demo_load_s: float = 0.0
    ready_s: float = 0.0
    first_chain_s: float = 0.0
    chain_status: int = 0
    second_chain_s: float = 0.0
    chain_ok_s: float = 0.0
    indicators_s: dict[str, float] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(tmp: Path, numba_cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "QUANTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'quantdesk.db'}",
        "QUANTDESK_VAR_DIR": str(tmp),
        "QUANTDESK_LOG_LEVEL": "WARNING",
        "NUMBA_CACHE_DIR": str(numba_cache),
    }


def _token(client: httpx.Client) -> str:
    credentials = {"email": "cold@example.com", "password": "a long enough passphrase"}
    client.post("/api/v1/auth/register", json=credentials).raise_for_status()
    response = client.post("/api/v1/auth/login", json=credentials)
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def measure(numba_cache: Path) -> ColdPath:
    """One ``demo load`` + ``serve`` on a fresh database with ``numba_cache`` as the cache."""
    result = ColdPath()
    with tempfile.TemporaryDirectory(prefix="qd-cold-") as name:
        tmp = Path(name)
        env = _env(tmp, numba_cache)
        started = time.perf_counter()
        subprocess.run(
            [QUANTDESK, "demo", "load"], env=env, check=True, capture_output=True, cwd=tmp
        )
        result.demo_load_s = time.perf_counter() - started
        port = _free_port()
        started = time.perf_counter()
        server = subprocess.Popen(
            [QUANTDESK, "serve", "--no-migrate", "--port", str(port)],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                while True:
                    if time.perf_counter() - started > READY_TIMEOUT_S:
                        raise RuntimeError("quantdesk serve did not become ready")
                    try:
                        if client.get("/health/ready").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.02)
                result.ready_s = time.perf_counter() - started
                headers = {"Authorization": f"Bearer {_token(client)}"}
                for attempt in (1, 2):
                    began = time.perf_counter()
                    response = client.get("/api/v1/analytics/chain/NIFTY", headers=headers)
                    elapsed = time.perf_counter() - began
                    if attempt == 1:
                        result.first_chain_s, result.chain_status = elapsed, response.status_code
                    else:
                        result.second_chain_s = elapsed
                # Before the fix the first answers were 422 "no quote yet": how long until 200.
                while response.status_code != 200:
                    if time.perf_counter() - started > READY_TIMEOUT_S:
                        raise RuntimeError(f"chain never answered 200: {response.text}")
                    time.sleep(0.05)
                    response = client.get("/api/v1/analytics/chain/NIFTY", headers=headers)
                result.chain_ok_s = time.perf_counter() - started
                for indicator in INDICATORS:
                    began = time.perf_counter()
                    client.get(
                        f"/api/v1/analytics/indicators/{indicator}",
                        params={"instrument": "NSE:RELIANCE"},
                        headers=headers,
                    ).raise_for_status()
                    result.indicators_s[indicator] = time.perf_counter() - began
        finally:
            server.terminate()
            server.wait(20)
    return result


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="qd-numba-") as cache:
        cold = measure(Path(cache))
        warm = measure(Path(cache))
    rows = [
        ("`quantdesk demo load` into a fresh database", cold.demo_load_s, warm.demo_load_s),
        ("`quantdesk serve`: spawn to `/health/ready` 200", cold.ready_s, warm.ready_s),
        (
            f"first `GET /api/v1/analytics/chain/NIFTY` (status {cold.chain_status}"
            f"/{warm.chain_status})",
            cold.first_chain_s,
            warm.first_chain_s,
        ),
        ("second chain call", cold.second_chain_s, warm.second_chain_s),
        ("spawn to the first chain answer 200", cold.chain_ok_s, warm.chain_ok_s),
        *(
            (
                f"first `GET /api/v1/analytics/indicators/{name}`",
                cold.indicators_s[name],
                warm.indicators_s[name],
            )
            for name in INDICATORS
        ),
    ]
    lines = [
        "## Cold start: `make run` to the first answers",
        "",
        "`.venv/bin/python -m benchmarks bench_coldstart`. A fresh SQLite database per column, "
        "loaded with `quantdesk demo load`, then a real `quantdesk serve` (demo ticker on), "
        "timed from the process's spawn. *Cold cache*: `NUMBA_CACHE_DIR` is an empty "
        "directory, as after a fresh install; *warm cache*: the same run again on the cache "
        "the first one wrote, as every later `make run`. Indicators over `NSE:RELIANCE` daily "
        "bars, one request each, after the chain calls.",
        "",
        "| step | cold cache (s) | warm cache (s) |",
        "| --- | ---: | ---: |",
        *(f"| {label} | {c:.2f} | {w:.2f} |" for label, c, w in rows),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
