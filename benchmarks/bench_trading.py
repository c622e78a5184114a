"""Paper trading: the pure matching engine against a plain-Python order book, and orders
through the API (placement acknowledgement, quote-to-fill) on SQLite and PostgreSQL.

Engine: one stream of 100,000 limit orders (random side, price within 10 ticks of the
mid) with a fresh quote every 10 orders, matched by quantdesk's ``MatchingEngine`` (takers
against the quote, makers when it crosses them, size tracking, Decimals) and by the
reference: a price-time-priority limit order book in plain Python (heap of price levels,
deque per level, orders matched against each other) — the kind of book that does 70-90k
orders/s.  Both on one core, same process, alternately.

API: the app as ``quantdesk serve`` runs it, one uvicorn worker, loaded by wrk from outside the
process (``bench_http``: wrk and the server pinned to a core each), resting limit orders from
200 traders in turn, each on an account of their own, under the API's real rate limits:
orders/s and the acknowledgement's p50/p99.  (Driving it with an in-process httpx client
measured the client as much as the server: it spent a third of the one core.)  Quote-to-fill:
a quote that crosses a resting order is published on the bus; the time until the matcher has
committed the fill, p50/p99 over 200 quotes, in-process.

Knobs for a shorter run: ``QD_BENCH_TRADING_ENGINE=0`` skips the engine,
``QD_BENCH_TRADING_BACKENDS`` names the API's backends (``postgres,sqlite``),
``QD_BENCH_TRADING_QUOTES`` the quote-to-fill samples, ``QD_BENCH_HTTP_SECONDS`` wrk's run;
``QD_BENCH_TRADING_PROFILE=<dir>`` records the served process with py-spy over the wrk run
(collapsed stacks, a file per backend).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
from tests.support.servers import PostgresServer, RedisServer

from benchmarks import bench_http
from quantdesk.app import create_app
from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, Quote
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform import migrations
from quantdesk.security.principal import Role
from quantdesk.settings import Settings
from quantdesk.trading.engine.matching import MatchingEngine
from quantdesk.trading.engine.types import (
    InstrumentSpec,
    Order,
    OrderType,
    QuoteTick,
    Side,
)
from quantdesk.users.auth import create_user

ORDERS = 100_000
TICK = Decimal("0.05")
T0 = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
TRADERS = 200
BENCH_SECRET = "bench-secret-key-that-is-long-enough-000000"  # noqa: S105
QUOTES = int(os.environ.get("QD_BENCH_TRADING_QUOTES", "200"))
BACKENDS = os.environ.get("QD_BENCH_TRADING_BACKENDS", "postgres,sqlite").split(",")
ENGINE = os.environ.get("QD_BENCH_TRADING_ENGINE", "1") != "0"
PROFILE = os.environ.get("QD_BENCH_TRADING_PROFILE")
PASSWORD = "a sufficiently long passphrase"  # noqa: S105 - benchmark data


# --- the engine ---------------------------------------------------------------------------
def _stream(seed: int = 7) -> list[tuple[bool, Decimal, Decimal]]:
    rng = random.Random(seed)
    return [
        (
            rng.random() < 0.5,
            Decimal(100) + TICK * rng.randint(-10, 10),
            Decimal(rng.randint(1, 20)),
        )
        for _ in range(ORDERS)
    ]


def _quantdesk(stream: list[tuple[bool, Decimal, Decimal]]) -> float:
    engine = MatchingEngine(InstrumentSpec("SIM:X", TICK))
    start = time.perf_counter()
    for i, (buy, price, qty) in enumerate(stream):
        if i % 10 == 0:
            mid = Decimal(100) + TICK * ((i // 10) % 9 - 4)
            engine.on_quote(
                QuoteTick(mid - TICK, Decimal(50), mid + TICK, Decimal(50), T0, f"q{i}", mid)
            )
        side = Side.BUY if buy else Side.SELL
        engine.add(Order(f"o{i}", side, OrderType.LIMIT, qty, limit_price=price, priority=i), T0)
    return time.perf_counter() - start


class _ReferenceBook:
    """Price-time priority, orders matched against each other (plain Python)."""

    def __init__(self) -> None:
        self.bids: list[tuple[Decimal, int]] = []  # (-price, seq) heap
        self.asks: list[tuple[Decimal, int]] = []
        self.levels: dict[tuple[bool, Decimal], deque[list[Decimal]]] = {}  # [seq, qty]

    def add(self, seq: int, buy: bool, price: Decimal, qty: Decimal) -> None:
        book, opposite = (self.bids, self.asks) if buy else (self.asks, self.bids)
        while qty > 0 and opposite:
            best = opposite[0][0]
            best_price = best if buy else -best  # bids are keyed by -price
            if (buy and best_price > price) or (not buy and best_price < price):
                break
            level = self.levels[(not buy, best_price)]
            resting = level[0]
            traded = min(qty, resting[1])
            resting[1] -= traded
            qty -= traded
            if resting[1] == 0:
                level.popleft()
                if not level:
                    del self.levels[(not buy, best_price)]
                    heapq.heappop(opposite)
        if qty > 0:
            key = (buy, price)
            if key not in self.levels:
                self.levels[key] = deque()
                heapq.heappush(book, (-price if buy else price, seq))
            self.levels[key].append([Decimal(seq), qty])


def _reference(stream: list[tuple[bool, Decimal, Decimal]]) -> float:
    book = _ReferenceBook()
    start = time.perf_counter()
    for i, (buy, price, qty) in enumerate(stream):
        book.add(i, buy, price, qty)
    return time.perf_counter() - start


def engine_rows() -> list[tuple[str, float]]:
    stream = _stream()
    ours, theirs = [], []
    for _ in range(3):
        ours.append(_quantdesk(stream))
        theirs.append(_reference(stream))
    return [
        ("quantdesk MatchingEngine (quotes + makers, Decimal)", ORDERS / min(ours)),
        ("plain-Python price-time order book (reference)", ORDERS / min(theirs)),
    ]


# --- through the API -----------------------------------------------------------------------
def _settings(database_url: str, root: Path, redis_url: str | None) -> Settings:
    return Settings(
        profile="test",
        database_url=database_url,
        redis_url=redis_url,
        var_dir=root / "var",
        secret_key=BENCH_SECRET,
        rate_limit_api="1000000/second",
        rate_limit_orders="1000000/second",
        rate_limit_login_ip="1000000/minute",
        rate_limit_login_account="1000000/minute",
        log_level="ERROR",
        demo_data=False,
        _env_file=None,
    )


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def _seed(settings: Settings) -> None:
    """The instrument and its quote, in the database and the shared cache."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        ctx = app.state.ctx
        async with ctx.database.session(immediate=True) as db:
            await InstrumentService(db).upsert_many(
                [
                    Instrument(
                        Exchange.SIM, "ALPHA", "Alpha", InstrumentType.EQUITY, "INR", tick_size=TICK
                    )
                ]
            )
        await QuoteService(ctx.cache, ctx.bus).publish([_quote("100.05", 0, Decimal(300))])


def _quote(ask: str, n: int, size: Decimal = Decimal(10_000)) -> Quote:
    a = Decimal(ask)
    return Quote(
        "SIM:ALPHA", a, dt.datetime.now(dt.UTC), bid=a - TICK, ask=a,
        bid_size=size, ask_size=size, source_id=f"bench-{n}",
    )  # fmt: skip


async def _quote_to_fill(settings: Settings) -> dict[str, float]:
    """From a crossing quote on the bus to the matcher's committed fill, in-process."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        ctx = app.state.ctx
        async with ctx.database.session(immediate=True) as db:  # a writer, as the matcher is
            await create_user(
                ctx, db, email="fills@example.com", password=PASSWORD, role=Role.TRADER
            )
        quotes = QuoteService(ctx.cache, ctx.bus)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = await client.post(
                "/api/v1/auth/login", json={"email": "fills@example.com", "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            opened = await client.post("/api/v1/accounts", json={}, headers=headers)
            url = f"/api/v1/accounts/{opened.json()['id']}/orders"
            matcher = ctx.extensions["trading_matcher"]
            fills: list[float] = []
            cross = {"instrument": "SIM:ALPHA", "side": "buy", "quantity": 1, "type": "limit",
                     "limit_price": "100.00", "time_in_force": "gtc"}  # fmt: skip
            for n in range(QUOTES):
                await quotes.publish([_quote("100.10", 2 * n + 1)])
                await client.post(url, json=cross, headers=headers)  # rests below the ask
                await asyncio.sleep(0.002)
                await matcher.idle()
                before = matcher.stats.fills
                t = time.perf_counter()
                await quotes.publish([_quote("99.95", 2 * n + 2)])
                while matcher.stats.fills == before:  # noqa: ASYNC110 - a busy wait, for resolution
                    await asyncio.sleep(0)
                fills.append(time.perf_counter() - t)
    return {"fill_p50": _pct(fills, 50), "fill_p99": _pct(fills, 99)}


def _env(settings: Settings) -> dict[str, str]:
    """The served app's settings: as ``quantdesk serve`` runs (JSON access logs at INFO, the
    API's real rate limits), sign-up limits lifted to set the traders up."""
    env = {
        "QUANTDESK_DATABASE_URL": settings.database_url,
        "QUANTDESK_VAR_DIR": str(settings.var_dir),
        "QUANTDESK_SECRET_KEY": BENCH_SECRET,
        "QUANTDESK_LOG_LEVEL": "INFO",
        "QUANTDESK_LOG_JSON": "true",
        "QUANTDESK_DEMO_DATA": "false",
        "QUANTDESK_RATE_LIMIT_REGISTER_IP": "100000/hour",
        "QUANTDESK_RATE_LIMIT_LOGIN_IP": "100000/minute",
    }
    if settings.redis_url:
        env["QUANTDESK_REDIS_URL"] = settings.redis_url
    return env


def _traders(base_url: str) -> list[tuple[str, str]]:
    """(access token, orders URL) of ``TRADERS`` new users with an account each."""

    def one(index: int) -> tuple[str, str]:
        person = {"email": f"trader{index}@example.com", "password": f"{PASSWORD} {index}"}
        with httpx.Client(base_url=base_url, timeout=60) as client:
            client.post("/api/v1/auth/register", json=person).raise_for_status()
            token = client.post("/api/v1/auth/login", json=person).raise_for_status()
            bearer = str(token.json()["access_token"])
            opened = client.post(
                "/api/v1/accounts", json={}, headers={"Authorization": f"Bearer {bearer}"}
            ).raise_for_status()
            return bearer, f"/api/v1/accounts/{opened.json()['id']}/orders"

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(TRADERS)))


def _placement_script(path: Path, traders: list[tuple[str, str]]) -> Path:
    """A wrk script: each request a resting limit buy, from the traders in turn."""
    listed = ",\n".join(f'  {{"{token}", "{url}"}}' for token, url in traders)
    order = {"instrument": "SIM:ALPHA", "side": "buy", "quantity": 1, "type": "limit",
             "limit_price": "95.00", "time_in_force": "gtc"}  # fmt: skip
    body = orjson.dumps(order).decode()
    path.write_text(
        f"local traders = {{\n{listed}\n}}\n"
        f"local body = '{body}'\n"
        "local turn = 0\n"
        "request = function()\n"
        "  turn = turn % #traders + 1\n"
        "  local trader = traders[turn]\n"
        '  return wrk.format("POST", trader[2], {["Authorization"] = "Bearer " .. trader[1],\n'
        '    ["Content-Type"] = "application/json"}, body)\n'
        "end\n"
    )
    return path


def _profiler(pid: int, backend: str) -> subprocess.Popen[bytes] | None:
    """py-spy recording the served process over wrk's warm-up and run, when asked for."""
    here = str(Path(sys.executable).parent)  # the virtualenv's, when it is not on PATH
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=here)
    if PROFILE is None or py_spy is None:
        return None
    out = Path(PROFILE) / f"trading-{backend}.txt"
    seconds = str(bench_http.DURATION_S + 2)
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--duration", seconds, "--rate", "200",
         "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _placements(settings: Settings, root: Path) -> bench_http.WrkResult:
    """Orders placed per second through ``quantdesk serve`` (one worker), loaded by wrk."""
    process, port = bench_http.serve(
        "quantdesk.app:create_app", _env(settings), ("--no-server-header",)
    )
    try:
        base = f"http://127.0.0.1:{port}"
        script = _placement_script(root / "orders.lua", _traders(base))
        backend = "sqlite" if settings.database_url.startswith("sqlite") else "postgres"
        profiler = _profiler(process.pid, backend)
        try:
            return bench_http.run_wrk(f"{base}/", script)  # the script names each path
        finally:
            if profiler is not None:
                profiler.wait(30)
    finally:
        process.terminate()
        process.wait(10)


def _measure(settings: Settings, root: Path) -> dict[str, float]:
    migrations.upgrade(settings, "head")
    asyncio.run(_seed(settings))
    placed = _placements(settings, root)
    return {
        "orders_per_s": placed.requests_per_s,
        "ack_p50": placed.p50_ms / 1e3,
        "ack_p99": placed.p99_ms / 1e3,
        **asyncio.run(_quote_to_fill(settings)),
    }


def api_rows() -> list[tuple[str, dict[str, float]]]:
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        if "postgres" in BACKENDS:
            pg, redis = PostgresServer(), RedisServer()
            pg.start()
            redis.start()
            try:
                pg.psql("CREATE DATABASE bench")
                settings = _settings(pg.url("bench"), root / "pg", redis.url(0))
                rows.append(("PostgreSQL + Redis", _measure(settings, root)))
            finally:
                pg.destroy()
                redis.stop()
        if "sqlite" in BACKENDS:
            settings = _settings(f"sqlite+aiosqlite:///{root / 'bench.db'}", root, None)
            rows.append(("SQLite, in-process bus", _measure(settings, root)))
    return rows


def run() -> str:
    lines = [
        "## Paper trading: matching engine and orders through the API",
        "",
        f"Engine: {ORDERS:,} limit orders, a new quote every 10 (`python -m benchmarks trading`).",
        "",
        "| engine | orders/s (one core) |",
        "| --- | ---: |",
    ]
    for name, rate in engine_rows() if ENGINE else []:
        lines.append(f"| {name} | {rate:,.0f} |")
    lines += [
        "",
        f"API: `quantdesk serve`'s app in one uvicorn worker, loaded by wrk from the other core "
        f"(1 thread, {bench_http.CONNECTIONS} connections, {bench_http.DURATION_S} s): resting "
        f"limit orders from {TRADERS} traders in turn, one account each, under the API's real "
        "rate limits; acknowledgement p50/p99 as wrk measures them.  Quote-to-fill: in-process, "
        f"over {QUOTES} crossing quotes on the bus, until the matcher has committed the fill.",
        "",
        "| backend | orders/s | ack p50 | ack p99 | quote-to-fill p50 | quote-to-fill p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, f in api_rows():
        lines.append(
            f"| {name} | {f['orders_per_s']:,.0f} | {f['ack_p50'] * 1e3:.1f} ms | "
            f"{f['ack_p99'] * 1e3:.1f} ms | {f['fill_p50'] * 1e3:.2f} ms | "
            f"{f['fill_p99'] * 1e3:.2f} ms |"
        )
    lines += ["", "Goals (issue 11): API >= 1,000 orders/s with p99 < 50 ms on PostgreSQL; "
              "quote-to-fill p99 < 10 ms; the engine above the plain-Python book."]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
