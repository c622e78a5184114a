"""Frames written below ASGI are the frames the ``websockets`` library reads: every length
form of RFC 6455 (7-bit, 16-bit, 64-bit) and its boundaries, any text; and a client that
negotiated ``permessage-deflate`` with a server that offers it still reads them (an
uncompressed message is allowed there, RFC 7692 section 6)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri
from websockets.utils import accept_key

from quantdesk.platform.websocket_wire import (
    UVICORN_WEBSOCKET,
    OutFrame,
    frame_writer,
    text_frame,
)
from tests.support.servers import free_port


def _parsed(data: bytes) -> list[Frame]:
    """What a client reads from ``data``: websockets' own parser, past a handshake."""
    client = ClientProtocol(parse_uri("ws://localhost/"), max_size=None)
    request = client.connect()
    client.send_request(request)
    key = request.headers["Sec-WebSocket-Key"]
    client.receive_data(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n"
    )
    client.events_received()
    client.receive_data(data)
    assert client.parser_exc is None
    return [event for event in client.events_received() if isinstance(event, Frame)]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_every_length_form_reads_back(size: int) -> None:
    payload = b"x" * size
    data = text_frame(payload)
    header = 2 if size < 126 else 4 if size < 65536 else 10
    assert len(data) == header + size
    (frame,) = _parsed(data)
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    assert frame.data == payload


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=300), min_size=1, max_size=5))
def test_frames_back_to_back_read_as_sent(texts: list[str]) -> None:
    frames = [OutFrame(text) for text in texts]
    frames_read = _parsed(b"".join(frame.data for frame in frames))
    assert [bytes(frame.data).decode() for frame in frames_read] == texts


def test_the_wire_bytes_are_built_once() -> None:
    out = OutFrame('{"type":"tick"}')
    assert out.data is out.data
    assert out.data == b"\x81\x0f" + b'{"type":"tick"}'


async def _echo_server(
    options: dict[str, Any],
) -> tuple[uvicorn.Server, asyncio.Task[None], int, list[bool]]:
    seen: list[bool] = []  # for each connection: did it get a writer

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        writer = frame_writer(websocket.scope)
        seen.append(writer is not None)
        text = await websocket.receive_text()
        if writer is None:
            await websocket.send_text(text)
        else:
            writer.write_all([OutFrame(text).data, OutFrame(text.upper()).data])
        await websocket.receive_text()  # until the client leaves

    port = free_port()
    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    return server, task, port, seen


@pytest.mark.parametrize(
    ("options", "writer"),
    [
        (dict(UVICORN_WEBSOCKET), True),
        ({**UVICORN_WEBSOCKET, "ws_per_message_deflate": True}, True),
        ({}, False),  # uvicorn's own protocol: no writer, the app sends through ASGI
    ],
)
async def test_a_real_client_reads_written_frames(options: dict[str, Any], writer: bool) -> None:
    server, task, port, seen = await _echo_server(options)
    try:
        async with connect(f"ws://127.0.0.1:{port}/ws", compression="deflate") as client:
            await client.send("grüße, 1.05")
            assert await client.recv() == "grüße, 1.05"
            if writer:
                assert await client.recv() == "GRÜSSE, 1.05"
        assert seen == [writer]
    finally:
        server.should_exit = True
        await task
