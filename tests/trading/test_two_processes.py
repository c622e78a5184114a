"""Two API processes on one PostgreSQL + Redis: each order is matched exactly once, and when
the process that leads the matcher dies the other takes over within seconds."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from quantdesk.settings import Settings
from quantdesk.trading.matcher import LEASE_NAME
from tests.conftest import TEST_SECRET, base_settings
from tests.support.servers import free_port
from tests.trading.conftest import Desk

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    # The test's own app only drives the API; the two served processes do the matching.
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        update={"trading_matcher": False}
    )


class Served:
    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "QUANTDESK_PROFILE": "test",
            "QUANTDESK_SECRET_KEY": TEST_SECRET,
            "QUANTDESK_DATABASE_URL": settings.database_url,
            "QUANTDESK_REDIS_URL": settings.redis_url or "",
            "QUANTDESK_VAR_DIR": str(tmp),
            "QUANTDESK_DEMO_DATA": "false",
            "QUANTDESK_LOG_LEVEL": "WARNING",
        }
        quantdesk = str(Path(sys.executable).with_name("quantdesk"))
        self.process = subprocess.Popen(
            [quantdesk, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                url = f"http://127.0.0.1:{self.port}/health/ready"
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, "quantdesk serve exited"
            time.sleep(0.2)
        pytest.fail("quantdesk serve did not become ready")

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no shutdown hook releases anything
        self.process.wait(10)


async def lease_holder(desk: Desk) -> int | None:
    """The PostgreSQL backend holding the matcher's advisory lock (None: nobody leads).

    Only that lock: the stream's outbox pruning holds one of its own, by another process."""
    async with desk.ctx.database.session() as db:
        holder: int | None = await db.scalar(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND objsubid = 1"
                " AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(:name, 0)"
            ),
            {"name": f"lease:{LEASE_NAME}"},
        )
    return holder


async def wait_for_leader(desk: Desk, other_than: int | None = None) -> int:
    """Until one living process has held the lease for a second (a killed holder's lock
    lingers until PostgreSQL reads the closed connection)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        holder = await lease_holder(desk)
        if holder is not None and holder != other_than:
            await asyncio.sleep(1.0)
            if await lease_holder(desk) == holder:
                return holder
        else:
            await asyncio.sleep(0.1)
    pytest.fail("no process held the matcher's lease steadily within 15 s")


async def wait_for_fills(desk: Desk, order_id: str, count: int, within_s: float = 15) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if len(await desk.fills(order_id)) >= count:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"no fill #{count} within {within_s} s: {await desk.fills(order_id)}")


async def test_two_processes_match_once_and_take_over(
    settings: Settings, tmp_path: Path, desk: Desk
) -> None:
    processes = []
    for n in range(2):
        (tmp_path / f"p{n}").mkdir()
        processes.append(Served(settings, tmp_path / f"p{n}"))
    try:
        for served in processes:
            await asyncio.to_thread(served.wait_ready)
        leader = await wait_for_leader(desk)
        order = await desk.place(
            side="buy", quantity=900, type="limit", limit_price="100.00", time_in_force="gtc"
        )
        await asyncio.sleep(0.5)
        await desk.quote("SIM:ALPHA", "99.90", 500, "99.95", 300, "99.95")
        await wait_for_fills(desk, order["id"], 1)
        # Kill one process, whichever it is; then start a third and kill the survivor, so
        # the leader certainly dies once while the order is still open.
        processes[0].kill()
        leader = await wait_for_leader(desk)  # the survivor (it may have led all along)
        await desk.quote("SIM:ALPHA", "99.90", 500, "99.95", 300, "99.95")
        await wait_for_fills(desk, order["id"], 2)
        (tmp_path / "p2").mkdir()
        processes.append(Served(settings, tmp_path / "p2"))
        await asyncio.to_thread(processes[2].wait_ready)
        processes[1].kill()  # now the leader, whichever led before
        await wait_for_leader(desk, other_than=leader)
        await desk.quote("SIM:ALPHA", "99.90", 500, "99.95", 300, "99.95")
        await wait_for_fills(desk, order["id"], 3)
        await asyncio.sleep(1.0)  # a duplicate, if any, would have landed by now
        assert await desk.fills(order["id"]) == [("300", "100.00")] * 3
        got = await desk.order(order["id"])
        assert got["status"] == "filled"
        assert got["filled_quantity"] == "900"
    finally:
        for served in processes:
            if served.process.poll() is None:
                served.process.terminate()
                served.process.wait(20)
