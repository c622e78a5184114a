"""Kite's ticker WebSocket (``wss://ws.kite.trade?api_key=…&access_token=…``), asyncio.

Kite allows 3,000 instruments per connection and 3 connections per API key.  ``KiteTicker``
keeps up to three ``_Connection`` workers; ``subscribe(wanted)`` takes the whole wanted set
(token -> mode), assigns new tokens to the first connection with room (a token stays on its
connection while it is wanted, so a change never reshuffles the others) and each worker
sends only the difference: ``{"a": "unsubscribe"}``, ``{"a": "subscribe"}`` and
``{"a": "mode", "v": [mode, tokens]}`` (Kite's default mode after a subscribe is ``quote``).

Each worker reconnects after any failure with jittered exponential backoff (a ceiling of 1 s
doubling to 60 s, the delay drawn between half the ceiling and all of it) and resubscribes
everything it holds; the ceiling restarts from 1 s after a connection that lived 60 s.
Kite sends a heartbeat (a 1-byte frame) every second, so a connection silent for
``idle_timeout_s`` is taken as dead and replaced.
A handshake refused with HTTP 403 means the access token is no longer good (the 06:00 IST
flush, or a login elsewhere): the token is marked refused in the store and the worker waits
for the next login, polling the store, instead of hammering Kite in a reconnect loop.

A malformed binary frame is counted, logged (its size and the reason, never its bytes)
and dropped; the connection stays up.  The connection URL carries the credentials, as Kite's
protocol requires, so it is never logged: the WebSocket library's logger is held at INFO
(its DEBUG lines print the request line) and failures are described by type and status only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from quantdesk.marketdata.providers.kite.auth import TokenSource
from quantdesk.marketdata.providers.kite.protocol import (
    MAX_CONNECTIONS_PER_KEY,
    MAX_TOKENS_PER_CONNECTION,
    MalformedFrame,
    Mode,
    Tick,
    mode_message,
    parse_frame,
    parse_text,
    subscribe_message,
    unsubscribe_message,
)
from quantdesk.platform.logging import get_logger
from quantdesk.platform.tasks import cancel_and_wait

log = get_logger(__name__)
KITE_TICKER_URL: Final = "wss://ws.kite.trade"
TickHandler = Callable[[list[Tick]], Awaitable[None]]
_STABLE_S: Final = 60.0
Sleep = Callable[[float], Awaitable[None]]
Jitter = Callable[[], float]  # a fraction in [0, 1]

_WS_LOGGER = logging.getLogger("quantdesk.marketdata.providers.kite.websocket")


def _quiet_ws_logger() -> logging.Logger:
    # The library's DEBUG lines include the request line, i.e. our credentials.
    if _WS_LOGGER.level == logging.NOTSET or _WS_LOGGER.level < logging.INFO:
        _WS_LOGGER.setLevel(logging.INFO)
    return _WS_LOGGER


def _secure_fraction() -> float:
    return secrets.randbelow(1001) / 1000


class _Stale(Exception):
    """No frame, not even a heartbeat, for longer than the idle timeout."""


def describe_failure(exc: BaseException) -> str:
    """A failure in words that cannot contain the URL (and so the credentials)."""
    if isinstance(exc, _Stale):
        return "silent: no frame, not even a heartbeat, within the idle timeout"
    if isinstance(exc, InvalidStatus):
        return f"handshake refused with HTTP {exc.response.status_code}"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{type(exc).__name__} (errno {exc.errno})"
    return type(exc).__name__


@dataclass(slots=True)
class _Connection:
    index: int
    desired: dict[int, Mode] = field(default_factory=dict)
    sent: dict[int, Mode] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    state: str = "idle"
    reconnects: int = 0
    failures: int = 0
    malformed: int = 0
    skipped: int = 0
    ticks: int = 0
    heartbeats: int = 0
    last_error: str | None = None
    last_message_at: float | None = None
    connected_at: float | None = None


class KiteTicker:
    """Streams ticks of the wanted instruments to ``on_ticks``; see the module docstring."""

    def __init__(
        self,
        api_key: str,
        tokens: TokenSource,
        on_ticks: TickHandler,
        *,
        url: str = KITE_TICKER_URL,
        max_connections: int = MAX_CONNECTIONS_PER_KEY,
        per_connection: int = MAX_TOKENS_PER_CONNECTION,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        idle_timeout_s: float = 10.0,
        token_poll_s: float = 30.0,
        open_timeout_s: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        jitter: Jitter | None = None,
        clock: Callable[[], float] = time.monotonic,
        connect_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._api_key = api_key
        self._tokens = tokens
        self._on_ticks = on_ticks
        self._url = url
        self._per_connection = min(per_connection, MAX_TOKENS_PER_CONNECTION)
        self._connections = [
            _Connection(i) for i in range(min(max_connections, MAX_CONNECTIONS_PER_KEY))
        ]
        self._assignment: dict[int, int] = {}  # token -> connection index
        self._wanted: dict[int, Mode] = {}
        self.dropped: list[int] = []
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._idle_timeout = idle_timeout_s
        self._token_poll = token_poll_s
        self._open_timeout = open_timeout_s
        self._sleep = sleep
        self._jitter = jitter or _secure_fraction
        self._clock = clock
        self._connect_options = dict(connect_options or {})
        self._tasks: list[asyncio.Task[None]] = []
        self._logger = _quiet_ws_logger()

    # ------------------------------------------------------------------ subscriptions

    def subscribe(self, wanted: Mapping[int, Mode]) -> None:
        """Make ``wanted`` (token -> mode) the subscribed set; workers send the difference."""
        self._wanted = dict(wanted)
        for token in [t for t in self._assignment if t not in wanted]:
            del self._assignment[token]
        load = [0] * len(self._connections)
        for index in self._assignment.values():
            load[index] += 1
        self.dropped = []
        for token in wanted:
            if token in self._assignment:
                continue
            room = next((i for i, n in enumerate(load) if n < self._per_connection), None)
            if room is None:
                self.dropped.append(token)
                continue
            self._assignment[token] = room
            load[room] += 1
        if self.dropped:
            log.warning(
                "kite_ticker_capacity",
                wanted=len(wanted),
                dropped=len(self.dropped),
                capacity=len(self._connections) * self._per_connection,
            )
        for connection in self._connections:
            desired = {t: wanted[t] for t, i in self._assignment.items() if i == connection.index}
            if desired != connection.desired:
                connection.desired = desired
                connection.changed.set()

    @property
    def subscribed(self) -> dict[int, Mode]:
        return {t: m for c in self._connections for t, m in c.desired.items()}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(c), name=f"kite-ticker-{c.index}")
                for c in self._connections
            ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)

    def status(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "subscribed": sum(len(c.desired) for c in self._connections),
            "dropped": len(self.dropped),
            "connections": [
                {
                    "index": c.index,
                    "state": c.state,
                    "instruments": len(c.desired),
                    "reconnects": c.reconnects,
                    "tick_count": c.ticks,
                    "malformed_frames": c.malformed,
                    "error": c.last_error,
                    "seconds_since_message": None
                    if c.last_message_at is None
                    else round(now - c.last_message_at, 3),
                }
                for c in self._connections
            ],
        }

    # ------------------------------------------------------------------ one connection

    def _socket_url(self, access_token: str) -> str:
        return f"{self._url}?{urlencode({'api_key': self._api_key, 'access_token': access_token})}"

    def _backoff(self, failures: int) -> float:
        ceiling = min(self._backoff_max, self._backoff_initial * 2.0 ** max(failures - 1, 0))
        # "Equal jitter" (AWS architecture blog, "Exponential Backoff And Jitter"): spread
        # so three connections dropped together do not return in step, never under half.
        return ceiling * (0.5 + 0.5 * self._jitter())

    async def _run(self, connection: _Connection) -> None:
        while True:
            if not connection.desired:
                connection.state = "idle"
                await connection.changed.wait()
                connection.changed.clear()  # a connection opened next sends the whole set
                continue
            access_token = await self._tokens.current()
            if not access_token:
                connection.state = "waiting_for_login"
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._token_poll):
                        await connection.changed.wait()
                        connection.changed.clear()
                self._tokens.forget()
                continue
            try:
                connection.state = "connecting"
                async with connect(
                    self._socket_url(access_token),
                    open_timeout=self._open_timeout,
                    logger=self._logger,
                    **self._connect_options,
                ) as socket:
                    connection.state = "connected"
                    connection.sent = {}
                    connection.connected_at = connection.last_message_at = self._clock()
                    await self._session(connection, socket)
            except asyncio.CancelledError:
                connection.state = "stopped"
                raise
            except InvalidStatus as exc:
                if exc.response.status_code == 403:
                    connection.state = "token_rejected"
                    connection.last_error = describe_failure(exc)
                    log.warning("kite_ticker_token_rejected", connection=connection.index)
                    await self._tokens.refused(
                        access_token, "the Kite ticker refused the access token (HTTP 403)"
                    )
                    continue
                await self._failed(connection, exc)
            except (OSError, TimeoutError, WebSocketException, _Stale) as exc:
                await self._failed(connection, exc)

    async def _failed(self, connection: _Connection, exc: BaseException) -> None:
        # The backoff restarts only after a connection that lived a while: one that Kite
        # closes right after the handshake must not be retried every second forever.
        lived = self._clock() - (connection.connected_at or self._clock())
        connection.failures = 1 if lived >= _STABLE_S else connection.failures + 1
        connection.connected_at = None
        connection.reconnects += 1
        connection.state = "reconnecting"
        connection.last_error = describe_failure(exc)
        delay = self._backoff(connection.failures)
        log.warning(
            "kite_ticker_disconnected",
            connection=connection.index,
            reason=connection.last_error,
            retry_in_s=round(delay, 3),
        )
        await self._sleep(delay)

    async def _session(self, connection: _Connection, socket: ClientConnection) -> None:
        connection.changed.clear()
        await self._sync(connection, socket)

        async def writer() -> None:
            while True:
                await connection.changed.wait()
                connection.changed.clear()
                await self._sync(connection, socket)

        writing = asyncio.create_task(writer())
        try:
            await self._read(connection, socket)
        finally:
            await cancel_and_wait(writing)

    async def _sync(self, connection: _Connection, socket: ClientConnection) -> None:
        desired, sent = dict(connection.desired), connection.sent
        gone = [t for t in sent if t not in desired]
        new = [t for t in desired if t not in sent]
        if gone:
            await socket.send(unsubscribe_message(gone))
        if new:
            await socket.send(subscribe_message(new))
        by_mode: dict[Mode, list[int]] = {}
        for token, mode in desired.items():
            if sent.get(token) != mode:
                by_mode.setdefault(mode, []).append(token)
        for mode, tokens in by_mode.items():
            await socket.send(mode_message(mode, tokens))
        connection.sent = desired

    async def _read(self, connection: _Connection, socket: ClientConnection) -> None:
        while True:
            try:
                message = await asyncio.wait_for(socket.recv(), self._idle_timeout)
            except TimeoutError:
                raise _Stale from None
            connection.last_message_at = self._clock()
            if isinstance(message, str):
                self._text(connection, message)
                continue
            try:
                frame = parse_frame(message)
            except MalformedFrame as exc:
                connection.malformed += 1
                log.warning(
                    "kite_ticker_malformed_frame",
                    connection=connection.index,
                    size=len(message),
                    reason=str(exc),
                )
                continue
            connection.skipped += frame.skipped
            if frame.heartbeat:
                connection.heartbeats += 1
                continue
            connection.ticks += len(frame.ticks)
            try:
                await self._on_ticks(frame.ticks)
            except Exception as exc:  # a consumer's bug must not drop the feed
                log.error("kite_ticker_handler_failed", error=type(exc).__name__)

    def _text(self, connection: _Connection, message: str) -> None:
        parsed = parse_text(message)
        if parsed is not None and parsed.type == "error":
            log.warning(
                "kite_ticker_error_message",
                connection=connection.index,
                message=str(parsed.data)[:200],
            )
