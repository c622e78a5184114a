"""The stream over real sockets: the test's app served by uvicorn on loopback, clients on
the ``websockets`` library, and a trading desk (``tests/trading/conftest.py``) to make
order events."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from quantdesk.platform.context import AppContext
from quantdesk.platform.websocket_wire import UVICORN_WEBSOCKET
from quantdesk.settings import Settings
from tests.conftest import base_settings
from tests.support.factories import TestUser
from tests.support.servers import free_port
from tests.trading.conftest import Desk, desk, sim_market

__all__ = ["desk", "sim_market"]

# Timings shortened so the tests wait for seconds, not for the production intervals.
FAST = {
    "stream_revalidate_s": 0.2,
    "stream_reconcile_s": 0.3,
    "stream_auth_timeout_s": 1.0,
    "stream_heartbeat_s": 2.0,
    "stream_subscribe_rate": "1000/second",
}


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(update=FAST)


class Served:
    """``app`` behind a real uvicorn server on a free loopback port, in this event loop,
    with the WebSocket protocol ``quantdesk serve`` gives it (``websocket``: other options,
    e.g. ``{}`` for uvicorn's own, which sends through ASGI)."""

    def __init__(self, app: FastAPI, websocket: Mapping[str, Any] = UVICORN_WEBSOCKET) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            log_level="warning",
            **websocket,
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/stream"

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[Served]:
    server = Served(app)
    await server.start()
    yield server
    await server.stop()


# The two ways a connection sends: frames written to the transport (``quantdesk serve``)
# and ASGI messages (any other server).
SEND_PATHS: dict[str, Mapping[str, Any]] = {"frames": UVICORN_WEBSOCKET, "asgi": {}}


@pytest.fixture(params=sorted(SEND_PATHS))
async def served_either_way(app: FastAPI, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    """``served``, once for each of ``SEND_PATHS``."""
    server = Served(app, SEND_PATHS[request.param])
    await server.start()
    yield server
    await server.stop()


class Client:
    """One stream connection with helpers that wait for frames (never for a fixed time)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def send(self, **frame: Any) -> None:
        await self.ws.send(orjson.dumps(frame).decode())

    async def recv(self, within_s: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(within_s):
            raw = await self.ws.recv()
        document: dict[str, Any] = orjson.loads(raw)
        self.frames.append(document)
        return document

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], within_s: float = 5.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within_s
        while True:
            document = await self.recv(max(0.01, deadline - time.monotonic()))
            if predicate(document):
                return document

    async def op(self, **frame: Any) -> dict[str, Any]:
        """Send an operation and wait for its ack, error or pong."""
        await self.send(**frame)
        return await self.until(
            lambda f: f["type"] in {"ack", "error", "pong"} and f.get("id") == frame.get("id")
        )

    async def closed(self, within_s: float = 5.0) -> int | None:
        """Read until the server closes; the close code."""
        try:
            async with asyncio.timeout(within_s):
                while True:
                    self.frames.append(orjson.loads(await self.ws.recv()))
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None

    async def close(self) -> None:
        await self.ws.close()


async def ticket(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await http.post("/api/v1/stream/tickets", headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["ticket"])


async def open_stream(
    url: str, http: httpx.AsyncClient, user: TestUser | dict[str, str], **options: Any
) -> Client:
    """An authenticated connection: a ticket minted through ``http``, sent as frame one."""
    headers = user if isinstance(user, dict) else user.headers
    # Minted before connecting: the server allows the first frame 5 s, and on a loaded CI
    # machine a request can take a good part of that.
    minted = await ticket(http, headers)
    client = Client(await connect(url, **options))
    ack = await client.op(op="auth", id="a1", ticket=minted)
    assert ack["type"] == "ack", ack
    return client


async def slow_client(served: Served, desk: Desk) -> Client:
    """A client behind a narrow pipe: small socket buffers at both ends (loopback's grow to
    megabytes), so a client that stops reading soon stops the server's sends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", served.port))
    client = Client(await connect(served.url, sock=sock, max_queue=1))
    local = sock.getsockname()
    for protocol in served.server.server_state.connections:
        transport = getattr(protocol, "transport", None)
        if transport is not None and transport.get_extra_info("peername") == local:
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            transport.set_write_buffer_limits(high=4096)
    await client.send(op="auth", id="a", ticket=await ticket(desk.client, desk.trader.headers))
    await client.until(lambda f: f["type"] == "ack")
    return client


def conflated(ctx: AppContext) -> float:
    """Ticks and books the server has replaced by newer ones before a client read them."""
    return ctx.metrics.registry.get_sample_value("quantdesk_stream_ticks_conflated_total") or 0


def private_events(frames: list[dict[str, Any]], kind: str | None = None) -> list[dict[str, Any]]:
    return [f for f in frames if "seq" in f and (kind is None or f["type"] == kind)]


__all__ += [
    "Client",
    "Desk",
    "Served",
    "conflated",
    "open_stream",
    "private_events",
    "slow_client",
    "ticket",
]
