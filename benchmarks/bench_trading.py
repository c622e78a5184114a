"""Paper trading: the pure matching engine against a plain-Python order book, and orders
through the API (placement acknowledgement, quote-to-fill) on SQLite and PostgreSQL.

Engine: one stream of 100,000 limit orders (random side, price within 10 ticks of the
mid) with a fresh quote every 10 orders, matched by quantdesk's ``MatchingEngine`` (takers
against the quote, makers when it crosses them, size tracking, Decimals) and by the
reference: a price-time-priority limit order book in plain Python (heap of price levels,
deque per level, orders matched against each other) — the kind of book that does 70-90k
orders/s.  Both on one core, same process, alternately.

API: one app in-process (httpx over ASGI, the full middleware stack), 32 concurrent
clients, each on its own account, placing resting limit orders: orders/s and the acknowledgement's
p50/p99.  Quote-to-fill: a quote that crosses a resting order is published on the bus; the
time until the matcher has committed the fill, p50/p99 over 200 quotes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import random
import statistics
import tempfile
import time
from collections import deque
from decimal import Decimal
from pathlib import Path

import httpx
from tests.support.servers import PostgresServer, RedisServer

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
API_ORDERS = 2_000
CLIENTS = 32
QUOTES = 200
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
        secret_key="bench-secret-key-that-is-long-enough-000000",  # noqa: S106
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


async def _api(settings: Settings) -> dict[str, float]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        ctx = app.state.ctx
        async with ctx.database.session() as db:
            await InstrumentService(db).upsert_many(
                [
                    Instrument(
                        Exchange.SIM, "ALPHA", "Alpha", InstrumentType.EQUITY, "INR", tick_size=TICK
                    )
                ]
            )
            await create_user(
                ctx, db, email="bench@example.com", password=PASSWORD, role=Role.TRADER
            )
        quotes = QuoteService(ctx.cache, ctx.bus)
        now = dt.datetime.now(dt.UTC)

        def quote(ask: str, n: int) -> Quote:
            a = Decimal(ask)
            return Quote(
                "SIM:ALPHA", a, dt.datetime.now(dt.UTC), bid=a - TICK, ask=a,
                bid_size=Decimal(10_000), ask_size=Decimal(10_000), source_id=f"bench-{n}",
            )  # fmt: skip

        await quotes.publish(
            [
                Quote(
                    "SIM:ALPHA",
                    Decimal(100),
                    now,
                    bid=Decimal("99.95"),
                    ask=Decimal("100.05"),
                    bid_size=Decimal(500),
                    ask_size=Decimal(300),
                )
            ]
        )
        transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = await client.post(
                "/api/v1/auth/login", json={"email": "bench@example.com", "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            # One account per client, as 32 traders would (one account's orders serialise
            # on its row lock by design).
            urls = []
            for _ in range(CLIENTS):
                opened = await client.post("/api/v1/accounts", json={}, headers=headers)
                urls.append(f"/api/v1/accounts/{opened.json()['id']}/orders")
            url = urls[0]
            body = {"instrument": "SIM:ALPHA", "side": "buy", "quantity": 1, "type": "limit",
                    "limit_price": "95.00", "time_in_force": "gtc"}  # fmt: skip
            acks: list[float] = []
            queue = list(range(API_ORDERS))

            async def worker(mine: str) -> None:
                while queue:
                    queue.pop()
                    t = time.perf_counter()
                    r = await client.post(mine, json=body, headers=headers)
                    acks.append(time.perf_counter() - t)
                    assert r.status_code == 201, r.text

            for _ in range(50):  # warm-up
                await client.post(url, json=body, headers=headers)
            start = time.perf_counter()
            await asyncio.gather(*(worker(mine) for mine in urls))
            elapsed = time.perf_counter() - start
            for mine in urls:
                await client.delete(mine, headers=headers)
            matcher = ctx.extensions["trading_matcher"]
            await asyncio.sleep(0.5)
            fills: list[float] = []
            cross = dict(body, limit_price="100.00", quantity=1)
            for n in range(QUOTES):
                await quotes.publish([quote("100.10", 2 * n)])
                await client.post(url, json=cross, headers=headers)  # rests below the ask
                await asyncio.sleep(0.002)
                await matcher.idle()
                before = matcher.stats.fills
                t = time.perf_counter()
                await quotes.publish([quote("99.95", 2 * n + 1)])
                while matcher.stats.fills == before:  # noqa: ASYNC110 - a busy wait, for resolution
                    await asyncio.sleep(0)
                fills.append(time.perf_counter() - t)
    return {
        "orders_per_s": API_ORDERS / elapsed,
        "ack_p50": _pct(acks, 50),
        "ack_p99": _pct(acks, 99),
        "fill_p50": _pct(fills, 50),
        "fill_p99": _pct(fills, 99),
    }


def api_rows() -> list[tuple[str, dict[str, float]]]:
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        pg, redis = PostgresServer(), RedisServer()
        pg.start()
        redis.start()
        try:
            pg.psql("CREATE DATABASE bench")
            settings = _settings(pg.url("bench"), root / "pg", redis.url(0))
            migrations.upgrade(settings, "head")
            rows.append(("PostgreSQL + Redis", asyncio.run(_api(settings))))
        finally:
            pg.destroy()
            redis.stop()
        settings = _settings(f"sqlite+aiosqlite:///{root / 'bench.db'}", root, None)
        migrations.upgrade(settings, "head")
        rows.append(("SQLite, in-process bus", asyncio.run(_api(settings))))
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
    for name, rate in engine_rows():
        lines.append(f"| {name} | {rate:,.0f} |")
    lines += [
        "",
        f"API: {API_ORDERS:,} order placements from {CLIENTS} concurrent clients (one account "
        "each), one "
        f"process, httpx over ASGI; quote-to-fill over {QUOTES} crossing quotes on the bus.",
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
