"""One authenticated stream connection: its subscriptions, cursors and outgoing queues.

Three tasks per connection, so that no client can stall another or the process:

* the *reader* (the endpoint's own task) parses frames and queues operations;
* the *worker* takes operations and outbox events in order, one at a time, so an ack always
  comes before the events it announces and a private channel's events are delivered in
  sequence, backfilled from the outbox whenever a number is missing;
* the *sender* writes to the socket: acks, errors and private events first, in order, then
  the latest tick (and, in full mode, book) of each instrument.  Under ``quantdesk serve``
  it writes whole frames to the transport itself (``platform.websocket_wire``), and a frame
  for a connection with nothing queued and a socket ready is written on the spot, without
  waking the sender: the hub's one loop over its followers is the tick fan-out.  A client
  that reads slowly
  gets fewer ticks (each instrument's pending tick or book is replaced by the newer one:
  conflation) but every private event,
  or, when more than ``stream_max_pending`` of those wait, a close with 4008 and the cursors
  to resume from in its last heartbeat.

Cursors: for each account the connection follows, ``seen`` is the account's sequence number
up to which every event has been handled (delivered when subscribed, skipped otherwise).  It
is what heartbeats report and what a client resumes from (``from_seq = seen + 1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson
from starlette.websockets import WebSocket, WebSocketState

from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.platform.logging import get_logger
from quantdesk.platform.tasks import cancel_and_wait
from quantdesk.platform.websocket_wire import FrameWriter, OutFrame, frame_writer, text_frame
from quantdesk.signals.live import LiveModel, live_signals, signal_channel
from quantdesk.stream import outbox
from quantdesk.stream.outbox import OutboxEvent
from quantdesk.stream.protocol import (
    CHANNEL_OF_EVENT,
    EVENT_TYPES_OF,
    AuthOp,
    Channel,
    CloseCode,
    Cursor,
    ErrorCode,
    PingOp,
    ProtocolError,
    ResumeOp,
    SubscribeOp,
    TickMode,
    depth_frame,
    error_frame,
    frame,
    halts_frame,
    parse_operation,
    private_frame,
    tick_frame,
    utc_text,
)
from quantdesk.stream.tickets import StreamIdentity

if TYPE_CHECKING:
    from quantdesk.stream.service import StreamService

log = get_logger("quantdesk.stream")

BACKFILL_BATCH = 500
CLOSE_TIMEOUT_S = 5.0
# Refused operations a connection may send before it is closed with 4029.
MAX_REFUSALS = 20


@dataclass(frozen=True, slots=True)
class _Follow:
    channel: Channel
    account_id: uuid.UUID
    head: int
    start: int
    resync: bool


@dataclass
class AccountCursor:
    account_id: uuid.UUID
    seen: int
    # channel -> the first sequence number the client asked for on it
    channels: dict[Channel, int] = field(default_factory=dict)


Work = tuple[str, Any]
# Latest-value frames are pending per (frame type, instrument): a book never replaces a tick.
MarketFrame = Literal["tick", "depth", "signal"]


class Connection:
    def __init__(
        self, service: StreamService, websocket: WebSocket, identity: StreamIdentity
    ) -> None:
        self.service = service
        self.websocket = websocket
        self.identity = identity
        self.user_id = identity.principal.user_id
        self.id = uuid.uuid4().hex
        self.work: asyncio.Queue[Work] = asyncio.Queue()
        self.out: deque[tuple[str, bool]] = deque()  # (frame, is_private)
        self.private_pending = 0
        self.ticks: dict[tuple[MarketFrame, str], OutFrame] = {}  # the newest unsent of each
        self.wire: FrameWriter | None = frame_writer(websocket.scope)
        self.tick_modes: dict[str, TickMode] = {}
        self.accounts: dict[uuid.UUID, AccountCursor] = {}
        self.status = False  # follows the status channel (trading halts)
        self.signal_follows: dict[uuid.UUID, tuple[LiveModel, list[str]]] = {}
        self.wake = asyncio.Event()
        self.drained = asyncio.Event()
        self.ended = asyncio.Event()  # set by close_soon: the tasks stop wherever they wait
        self.closed: tuple[int, str] | None = None
        self.refusals = 0
        self.working = False  # the worker is handling an item (it may be awaiting)
        self._tasks: list[asyncio.Task[Any]] = []

    # --- fed by the hubs (synchronous: the hubs never wait for a client) ------------------
    # Each returns whether the frame went out on the spot (the hub counts those).
    def offer_tick(self, instrument: str, out: OutFrame) -> bool:
        return self._offer_latest(("tick", instrument), out)

    def offer_ticks(self, ticks: Sequence[tuple[str, OutFrame]]) -> int:
        """Several instruments' ticks at once, in order: one write when the socket takes
        them (as ``offer_tick``); how many went out on the spot."""
        wire = self.wire
        if wire is not None and self._idle() and wire.ready():
            wire.write_all([out.data for _, out in ticks])
            return len(ticks)
        return sum(self.offer_tick(instrument, out) for instrument, out in ticks)

    def offer_depth(self, instrument: str, out: OutFrame) -> bool:
        return self._offer_latest(("depth", instrument), out)

    def offer_signal(self, channel: str, out: OutFrame) -> bool:
        return self._offer_latest(("signal", channel), out)

    def _offer_latest(self, slot: tuple[MarketFrame, str], out: OutFrame) -> bool:
        # Nothing queued (so nothing this frame could overtake) and a socket that takes it:
        # written now.  Otherwise it waits for the sender, replacing an older one of its slot.
        wire = self.wire
        if wire is not None and self._idle() and wire.ready():
            wire.write(out.data)
            return True
        if slot in self.ticks:
            self.service.stats.conflated.inc()
        self.ticks[slot] = out
        self.wake.set()
        return False

    def offer_event(self, event: OutboxEvent, text: str) -> None:
        # The next event of its account, with the worker idle (no backfill or operation in
        # progress or queued that it could overtake): delivered now, without a task switch.
        if not self.working and not self.work.qsize() and self.closed is None:
            cursor = self.accounts.get(event.account_id)
            if cursor is None or event.seq <= cursor.seen:
                return
            if event.seq == cursor.seen + 1:
                self._deliver(cursor, event, text)
                return
        if self.work.qsize() > self.service.settings.stream_max_pending:
            self.close_soon(CloseCode.SLOW_CONSUMER, "too many undelivered private events")
            return
        self.work.put_nowait(("event", (event, text)))

    def offer_check(self, account_id: uuid.UUID, head: int) -> None:
        self.work.put_nowait(("check", (account_id, head)))

    # --- outgoing ---------------------------------------------------------------------
    def send_control(self, text: str) -> None:
        if self._write_now(text):
            self.service.stats.sent.labels(kind="control").inc()
            return
        self.out.append((text, False))
        self.wake.set()

    def send_private(self, text: str) -> None:
        if self._write_now(text):
            self.service.stats.sent.labels(kind="private").inc()
            return
        self.out.append((text, True))
        self.private_pending += 1
        self.wake.set()
        if self.private_pending > self.service.settings.stream_max_pending:
            self.close_soon(CloseCode.SLOW_CONSUMER, "the client reads too slowly")

    def _write_now(self, text: str) -> bool:
        """Written on the spot when nothing is queued before it and the socket takes it."""
        wire = self.wire
        if wire is not None and self._idle() and wire.ready():
            wire.write(text_frame(text.encode()))
            return True
        return False

    def _idle(self) -> bool:
        """Nothing queued that a frame written now would overtake, and not closing."""
        return not self.ticks and not self.out and self.closed is None

    def error(self, code: ErrorCode, message: str, op_id: str | None = None) -> None:
        self.send_control(error_frame(code, message, op_id))

    def close_soon(self, code: int, reason: str) -> None:
        """Close from anywhere without waiting (the hubs and the worker call this)."""
        if self.closed is not None:
            return
        self.closed = (code, reason)
        self.service.stats.disconnects.labels(reason=_reason_label(code)).inc()
        # What was queued is dropped (the client resumes from its cursors); the last frame
        # says why the connection ends.
        self.out.clear()
        self.private_pending = 0
        error_code = _ERROR_OF_CLOSE.get(CloseCode(code)) if code in _CLOSE_VALUES else None
        if error_code is not None:
            self.out.append((error_frame(error_code, reason), False))
        self.wake.set()
        self.ended.set()

    # --- life --------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve until the client leaves or the connection is closed; always cleans up."""
        self._tasks = [
            asyncio.create_task(self._send_loop(), name=f"stream-send-{self.id}"),
            asyncio.create_task(self._work_loop(), name=f"stream-work-{self.id}"),
        ]
        reader = asyncio.create_task(self._read_loop(), name=f"stream-read-{self.id}")
        ended = asyncio.create_task(self.ended.wait(), name=f"stream-end-{self.id}")
        self._tasks += [reader, ended]
        try:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # A send blocked on a client that does not read is cancelled here: the frame
            # it was writing is already in the transport's buffer, whole.
            await cancel_and_wait(self._tasks)
            self.service.ticks.remove(self, list(self.tick_modes))
            self.service.tail.remove(self, list(self.accounts))
            self.service.status_followers.discard(self)
            for model_id in list(self.signal_follows):
                self._unfollow_signals(model_id)
            await self._close_socket()

    async def _close_socket(self) -> None:
        if self.websocket.client_state is not WebSocketState.CONNECTED:
            return
        code, reason = self.closed or (CloseCode.NORMAL, "")
        # The frame saying why (queued by close_soon), then the close; a client that does
        # not read gets a few seconds for both, then the server lets the connection go.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                while self.out:
                    text, _ = self.out.popleft()
                    await self.websocket.send_text(text)
                await self.websocket.close(code, reason[:120])

    async def _read_loop(self) -> None:
        limit = self.service.settings.stream_max_frame_bytes
        while self.closed is None:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            data: str | bytes | None = text if text is not None else message.get("bytes")
            if data is None:
                continue
            if len(data) > limit:
                self.error(ErrorCode.LIMITS, f"a frame may have at most {limit} bytes")
                continue
            try:
                operation = parse_operation(data)
            except ProtocolError as exc:
                self.error(exc.code, exc.message, exc.op_id)
                continue
            if isinstance(operation, SubscribeOp | ResumeOp) and not await self.service.allow_op(
                self.id
            ):
                self.refusals += 1
                if self.refusals > MAX_REFUSALS:
                    self.close_soon(CloseCode.RATE_LIMITED, "too many operations")
                    return
                self.error(ErrorCode.RATE, "too many subscription operations", operation.id)
                continue
            self.work.put_nowait(("op", operation))

    async def _send_loop(self) -> None:
        stats = self.service.stats
        heartbeat_s = self.service.settings.stream_heartbeat_s
        next_heartbeat = time.monotonic() + heartbeat_s
        while True:
            timeout = max(0.0, next_heartbeat - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.wake.wait()
            self.wake.clear()
            if self.closed is not None:
                return
            if time.monotonic() >= next_heartbeat:
                self.send_control(self.heartbeat())
                next_heartbeat = time.monotonic() + heartbeat_s
            if self.wire is not None:
                sent = await self._write_pending(self.wire)
            else:
                sent = await self._send_pending()
            if sent is None:
                return
            sent_private, sent_other, sent_ticks = sent
            if sent_private:
                stats.sent.labels(kind="private").inc(sent_private)
            if sent_other:
                stats.sent.labels(kind="control").inc(sent_other)
            if sent_ticks:
                stats.sent.labels(kind="tick").inc(sent_ticks)

    async def _write_pending(self, wire: FrameWriter) -> tuple[int, int, int] | None:
        """Everything queued, in order, as one write per round; waits while the client's
        buffer is full (ticks meanwhile conflate).  ``None``: the connection is gone."""
        sent_private = sent_other = sent_ticks = 0
        while self.out or self.ticks:
            if wire.gone or self.closed is not None:
                return None
            if wire.paused:
                await wire.writable()
                continue
            frames: list[bytes] = []
            for text, private in self.out:
                frames.append(text_frame(text.encode()))
                if private:
                    sent_private += 1
                else:
                    sent_other += 1
            self.out.clear()
            self.private_pending = 0
            if self.ticks:
                frames.extend(out.data for out in self.ticks.values())
                sent_ticks += len(self.ticks)
                self.ticks = {}
            wire.write_all(frames)
            self.drained.set()
        return sent_private, sent_other, sent_ticks

    async def _send_pending(self) -> tuple[int, int, int] | None:
        """Through ASGI, frame by frame (a server other than ``quantdesk serve``'s)."""
        websocket = self.websocket
        sent_private = sent_other = sent_ticks = 0
        while self.out or self.ticks:
            while self.out:
                text, private = self.out.popleft()
                await websocket.send_text(text)
                if private:
                    self.private_pending -= 1
                    sent_private += 1
                else:
                    sent_other += 1
                if self.closed is not None:
                    return None
            self.drained.set()
            if self.ticks:
                pending, self.ticks = self.ticks, {}
                for out in pending.values():
                    await websocket.send_text(out.text)
                sent_ticks += len(pending)
        return sent_private, sent_other, sent_ticks

    async def _work_loop(self) -> None:
        while True:
            kind, item = await self.work.get()
            if self.closed is not None:
                return
            self.working = True
            try:
                if kind == "event":
                    event, text = item
                    await self._on_event(event, text)
                elif kind == "check":
                    account_id, head = item
                    cursor = self.accounts.get(account_id)
                    if cursor is not None and head > cursor.seen:
                        await self._backfill(cursor, head)
                else:
                    await self._on_operation(item)
            finally:
                self.working = False

    # --- operations ----------------------------------------------------------------------
    async def _on_operation(self, operation: AuthOp | PingOp | SubscribeOp | ResumeOp) -> None:
        if isinstance(operation, PingOp):
            self.send_control(frame({"type": "pong", "id": operation.id, "ts": utc_text(utcnow())}))
        elif isinstance(operation, AuthOp):
            self.error(ErrorCode.SYNTAX, "already authenticated", operation.id)
        elif isinstance(operation, ResumeOp):
            await self._subscribe_private(operation.cursors, operation.id, "resume")
        elif operation.channel is Channel.STATUS:
            if operation.op == "subscribe":
                await self._subscribe_status(operation.id)
            else:
                self.status = False
                self.service.status_followers.discard(self)
                self.ack(operation.id, "unsubscribe")
        elif operation.channel is Channel.SIGNALS:
            await self._on_signals(operation)
        elif operation.channel is Channel.TICKS:
            if operation.op == "subscribe":
                await self._subscribe_ticks(operation)
            else:
                keys = [k for k in operation.instruments if k in self.tick_modes]
                for key in keys:
                    del self.tick_modes[key]
                    self.ticks.pop(("tick", key), None)
                    self.ticks.pop(("depth", key), None)
                self.service.ticks.remove(self, keys)
                self.ack(operation.id, "unsubscribe")
        elif operation.op == "subscribe":
            assert operation.account_id is not None  # noqa: S101 - SubscribeOp.check
            wanted = Cursor(
                channel=operation.channel.value,
                account_id=operation.account_id,
                from_seq=operation.from_seq,
            )
            await self._subscribe_private([wanted], operation.id, "subscribe")
        else:
            self._unsubscribe_private(operation)

    def ack(self, op_id: str | None, op: str) -> None:
        self.send_control(frame({"type": "ack", "id": op_id, "op": op, **self.subscriptions()}))

    def subscriptions(self) -> dict[str, Any]:
        by_mode: dict[str, list[str]] = {mode.value: [] for mode in TickMode}
        for key, mode in self.tick_modes.items():
            by_mode[mode.value].append(key)
        private = [
            {"channel": channel.value, "account_id": str(cursor.account_id), "seq": cursor.seen}
            for cursor in self.accounts.values()
            for channel in cursor.channels
        ]
        signals = [
            {"model": model.name, "model_id": str(model.model_id), "version": model.version,
             "timeframe": model.timeframe.value, "instruments": keys}
            for model, keys in self.signal_follows.values()
        ]  # fmt: skip
        return {"subscriptions": {"ticks": by_mode, "private": private, "status": self.status,
                                  "signals": signals}}  # fmt: skip

    def heartbeat(self) -> str:
        cursors = self.subscriptions()["subscriptions"]["private"]
        return frame({"type": "heartbeat", "ts": utc_text(utcnow()), "cursors": cursors})

    async def _subscribe_ticks(self, operation: SubscribeOp) -> None:
        new = [key for key in operation.instruments if key not in self.tick_modes]
        limit = self.service.settings.stream_max_instruments
        if len(self.tick_modes) + len(new) > limit:
            self.error(
                ErrorCode.LIMITS, f"at most {limit} instruments per connection", operation.id
            )
            return
        full = operation.mode is TickMode.FULL
        for key in operation.instruments:
            self.tick_modes[key] = operation.mode
            if not full:
                self.ticks.pop(("depth", key), None)  # not even a book queued before the switch
        # Live first, then the snapshot: no quote or book falls between the two.
        await self.service.ticks.add(self, operation.instruments, operation.mode)
        snapshot = await self.service.latest_quotes(operation.instruments)
        books = await self.service.latest_books(operation.instruments) if full else {}
        self.ack(operation.id, "subscribe")
        for key, quote in snapshot.items():
            snap = OutFrame(tick_frame(quote, operation.mode, snapshot=True))
            self.ticks.setdefault(("tick", key), snap)
        for key, book in books.items():
            self.ticks.setdefault(("depth", key), OutFrame(depth_frame(book, snapshot=True)))
        if snapshot or books:
            self.wake.set()

    async def _on_signals(self, operation: SubscribeOp) -> None:
        """Follow (or stop following) the live values of one of the user's models."""
        assert operation.model is not None  # noqa: S101 - SubscribeOp.check
        if operation.op == "unsubscribe":
            for model_id, (model, _keys) in list(self.signal_follows.items()):
                if operation.model in (model.name, str(model_id)):
                    self._unfollow_signals(model_id, operation.instruments)
            self.ack(operation.id, "unsubscribe")
            return
        live = live_signals(self.service.ctx)
        if live is None:
            self.error(ErrorCode.SYNTAX, "live signals are not served here", operation.id)
            return
        try:
            model = await live.follow(self.user_id, operation.model, operation.instruments)
        except NotFound:
            # Another user's model and a missing one get the same answer.
            self.error(ErrorCode.FORBIDDEN, "no such model or instrument", operation.id)
            return
        except InvalidInput as exc:
            self.error(ErrorCode.SYNTAX, exc.detail, operation.id)
            return
        _, keys = self.signal_follows.setdefault(model.model_id, (model, []))
        added = [key for key in operation.instruments if key not in keys]
        keys.extend(added)
        live.unfollow(model.model_id, [k for k in operation.instruments if k not in added])
        await self.service.signals.add(self, [signal_channel(model.model_id, k) for k in added])
        self.ack(operation.id, "subscribe")

    def _unfollow_signals(self, model_id: uuid.UUID, keys: list[str] | None = None) -> None:
        _model, followed = self.signal_follows[model_id]
        leaving = [k for k in followed if keys is None or not keys or k in keys]
        self.service.signals.remove(self, [signal_channel(model_id, k) for k in leaving])
        live = live_signals(self.service.ctx)
        if live is not None:
            live.unfollow(model_id, leaving)
        for key in leaving:
            followed.remove(key)
            self.ticks.pop(("signal", signal_channel(model_id, key)), None)
        if not followed:
            del self.signal_follows[model_id]

    async def _subscribe_status(self, op_id: str | None) -> None:
        # Live first, then the snapshot: a halt announced in between is in both, never in
        # neither (a client applies a halt by its halt_id, so twice is harmless).
        self.status = True
        self.service.status_followers.add(self)
        snapshot = await self.service.active_halts()
        self.ack(op_id, "subscribe")
        self.send_control(halts_frame(snapshot))

    async def _plan(self, wanted: Cursor) -> _Follow | tuple[ErrorCode, str]:
        """Check that the account is the user's and work out where to start."""
        try:
            account_id = uuid.UUID(wanted.account_id)
        except ValueError:
            return ErrorCode.FORBIDDEN, "no such account"
        async with self.service.ctx.database.session() as db:
            head = await outbox.owned_account(db, account_id, self.user_id)
            if head is None:
                # Another user's account and a missing one get the same answer.
                return ErrorCode.FORBIDDEN, "no such account"
            first = await outbox.first_retained_seq(db, account_id)
        from_seq = wanted.from_seq
        # Older than the outbox keeps, or ahead of the account (a cursor from another
        # database): the client reloads this channel over REST, then follows it live.
        resync = from_seq is not None and (
            (first is not None and from_seq < first) or from_seq > head + 1
        )
        start = head + 1 if from_seq is None or resync else from_seq
        return _Follow(Channel(wanted.channel), account_id, head, start, resync)

    def _follow(self, plan: _Follow) -> Callable[[], Awaitable[None]] | None:
        """Register ``plan`` (before anything is read, so nothing committed from now on is
        missed; what arrives twice is skipped by sequence number); the catch-up to run
        after the ack."""
        cursor = self.accounts.get(plan.account_id)
        if cursor is None:
            cursor = self.accounts[plan.account_id] = AccountCursor(
                plan.account_id, seen=plan.start - 1
            )
            cursor.channels[plan.channel] = plan.start
            self.service.tail.add(self, plan.account_id)
            new = cursor
            return lambda: self._backfill(new, plan.head, paced=True)
        replay_to = cursor.seen
        cursor.channels[plan.channel] = plan.start
        if plan.start > replay_to:
            return None
        existing = cursor
        return lambda: self._replay(existing, plan.channel, plan.start, replay_to)

    async def _subscribe_private(self, cursors: list[Cursor], op_id: str | None, op: str) -> None:
        plans: list[_Follow] = []
        for wanted in cursors:
            plan = await self._plan(wanted)
            if not isinstance(plan, _Follow):
                self.error(plan[0], plan[1], op_id)
                return
            plans.append(plan)
        # The earliest start first: it opens the account's cursor, later ones join it.
        plans.sort(key=lambda p: p.start)
        jobs = [self._follow(plan) for plan in plans]
        self.ack(op_id, op)
        for plan in plans:
            if plan.resync:
                self.send_control(
                    frame(
                        {
                            "type": "resync_required",
                            "channel": plan.channel.value,
                            "account_id": str(plan.account_id),
                            "seq": plan.head,
                        }
                    )
                )
        for job in jobs:
            if job is not None:
                await job()

    def _unsubscribe_private(self, operation: SubscribeOp) -> None:
        try:
            account_id = uuid.UUID(operation.account_id or "")
        except ValueError:
            account_id = uuid.UUID(int=0)
        cursor = self.accounts.get(account_id)
        if cursor is not None:
            cursor.channels.pop(operation.channel, None)
            if not cursor.channels:
                del self.accounts[account_id]
                self.service.tail.remove(self, [account_id])
        self.ack(operation.id, "unsubscribe")

    # --- private events ------------------------------------------------------------------
    async def _on_event(self, event: OutboxEvent, text: str) -> None:
        cursor = self.accounts.get(event.account_id)
        if cursor is None or event.seq <= cursor.seen:
            return
        if event.seq > cursor.seen + 1:
            await self._backfill(cursor, event.seq)
            return
        self._deliver(cursor, event, text)

    def _deliver(self, cursor: AccountCursor, event: OutboxEvent, text: str | None) -> None:
        cursor.seen = event.seq
        channel = CHANNEL_OF_EVENT.get(event.type)
        start = cursor.channels.get(channel) if channel is not None else None
        if start is None or event.seq < start:
            return
        if event.user_id != self.user_id:  # belt and braces: subscriptions are owner-checked
            log.error("stream: an event of another user reached a connection", seq=event.seq)
            return
        self.send_private(text if text is not None else render(event))

    async def _backfill(self, cursor: AccountCursor, to_seq: int, *, paced: bool = False) -> None:
        """Deliver the account's events after ``cursor.seen`` up to ``to_seq`` from the outbox.

        ``paced``: a catch-up the client asked for (subscribe, resume) waits for the client
        to read; filling a gap in live events does not (the client is as far behind as the
        events it has not taken, and past ``stream_max_pending`` it resumes instead)."""
        while cursor.seen < to_seq and self.closed is None:
            async with self.service.ctx.database.session() as db:
                events = await outbox.events_of_account(
                    db,
                    cursor.account_id,
                    from_seq=cursor.seen + 1,
                    to_seq=to_seq,
                    limit=BACKFILL_BATCH,
                )
            if not events:
                return  # not committed yet as far as this read can see: the next check will
            if events[0].seq > cursor.seen + 1:
                # Pruned by the retention: what was missed cannot be replayed.
                for channel in list(cursor.channels):
                    self.send_control(
                        frame(
                            {
                                "type": "resync_required",
                                "channel": channel.value,
                                "account_id": str(cursor.account_id),
                                "seq": events[0].seq - 1,
                            }
                        )
                    )
            for event in events:
                if paced:
                    await self._room()
                if self.accounts.get(cursor.account_id) is not cursor or self.closed is not None:
                    return  # unsubscribed or closed meanwhile
                self._deliver(cursor, event, None)

    async def _replay(self, cursor: AccountCursor, channel: Channel, start: int, end: int) -> None:
        """A channel added to an account already followed: its events in [start, end]."""
        next_seq = start
        while next_seq <= end and self.closed is None:
            await self._room()
            async with self.service.ctx.database.session() as db:
                events = await outbox.events_of_account(
                    db,
                    cursor.account_id,
                    from_seq=next_seq,
                    to_seq=end,
                    types=EVENT_TYPES_OF[channel],
                    limit=BACKFILL_BATCH,
                )
            for event in events:
                await self._room()
                if self.closed is not None:
                    return
                self.send_private(render(event))
            if len(events) < BACKFILL_BATCH:
                return
            next_seq = events[-1].seq + 1

    async def _room(self) -> None:
        """Wait (at most one heartbeat) until the client has taken half its private queue:
        replays are paced by the client, not dumped on it."""
        half = self.service.settings.stream_max_pending // 2
        deadline = time.monotonic() + self.service.settings.stream_heartbeat_s
        while self.private_pending > half and self.closed is None:
            self.drained.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close_soon(CloseCode.SLOW_CONSUMER, "the client reads too slowly")
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self.drained.wait()


def render(event: OutboxEvent) -> str:
    payload: dict[str, Any] = orjson.loads(event.payload)
    return private_frame(event.type, str(event.account_id), event.seq, event.created_at, payload)


_ERROR_OF_CLOSE = {
    CloseCode.AUTH: ErrorCode.AUTH,
    CloseCode.FORBIDDEN: ErrorCode.FORBIDDEN,
    CloseCode.SLOW_CONSUMER: ErrorCode.SLOW_CLIENT,
    CloseCode.RATE_LIMITED: ErrorCode.RATE,
}


_CLOSE_VALUES = frozenset(int(code) for code in CloseCode)


def _reason_label(code: int) -> str:
    labels: dict[int, str] = {
        CloseCode.AUTH: "auth",
        CloseCode.FORBIDDEN: "forbidden",
        CloseCode.SLOW_CONSUMER: "slow_consumer",
        CloseCode.RATE_LIMITED: "rate_limited",
        CloseCode.SERVER_RESTART: "server_restart",
    }
    return labels.get(code, "other")
