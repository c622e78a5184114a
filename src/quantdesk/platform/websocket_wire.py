"""Server WebSocket frames written straight to the socket, below ASGI.

Why: the stream fans one tick out to a thousand clients.  Through ASGI each copy is a
``websocket.send`` message: Starlette's and uvicorn's send coroutines, the websockets
sans-I/O protocol framing it, about 40 µs of the event loop per client per tick, which on
two cores caps one process near 20,000 ticks/s.  A server frame is never masked (RFC 6455
section 5.1), so the bytes of a tick's frame are the same for every client: they are built
once per tick (``OutFrame``) and written to each client's transport (``FrameWriter``), a
few microseconds per client.

``FrameProtocol`` is uvicorn's own sans-I/O WebSocket protocol with one addition: the
ASGI scope's ``extensions`` carry ``quantdesk.frames``, the connection's ``FrameWriter``.
``quantdesk serve`` runs uvicorn with it (``UVICORN_WEBSOCKET``); under any other server
the extension is absent and the stream sends through ASGI as before (``frame_writer``
returns ``None``).  The handshake, reading, pings and the close stay uvicorn's: only
whole data frames are written here, each in one ``write``, so they never interleave with
the protocol's own frames.

Hand-written because no library exposes this: the frame header is RFC 6455's fixed
layout (FIN and the text opcode, then a 7-, 16- or 64-bit length) and the extension is a
dozen lines over uvicorn's class.  Frames are never compressed, so ``permessage-deflate``
is not offered (``ws_per_message_deflate=False``), as Kite's ticker does not compress.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

EXTENSION: Final = "quantdesk.frames"

# The options ``quantdesk serve`` (and the tests and benchmarks that stand in for it) give
# uvicorn for WebSockets.
UVICORN_WEBSOCKET: Final[Mapping[str, Any]] = {
    "ws": "quantdesk.platform.websocket_wire:FrameProtocol",
    "ws_per_message_deflate": False,
}

_TEXT_FIN: Final = 0x81  # FIN set, opcode 1 (text), no extension bits


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame carrying ``payload`` (UTF-8)."""
    size = len(payload)
    if size < 126:
        return bytes((_TEXT_FIN, size)) + payload
    if size < 1 << 16:
        return bytes((_TEXT_FIN, 126)) + size.to_bytes(2, "big") + payload
    return bytes((_TEXT_FIN, 127)) + size.to_bytes(8, "big") + payload


class OutFrame:
    """A server frame's text, and its wire bytes built on first use, shared by every
    connection it goes to."""

    __slots__ = ("_data", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._data: bytes | None = None

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = text_frame(self.text.encode())
        return self._data


class FrameWriter:
    """Writes whole frames to one accepted connection's transport."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: FrameProtocol) -> None:
        self._protocol = protocol

    @property
    def gone(self) -> bool:
        """Closing or closed: nothing more can be sent."""
        protocol = self._protocol
        return protocol.close_sent or protocol.disconnected or protocol.transport.is_closing()

    @property
    def paused(self) -> bool:
        """The transport's buffer is over its high-water mark: the client reads slowly."""
        return not self._protocol.writable.is_set()

    def ready(self) -> bool:
        """A frame written now goes out without growing a slow client's buffer (``paused``
        and ``gone`` in one, for the fan-out's hot loop)."""
        protocol = self._protocol
        return (
            protocol.writable.is_set()
            and not protocol.close_sent
            and not protocol.disconnected
            and not protocol.transport.is_closing()
        )

    def write(self, data: bytes) -> None:
        self._protocol.transport.write(data)

    def write_all(self, frames: Sequence[bytes]) -> None:
        self._protocol.transport.write(b"".join(frames))

    async def writable(self) -> None:
        """Until the buffer drains below its low-water mark, or the connection is lost."""
        await self._protocol.writable.wait()


class FrameProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, its ``FrameWriter`` in the ASGI scope."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None:  # None: the handshake was refused before a scope was made
            scope["extensions"][EXTENSION] = {"writer": FrameWriter(self)}


def frame_writer(scope: Mapping[str, Any]) -> FrameWriter | None:
    """The connection's ``FrameWriter``, when the server is ``FrameProtocol``."""
    extension = (scope.get("extensions") or {}).get(EXTENSION)
    writer = extension.get("writer") if isinstance(extension, dict) else None
    return writer if isinstance(writer, FrameWriter) else None
