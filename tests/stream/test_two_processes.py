"""Two processes on one PostgreSQL + Redis (``quantdesk serve`` in a subprocess, and the test's
own app behind uvicorn): a ticket minted through one is good on the other, ticks published
in one reach clients of the other, a client whose process is killed mid-stream resumes on the
other and sees every order event exactly once and in order, and a Redis restart loses no
private event (they never travel through Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from quantdesk.marketdata.domain import Quote
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.settings import Settings
from quantdesk.stream import outbox
from tests.conftest import TEST_SECRET, base_settings
from tests.stream.conftest import FAST, Client, Desk, Served, ticket
from tests.support.servers import RedisServer, free_port

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    # The test's own app drives the API; the two served processes serve the stream.
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        update={**FAST, "trading_matcher": False}
    )


class Process:
    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.port = free_port()
        tmp.mkdir()
        env = {
            **os.environ,
            "QUANTDESK_PROFILE": "test",
            "QUANTDESK_SECRET_KEY": TEST_SECRET,
            "QUANTDESK_DATABASE_URL": settings.database_url,
            "QUANTDESK_REDIS_URL": settings.redis_url or "",
            "QUANTDESK_VAR_DIR": str(tmp),
            "QUANTDESK_DEMO_DATA": "false",
            "QUANTDESK_LOG_LEVEL": "WARNING",
            "QUANTDESK_TRADING_MATCHER": "false",
            **{f"QUANTDESK_{name.upper()}": str(value) for name, value in FAST.items()},
        }
        quantdesk = str(Path(sys.executable).with_name("quantdesk"))
        self.process = subprocess.Popen(
            [quantdesk, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/stream"

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                url = f"http://127.0.0.1:{self.port}/health/ready"
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            assert self.process.poll() is None, "quantdesk serve exited"
            time.sleep(0.2)
        pytest.fail("quantdesk serve did not become ready")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


class Follower:
    """A client that follows the orders channel and, when its connection drops, resumes on
    whichever process is alive, from the last sequence number it saw."""

    def __init__(self, desk: Desk, urls: list[tuple[str, Callable[[], bool]]]) -> None:
        self.desk = desk
        self.urls = urls
        self.seqs: list[int] = []
        self.client: Client | None = None
        self.reconnects = 0
        self.progress = asyncio.Event()  # set on every order event

    async def connect(self) -> None:
        for url, alive in self.urls:
            if not alive():
                continue
            try:
                client = Client(await connect(url))
            except (OSError, InvalidHandshake):
                continue  # killed, and not reaped yet
            await client.send(
                op="auth", id="a", ticket=await ticket(self.desk.client, self.desk.trader.headers)
            )
            await client.until(lambda f: f["type"] == "ack")
            cursor: dict[str, object] = {"channel": "orders", "account_id": self.desk.account_id}
            if self.seqs:
                cursor["from_seq"] = self.seqs[-1] + 1
            await client.op(op="resume", id="r", cursors=[cursor])
            self.client = client
            return
        pytest.fail("no process to resume on")

    async def run(self) -> None:
        while True:
            assert self.client is not None
            try:
                frame = await self.client.recv(within_s=3600)
            except ConnectionClosed:
                self.reconnects += 1
                await self.connect()
                continue
            if frame["type"] == "order_update":
                self.seqs.append(frame["seq"])
                self.progress.set()


async def _stored_seqs(desk: Desk) -> list[int]:
    async with desk.ctx.database.session() as db:
        events = await outbox.events_of_account(
            db, uuid.UUID(desk.account_id), from_seq=1, types=["order_update"], limit=10_000
        )
    return [e.seq for e in events]


async def _until_all_seen(follower: Follower, desk: Desk, within_s: float = 15) -> list[int]:
    deadline = time.monotonic() + within_s
    expected = await _stored_seqs(desk)
    while time.monotonic() < deadline and follower.seqs[-1:] != expected[-1:]:
        follower.progress.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await follower.progress.wait()
    return expected


async def _place(desk: Desk) -> None:
    await desk.place(side="buy", quantity=1, type="limit", limit_price="90.00", time_in_force="gtc")


async def test_resume_on_the_other_process_and_through_a_redis_restart(
    settings: Settings, tmp_path: Path, desk: Desk, served: Served, redis_server: RedisServer
) -> None:
    other = Process(settings, tmp_path / "p0")
    try:
        await asyncio.to_thread(other.wait_ready)
        # Ticks published through the test's app reach a client of the other process.
        watcher = Client(await connect(other.url))
        await watcher.send(op="auth", id="a", ticket=await ticket(desk.client, desk.trader.headers))
        await watcher.until(lambda f: f["type"] == "ack")
        await watcher.op(op="subscribe", id="t", channel="ticks", mode="ltp", instruments=["SIM:X"])
        # The ack promises every tick from then on: the other process's Redis subscription is
        # confirmed before it acks, so one quote published now is enough.
        quotes = QuoteService(desk.ctx.cache, desk.ctx.bus)
        now = dt.datetime.now(dt.UTC)
        await quotes.publish_one(Quote(key="SIM:X", last=Decimal("12.5"), ts=now))
        tick = await watcher.until(lambda f: f["type"] == "tick" and not f.get("snapshot"))
        assert tick.get("last") == "12.5"

        follower = Follower(desk, [(other.url, other.alive), (served.url, lambda: True)])
        await follower.connect()
        following = asyncio.create_task(follower.run())
        for n in range(12):
            await _place(desk)
            if n == 4:
                other.process.kill()  # SIGKILL mid-stream: no goodbye, no 1012
        expected = await _until_all_seen(follower, desk)
        assert follower.reconnects == 1
        assert follower.seqs == expected  # every order event, once, in order
        assert len(expected) == 12 * 2

        # Redis goes away and comes back while orders keep coming: nothing is lost.
        redis_server.stop()
        for _ in range(2):
            await _place(desk)
        redis_server.start()
        await _place(desk)
        expected = await _until_all_seen(follower, desk)
        assert follower.seqs == expected
        assert len(expected) == 15 * 2
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
    finally:
        other.stop()
